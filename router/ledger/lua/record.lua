--[[
record.lua: count a batch of usage events of ONE miner.

All keys carry the miner's hash tag {hotkey}, so the script runs on one
Redis Cluster slot. A bucket of one model is the member/field
"<bucket start ms>:<model id>".

KEYS[1]      P{hk}:models   ZSET model -> latest bucket start seen
KEYS[2]      P{hk}:b        ZSET "<bucket>:<model>", score = bucket start
KEYS[3]      P{hk}:h        HASH "<bucket>:<model>" -> "prompt,completion,requests,served,
                                 failed_before_output,failed_after_output,deadline_cut,
                                 paid_prompt,paid_completion"
                                 (buckets written before outcomes were kept hold the first three,
                                 before paid tokens were kept the first seven: the rest read as 0)
                                 "t:<model>"        -> running total of the kept buckets
KEYS[3 + i]  event i's idempotency key, one of:
             - P{hk}:seen:<origin>:<floor(seq / 65536)>  STRING bitmap, when
               event i carries (origin, seq): bit seq % 65536 is set once
               the event is counted (SETBIT; old bit 1 = duplicate). About
               one bit per request: a new bitmap is created at its full
               8 KiB, since growing it by SETBIT would over-allocate up to
               twice that. Its expiry is raised on each write to cover the
               newest event marked in it (its bucket + ARGV[4]).
             - P{hk}:ids:<bucket of event i's finish time>  SET of the
               request ids counted in that bucket (events without origin/seq,
               e.g. spooled by older routers); it expires when the bucket
               can no longer count
             Either way a replay is refused as expired, not recounted, once
             its marker is gone.

ARGV[1]  now (Unix ms, the caller's clock; event times are clamped to it)
ARGV[2]  bucket length in ms
ARGV[3]  retention cutoff: oldest bucket start still kept (older buckets
         are trimmed, older events are refused as expired)
ARGV[4]  how long a marker outlives the start of its event's bucket, in ms
         (retention + 2 buckets)
ARGV[4 + i]  event i as
         "<request id>\t<model>\t<finished-at ms>\t<prompt>\t<completion>\t<bit>\t<outcome>\t<paid>"
         where <bit> is seq % 65536 for a bitmap key and empty for a request-id
         set (the request id is then the member; with a bit it may be empty),
         and <outcome> one letter (router/ledger/outcomes.ts OUTCOME_CODE):
         c completed, x cancelled (both count as a request), f failed after
         output, e failed before output, t cut by the deadline; an event
         without it (an older router) counts as a request with no outcome;
         <paid> is 1 when the event's tokens were paid for (they then count
         in paid_prompt and paid_completion too), else 0 or empty
         (one argument per event: the client encodes far fewer strings;
         model ids never contain control characters)

Returns {counted, duplicates, expired}.

Each event costs one SETBIT (or SADD) plus Lua arithmetic; each call
reads and writes every touched field once (two HMGETs, one HSET) and
sets each touched marker key's expiry once (a PTTL and a PEXPIRE per
bitmap, plus a SET when the bitmap is new); opening a new bucket adds ZADDs and one trim of expired buckets
(amortised: once per bucket). O(log n) per event overall.
]]

local now = tonumber(ARGV[1])
local bucket_ms = tonumber(ARGV[2])
local cutoff = tonumber(ARGV[3])
local keep = tonumber(ARGV[4])
local expiring = {}  -- id sets whose expiry was set in this call
local bitmaps = {}   -- bitmap key -> latest expiry (Unix ms) its new marks need
local bitmap_order = {}
local bitmap_ttl = {} -- bitmap key -> its PTTL when first touched in this call
local CHUNK_BYTES = 8192
-- Sets the bit; true when it was already set. Creates the bitmap at full size.
local function mark(key, bit)
  if not bitmap_ttl[key] then
    local ttl = redis.call('PTTL', key)
    if ttl == -2 then
      redis.call('SET', key, string.rep('\0', CHUNK_BYTES))
      ttl = -1
    end
    bitmap_ttl[key] = ttl
  end
  return redis.call('SETBIT', key, bit, 1) == 1
end
local kmodels, kb, kh = KEYS[1], KEYS[2], KEYS[3]

-- prompt, completion, requests, served, failed early, failed late, cut, paid prompt, paid completion
local NF = 9
local function zeros() return {0, 0, 0, 0, 0, 0, 0, 0, 0} end
local function unpackv(v)
  local t = zeros()
  if not v then return t end
  local i = 0
  for n in string.gmatch(v, '%d+') do
    i = i + 1
    if i > NF then break end
    t[i] = tonumber(n)
  end
  return t
end
local function packv(t)
  return string.format('%d,%d,%d,%d,%d,%d,%d,%d,%d', t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9])
end
local function allzero(t)
  for i = 1, NF do if t[i] > 0 then return false end end
  return true
end
-- What one event adds, by outcome code ('' for events of older routers).
local OUTCOME_SLOT = {c = 4, e = 5, f = 6, t = 7}
local function increments(p, c, code, paid)
  local t = {p, c, 0, 0, 0, 0, 0, 0, 0}
  if paid == '1' then t[8] = p; t[9] = c end
  if code == '' or code == 'c' or code == 'x' then t[3] = 1 end
  local slot = OUTCOME_SLOT[code]
  if slot then t[slot] = 1 end
  return t
end
-- Removes buckets older than the cutoff and takes them off the running totals.
local function trim()
  local old = redis.call('ZRANGEBYSCORE', kb, '-inf', '(' .. cutoff, 'LIMIT', 0, 1000)
  if #old == 0 then return end
  local vals = redis.call('HMGET', kh, unpack(old))
  local delta = {}
  for j = 1, #old do
    local model = string.match(old[j], '^%d+:(.*)$')
    local v = unpackv(vals[j])
    local d = delta[model]
    if not d then d = zeros(); delta[model] = d end
    for i = 1, NF do d[i] = d[i] + v[i] end
  end
  redis.call('HDEL', kh, unpack(old))
  redis.call('ZREM', kb, unpack(old))
  for model, d in pairs(delta) do
    local tot = unpackv(redis.call('HGET', kh, 't:' .. model))
    for i = 1, NF do tot[i] = tot[i] - d[i] end
    if allzero(tot) then
      redis.call('HDEL', kh, 't:' .. model)
      redis.call('ZREM', kmodels, model)
    else
      redis.call('HSET', kh, 't:' .. model, packv(tot))
    end
  end
end

local counted, dups, expired = 0, 0, 0
local n = #KEYS - 3
-- Pass 1: refuse expired and duplicate events; add the rest up per field,
-- so each touched field is read and written once per call.
local add = {}       -- field -> {v = counts to add, b = bucket start}
local order = {}     -- fields in first-seen order
local newest = {}    -- model -> newest bucket start in this call
local function accumulate(f, b, inc)
  local d = add[f]
  if not d then
    d = {v = zeros(), b = b}
    add[f] = d
    order[#order + 1] = f
  end
  for i = 1, NF do d.v[i] = d.v[i] + inc[i] end
end
for i = 1, n do
  local rid, model, ts, ps, cs, bit, code, paid =
    string.match(ARGV[4 + i], '^([^\t]*)\t([^\t]*)\t(%d+)\t(%d+)\t(%d+)\t(%d*)\t?(%a?)\t?([01]?)$')
  local t = tonumber(ts)
  -- The id set is chosen by the unclamped finish time, so a replay lands in
  -- the same set whatever the clock says then.
  local idb = t - (t % bucket_ms)
  if t > now then t = now end
  local b = t - (t % bucket_ms)
  local key = KEYS[3 + i]
  if b < cutoff then
    expired = expired + 1
  elseif bit ~= '' and mark(key, tonumber(bit)) then
    dups = dups + 1
  elseif bit == '' and redis.call('SADD', key, rid) == 0 then
    dups = dups + 1
  else
    if bit ~= '' then
      -- A bitmap holds events of many buckets: it must outlive the newest.
      local want = bitmaps[key]
      if not want then bitmap_order[#bitmap_order + 1] = key end
      if not want or want < idb + keep then bitmaps[key] = idb + keep end
    elseif not expiring[key] then
      redis.call('PEXPIRE', key, math.max(1, idb + keep - now))
      expiring[key] = true
    end
    local inc = increments(tonumber(ps), tonumber(cs), code, paid)
    local field = string.format('%d', b) .. ':' .. model
    local tfield = 't:' .. model
    accumulate(field, b, inc)
    accumulate(tfield, b, inc)
    if not newest[model] or newest[model] < b then newest[model] = b end
    counted = counted + 1
  end
end
-- Raise (never lower) each written bitmap's expiry: PTTL was -1 on a new key.
for _, key in ipairs(bitmap_order) do
  local ttl = math.max(1, bitmaps[key] - now)
  local cur = bitmap_ttl[key]
  if cur < 0 or cur < ttl then redis.call('PEXPIRE', key, ttl) end
end
if counted == 0 then return {counted, dups, expired} end

-- Pass 2: open new buckets (trimming expired ones first, which may change
-- the totals), then read every touched field once and write them back.
local bucket_fields = {}
for _, f in ipairs(order) do
  if string.sub(f, 1, 2) ~= 't:' then bucket_fields[#bucket_fields + 1] = f end
end
local seen = redis.call('HMGET', kh, unpack(bucket_fields))
local opened = false
for j = 1, #bucket_fields do
  if not seen[j] then
    if not opened then trim(); opened = true end
    redis.call('ZADD', kb, add[bucket_fields[j]].b, bucket_fields[j])
  end
end
if opened then
  for model, b in pairs(newest) do redis.call('ZADD', kmodels, 'GT', b, model) end
end
local cur = redis.call('HMGET', kh, unpack(order))
local out = {}
for j = 1, #order do
  local d = add[order[j]].v
  local v = unpackv(cur[j])
  for i = 1, NF do v[i] = v[i] + d[i] end
  out[#out + 1] = order[j]
  out[#out + 1] = packv(v)
end
redis.call('HSET', kh, unpack(out))
return {counted, dups, expired}

--[[
settle.lua: settle a batch of final usage events of ONE API key, exactly
once per request id.

KEYS[1]      P{key:<id>}:a      HASH the account: metered, balance, held, spent
KEYS[2]      P{key:<id>}:holds  ZSET request id -> hold expiry
KEYS[3]      P{key:<id>}:hamt   HASH request id -> held micros
KEYS[4]      P{key:<id>}:s      HASH spend: "b:<bucket>:<model>:<f>" and "d:<day>:<model>:<f>"
                                     with f = p (prompt tokens), c (completion tokens),
                                     u (cost, micros), n (requests); "D:<day>" -> cost that day
KEYS[5]      P{key:<id>}:bz     ZSET "<bucket>:<model>", score = bucket start
KEYS[6]      P{key:<id>}:dz     ZSET "<day>:<model>", score = UTC day number
KEYS[7]      P{key:<id>}:gz     ZSET request id, score = created at (ms): the key's
                                     recent generations (recent.lua reads it)
KEYS[7 + i]  P{key:<id>}:g:<request id of event i>  STRING the generation record; it is
             also the request's settled marker (SET NX), kept for the store's
             generation retention after the request finished (the caller refuses
             older events)

ARGV[1]  bucket cutoff: oldest bucket start kept (24 h window); older buckets are trimmed
ARGV[2]  oldest UTC day kept (90 days); older days are trimmed
ARGV[3]  the key id (unused: the record's key names it; kept so the arguments keep their places)
ARGV[4]  recent list cutoff: entries created before it are dropped from KEYS[7]
ARGV[5]  recent list size: KEYS[7] keeps only its newest this many entries
ARGV[5 + i]  event i, one tab-separated string (one argument per event: the
         client encodes far fewer strings):
         request id, bucket start, UTC day, model, prompt tokens, completion
         tokens, cost (micros), record lifetime (ms, > 0), the id of the hold its
         cost comes off when that is not the request's own (a lease shared by
         several requests: its amount shrinks by the cost) else empty, then the
         record's own fields: created at (ms), ttft (ms, empty: none), latency
         (ms), finish reason (empty: none), streamed (1/0), outcome, the
         record's expiry (ms), then the app's referer and title (each empty:
         none; both absent in events of older routers). Ids, reasons and app
         texts never hold tabs or control characters (the caller checks them).

The generation record is stored compact, tab-separated (its key already
names the request and the API key): "2", model, prompt tokens, completion
tokens, cost, created at, ttft (empty: none), latency, finish reason (empty:
none), streamed (1/0), outcome, expiry (ms), referer, title (each empty:
none). That is 232 bytes of Redis per record against 504 for the JSON form
({"g":<record>,"x":<expiry>}) that routers before it wrote; readers take both.

Every number is a whole number passed as a string and added with HINCRBY,
so money stays exact. Per new event: the request's hold is dropped, its
cost comes off a metered balance, its spend is added to its bucket (when
still inside the window) and its UTC day (when still kept), and its record
is written and its id added to the recent list. The additions are summed
over the batch first and written once per field; the recent list is trimmed
once per call. Returns {settled, duplicates}.
]]
local ka, kholds, kamt, ks, kbz, kdz, kgz = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local cutoff = tonumber(ARGV[1])
local first_day = tonumber(ARGV[2])
local n = #KEYS - 7
local metered = redis.call('HGET', ka, 'metered') == '1'
local settled, dups = 0, 0
local opened_bucket, opened_day = false, false
-- Sums of the new events, written once per field at the end (a batch of one
-- key's requests mostly shares a bucket, a day and a model).
local sums, order = {}, {}
local function add(field, v)
  if sums[field] == nil then
    sums[field] = 0
    order[#order + 1] = field
  end
  sums[field] = sums[field] + tonumber(v)
end
local function tally(prefix, p, c, u)
  add(prefix .. ':p', p)
  add(prefix .. ':c', c)
  add(prefix .. ':u', u)
  add(prefix .. ':n', 1)
end
local released, charged = 0, 0
local lease_cost, leases = {}, {}
local seen_bucket, seen_day = {}, {}
local function fields(s)
  local out, from = {}, 1
  while true do
    local tab = string.find(s, '\t', from, true)
    if not tab then
      out[#out + 1] = string.sub(s, from)
      return out
    end
    out[#out + 1] = string.sub(s, from, tab - 1)
    from = tab + 1
  end
end
for i = 1, n do
  local f = fields(ARGV[5 + i])
  local rid, bucket, day, model = f[1], f[2], f[3], f[4]
  local p, c, u, px, hid = f[5], f[6], f[7], f[8], f[9]
  local rec = '2\t' .. model .. '\t' .. p .. '\t' .. c .. '\t' .. u .. '\t' .. f[10] .. '\t' .. f[11] ..
    '\t' .. f[12] .. '\t' .. f[13] .. '\t' .. f[14] .. '\t' .. f[15] .. '\t' .. f[16] ..
    '\t' .. (f[17] or '') .. '\t' .. (f[18] or '')
  if not redis.call('SET', KEYS[7 + i], rec, 'PX', px, 'NX') then
    dups = dups + 1
  else
    settled = settled + 1
    redis.call('ZADD', kgz, f[10], rid)
    if hid == '' then
      local held = redis.call('HGET', kamt, rid)
      if held then
        redis.call('HDEL', kamt, rid)
        redis.call('ZREM', kholds, rid)
        released = released + tonumber(held)
      end
    else
      -- Summed per lease and taken off once at the end.
      if lease_cost[hid] == nil then
        lease_cost[hid] = 0
        leases[#leases + 1] = hid
      end
      lease_cost[hid] = lease_cost[hid] + tonumber(u)
    end
    charged = charged + tonumber(u)
    if tonumber(bucket) >= cutoff then
      local m = bucket .. ':' .. model
      if not seen_bucket[m] then
        seen_bucket[m] = true
        if redis.call('ZADD', kbz, 'NX', bucket, m) == 1 then opened_bucket = true end
      end
      tally('b:' .. m, p, c, u)
    end
    if tonumber(day) >= first_day then
      local m = day .. ':' .. model
      if not seen_day[m] then
        seen_day[m] = true
        if redis.call('ZADD', kdz, 'NX', day, m) == 1 then opened_day = true end
      end
      tally('d:' .. m, p, c, u)
      add('D:' .. day, u)
    end
  end
end
-- Sums stay whole numbers far below 2^53 (a batch is at most a few hundred events).
local function int(v) return string.format('%d', v) end
-- A lease shrinks by its requests' costs, never below zero.
for _, hid in ipairs(leases) do
  local held = tonumber(redis.call('HGET', kamt, hid) or '0')
  local take = math.min(held, lease_cost[hid])
  if take > 0 then
    redis.call('HINCRBY', kamt, hid, int(-take))
    released = released + take
  end
end
if released > 0 then redis.call('HINCRBY', ka, 'held', int(-released)) end
if metered and charged > 0 then redis.call('HINCRBY', ka, 'balance', int(-charged)) end
if charged > 0 then redis.call('HINCRBY', ka, 'spent', int(charged)) end
for _, f in ipairs(order) do
  if sums[f] ~= 0 then redis.call('HINCRBY', ks, f, int(sums[f])) end
end

-- Trim what fell out of the window (bounded per call; amortised: once per new bucket or day).
local function trim(kz, below, kind)
  local old = redis.call('ZRANGEBYSCORE', kz, '-inf', '(' .. below, 'LIMIT', 0, 500)
  if #old == 0 then return end
  for _, m in ipairs(old) do
    local f = kind .. ':' .. m
    redis.call('HDEL', ks, f .. ':p', f .. ':c', f .. ':u', f .. ':n')
    if kind == 'd' then redis.call('HDEL', ks, 'D:' .. string.match(m, '^(%-?%d+):')) end
  end
  redis.call('ZREM', kz, unpack(old))
end
if settled > 0 then
  -- Newest entries only, none older than the records can be (both O(log N) when nothing goes).
  redis.call('ZREMRANGEBYRANK', kgz, 0, -tonumber(ARGV[5]) - 1)
  redis.call('ZREMRANGEBYSCORE', kgz, '-inf', '(' .. ARGV[4])
end
if opened_bucket then trim(kbz, cutoff, 'b') end
if opened_day then trim(kdz, first_day, 'd') end
return {settled, dups}

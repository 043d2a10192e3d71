--[[
ledger-record.lua: count a batch of usage events of ONE miner.

All keys carry the miner's hash tag {hotkey}, so the script runs on one
Redis Cluster slot. A bucket of one model is the member/field
"<bucket start ms>:<model id>".

KEYS[1]      P{hk}:models   ZSET model -> latest bucket start seen
KEYS[2]      P{hk}:b        ZSET "<bucket>:<model>", score = bucket start
KEYS[3]      P{hk}:h        HASH "<bucket>:<model>" -> "prompt,completion,requests"
                                 "t:<model>"        -> running total of the kept buckets
KEYS[3 + i]  P{hk}:id:<request id of event i>   STRING idempotency marker (expires by itself)

ARGV[1]  now (Unix ms, the caller's clock; event times are clamped to it)
ARGV[2]  bucket length in ms
ARGV[3]  retention cutoff: oldest bucket start still kept (older buckets
         are trimmed, older events are refused as expired)
ARGV[4]  idempotency marker lifetime in ms
then for event i, four arguments starting at ARGV[5 + 4(i-1)]:
         model, finished-at ms, prompt tokens, completion tokens

Returns {counted, duplicates, expired}.

Each event costs O(log n): SET NX, HMGET, HSET; opening a new bucket adds
two ZADDs and a trim of expired buckets (amortised: once per bucket).
]]

local now = tonumber(ARGV[1])
local bucket_ms = tonumber(ARGV[2])
local cutoff = tonumber(ARGV[3])
local ttl = ARGV[4]
local kmodels, kb, kh = KEYS[1], KEYS[2], KEYS[3]

local function unpack3(v)
  if not v then return 0, 0, 0 end
  local p, c, r = string.match(v, '^(%d+),(%d+),(%d+)$')
  return tonumber(p) or 0, tonumber(c) or 0, tonumber(r) or 0
end

local function pack3(p, c, r)
  return string.format('%d,%d,%d', p, c, r)
end

-- Removes buckets older than the cutoff and takes them off the running totals.
local function trim()
  local old = redis.call('ZRANGEBYSCORE', kb, '-inf', '(' .. cutoff, 'LIMIT', 0, 1000)
  if #old == 0 then return end
  local vals = redis.call('HMGET', kh, unpack(old))
  local delta = {}
  for j = 1, #old do
    local model = string.match(old[j], '^%d+:(.*)$')
    local p, c, r = unpack3(vals[j])
    local d = delta[model]
    if not d then d = {0, 0, 0}; delta[model] = d end
    d[1], d[2], d[3] = d[1] + p, d[2] + c, d[3] + r
  end
  redis.call('HDEL', kh, unpack(old))
  redis.call('ZREM', kb, unpack(old))
  for model, d in pairs(delta) do
    local tp, tc, tr = unpack3(redis.call('HGET', kh, 't:' .. model))
    tp, tc, tr = tp - d[1], tc - d[2], tr - d[3]
    if tr <= 0 and tp <= 0 and tc <= 0 then
      redis.call('HDEL', kh, 't:' .. model)
      redis.call('ZREM', kmodels, model)
    else
      redis.call('HSET', kh, 't:' .. model, pack3(tp, tc, tr))
    end
  end
end

local counted, dups, expired = 0, 0, 0
local n = #KEYS - 3
for i = 1, n do
  local a = 5 + 4 * (i - 1)
  local model = ARGV[a]
  local t = tonumber(ARGV[a + 1])
  if t > now then t = now end
  local b = t - (t % bucket_ms)
  if b < cutoff then
    expired = expired + 1
  elseif not redis.call('SET', KEYS[3 + i], '1', 'NX', 'PX', ttl) then
    dups = dups + 1
  else
    local p, c = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    local field = string.format('%d', b) .. ':' .. model
    local tfield = 't:' .. model
    local cur = redis.call('HMGET', kh, field, tfield)
    if not cur[1] then
      trim()
      redis.call('ZADD', kb, b, field)
      redis.call('ZADD', kmodels, 'GT', b, model)
      cur = redis.call('HMGET', kh, field, tfield)
    end
    local bp, bc, br = unpack3(cur[1])
    local tp, tc, tr = unpack3(cur[2])
    redis.call('HSET', kh, field, pack3(bp + p, bc + c, br + 1), tfield, pack3(tp + p, tc + c, tr + 1))
    counted = counted + 1
  end
end
return {counted, dups, expired}

--[[
ledger-record.lua: count a batch of usage events of ONE miner.

All keys carry the miner's hash tag {hotkey}, so the script runs on one
Redis Cluster slot.

KEYS[1]            P{hk}:models        ZSET model -> latest bucket start seen
then for event i (i = 1..n), three keys:
KEYS[2 + 3(i-1)]   P{hk}:b:<model>     ZSET bucket start (member and score)
KEYS[3 + 3(i-1)]   P{hk}:h:<model>     HASH <bucket start> -> "p,c,r"; "t" -> running total "p,c,r"
KEYS[4 + 3(i-1)]   P{hk}:id:<request>  STRING idempotency marker (expires by itself)

ARGV[1]  now (Unix ms, the caller's clock; event times are clamped to it)
ARGV[2]  bucket length in ms
ARGV[3]  retention cutoff: oldest bucket start still kept (older buckets
         are trimmed, older events are refused as expired)
ARGV[4]  idempotency marker lifetime in ms
then for event i, four arguments starting at ARGV[5 + 4(i-1)]:
         model, finished-at ms, prompt tokens, completion tokens

Returns {counted, duplicates, expired}.

Each event costs O(log n): one SET NX, one HMGET, one HSET, plus a ZADD
and a trim of expired buckets only when it opens a new bucket.
]]

local now = tonumber(ARGV[1])
local bucket_ms = tonumber(ARGV[2])
local cutoff = tonumber(ARGV[3])
local ttl = ARGV[4]

local function unpack3(v)
  if not v then return 0, 0, 0 end
  local p, c, r = string.match(v, '^(%d+),(%d+),(%d+)$')
  return tonumber(p) or 0, tonumber(c) or 0, tonumber(r) or 0
end

local function pack3(p, c, r)
  return string.format('%d,%d,%d', p, c, r)
end

-- Removes buckets older than the cutoff and takes them off the running total.
local function trim(bz, h)
  local old = redis.call('ZRANGEBYSCORE', bz, '-inf', '(' .. cutoff, 'LIMIT', 0, 1000)
  if #old == 0 then return end
  local vals = redis.call('HMGET', h, 't', unpack(old))
  local tp, tc, tr = unpack3(vals[1])
  for j = 2, #vals do
    local p, c, r = unpack3(vals[j])
    tp, tc, tr = tp - p, tc - c, tr - r
  end
  redis.call('HDEL', h, unpack(old))
  redis.call('ZREM', bz, unpack(old))
  redis.call('HSET', h, 't', pack3(tp, tc, tr))
end

local counted, dups, expired = 0, 0, 0
local n = (#KEYS - 1) / 3
for i = 1, n do
  local bz, h, idk = KEYS[2 + 3 * (i - 1)], KEYS[3 + 3 * (i - 1)], KEYS[4 + 3 * (i - 1)]
  local a = 5 + 4 * (i - 1)
  local model = ARGV[a]
  local t = tonumber(ARGV[a + 1])
  if t > now then t = now end
  local b = t - (t % bucket_ms)
  if b < cutoff then
    expired = expired + 1
  elseif not redis.call('SET', idk, '1', 'NX', 'PX', ttl) then
    dups = dups + 1
  else
    local p, c = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    local field = string.format('%d', b)
    local cur = redis.call('HMGET', h, field, 't')
    if not cur[1] then
      redis.call('ZADD', bz, b, field)
      redis.call('ZADD', KEYS[1], 'GT', b, model)
      trim(bz, h)
      cur = redis.call('HMGET', h, field, 't')
    end
    local bp, bc, br = unpack3(cur[1])
    local tp, tc, tr = unpack3(cur[2])
    redis.call('HSET', h, field, pack3(bp + p, bc + c, br + 1), 't', pack3(tp + p, tc + c, tr + 1))
    counted = counted + 1
  end
end
return {counted, dups, expired}

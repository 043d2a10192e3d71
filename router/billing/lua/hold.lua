--[[
hold.lua: reserve a request's worst-case cost on one API key, atomically.

KEYS[1]  P{key:<id>}:a      HASH the account: metered, budget, balance, held
KEYS[2]  P{key:<id>}:holds  ZSET request id -> hold expiry (Unix ms)
KEYS[3]  P{key:<id>}:hamt   HASH request id -> held micros
KEYS[4]  P{key:<id>}:s      HASH spend; "D:<UTC day>" -> cost that day

ARGV[1]  now (Unix ms, the caller's clock)
ARGV[2]  request id
ARGV[3]  amount in micros
ARGV[4]  expiry of the hold (now + its lifetime)
ARGV[5]  today's UTC day number

Holds that expired at `now` are dropped first. A key without an account,
or unmetered without a budget, holds nothing and passes. Otherwise the
hold needs balance - held >= amount (metered) and spent today + held +
amount <= budget (with a budget). A request already holding passes again
without holding more.

Returns {1} when held, or {0, reason, available} with reason "credits" or
"budget" and available the most the key could hold now (>= 0).
]]
local ka, kholds, kamt, ks = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = tonumber(ARGV[1])
local rid = ARGV[2]
local amount = tonumber(ARGV[3])
local acct = redis.call('HMGET', ka, 'metered', 'budget', 'balance', 'held')
local metered, budget = acct[1], acct[2]
if not metered or (metered ~= '1' and not budget) then return {1} end

-- Sweep expired holds (bounded per call; the next call takes the rest).
local held = tonumber(acct[4] or '0')
local old = redis.call('ZRANGEBYSCORE', kholds, '-inf', now, 'LIMIT', 0, 1000)
if #old > 0 then
  local amts = redis.call('HMGET', kamt, unpack(old))
  local freed = 0
  for i = 1, #old do freed = freed + tonumber(amts[i] or '0') end
  redis.call('HDEL', kamt, unpack(old))
  redis.call('ZREM', kholds, unpack(old))
  held = held - freed
  redis.call('HINCRBY', ka, 'held', string.format('%d', -freed))
end
if redis.call('HEXISTS', kamt, rid) == 1 then return {1} end

local avail = nil
local reason = nil
if metered == '1' then
  avail = tonumber(acct[3] or '0') - held
  if avail < amount then reason = 'credits' end
end
if budget then
  local spent = tonumber(redis.call('HGET', ks, 'D:' .. ARGV[5]) or '0')
  local left = tonumber(budget) - spent - held
  if left < amount and not reason then reason = 'budget' end
  if not avail or left < avail then avail = left end
end
if reason then
  if avail < 0 then avail = 0 end
  return {0, reason, avail}
end
redis.call('ZADD', kholds, ARGV[4], rid)
redis.call('HSET', kamt, rid, ARGV[3])
redis.call('HINCRBY', ka, 'held', ARGV[3])
return {1}

--[[
release.lua: drop one request's hold without charging.

KEYS[1]  P{key:<id>}:a      HASH the account: held (sum of holds)
KEYS[2]  P{key:<id>}:holds  ZSET request id -> hold expiry (Unix ms)
KEYS[3]  P{key:<id>}:hamt   HASH request id -> held micros

ARGV[1]  request id

Returns 1 when a hold was dropped, 0 when there was none (already settled,
released or expired and swept).
]]
local amt = redis.call('HGET', KEYS[3], ARGV[1])
if not amt then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'held', string.format('%d', -tonumber(amt)))
return 1

--[[
tier-remove.lua: remove a model's tier entry (back to the default
multiplier 1) and audit the change.

KEYS[1]  P{tiers}       HASH model -> multiplier (decimal text)
KEYS[2]  P{tiers}:log   LIST of JSON audit entries, newest first, capped
KEYS[3]  P{tiers}:models   HASH model -> catalogue details (removed with the tier: see router/catalogue)
KEYS[4]  P{tiers}:version  STRING counter running routers poll

ARGV[1]  now (Unix ms)
ARGV[2]  model id
ARGV[3]  audit log cap (entries kept)

Returns 1 when an entry was removed, 0 when there was none (nothing logged).
]]

local old = redis.call('HGET', KEYS[1], ARGV[2])
if not old then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('INCR', KEYS[4])
redis.call('LPUSH', KEYS[2], cjson.encode({
  at_ms = tonumber(ARGV[1]), op = 'remove', model = ARGV[2], from = old, to = cjson.null,
}))
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
return 1

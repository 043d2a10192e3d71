--[[
tier-set.lua: set a model's tier multiplier and audit the change.

KEYS[1]  P{tiers}       HASH model -> multiplier (decimal text)
KEYS[2]  P{tiers}:log   LIST of JSON audit entries, newest first, capped
KEYS[3]  P{tiers}:version  STRING counter running routers poll (see router/catalogue)

ARGV[1]  now (Unix ms)
ARGV[2]  model id
ARGV[3]  multiplier (decimal text)
ARGV[4]  audit log cap (entries kept)

Returns the previous multiplier text, or false when there was none.
]]

local old = redis.call('HGET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('LPUSH', KEYS[2], cjson.encode({
  at_ms = tonumber(ARGV[1]), op = 'set', model = ARGV[2], from = old or cjson.null, to = ARGV[3],
}))
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
redis.call('INCR', KEYS[3])
return old

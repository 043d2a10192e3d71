--[[
model-remove.lua: remove one model from the catalogue (its tier entry and
its details), audit the change and bump the catalogue version.

KEYS[1]  P{tiers}           HASH model -> tier multiplier
KEYS[2]  P{tiers}:models    HASH model -> JSON details
KEYS[3]  P{tiers}:log       LIST of JSON audit entries, newest first, capped
KEYS[4]  P{tiers}:version   STRING counter

ARGV[1]  now (Unix ms)
ARGV[2]  model id
ARGV[3]  audit log cap (entries kept)

Returns 1 when the model was in the catalogue, 0 when not (nothing logged).
]]

local old_tier = redis.call('HGET', KEYS[1], ARGV[2])
local old_details = redis.call('HGET', KEYS[2], ARGV[2])
if not old_tier and not old_details then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('LPUSH', KEYS[3], cjson.encode({
  at_ms = tonumber(ARGV[1]), op = 'model-remove', model = ARGV[2],
  from = old_tier or cjson.null, to = cjson.null, details_from = old_details or cjson.null,
}))
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
redis.call('INCR', KEYS[4])
return 1

--[[
model-set.lua: add or replace one model of the catalogue, audit the change
and bump the catalogue version that running routers poll.

The catalogue shares the ledger's tier keys: a model is in the catalogue
exactly when it has a tier entry, and its other fields live beside it.

KEYS[1]  P{tiers}           HASH model -> tier multiplier (decimal text), read by the ledger
KEYS[2]  P{tiers}:models    HASH model -> JSON of the other fields (tokenizer, context, prices, aliases)
KEYS[3]  P{tiers}:log       LIST of JSON audit entries, newest first, capped
KEYS[4]  P{tiers}:version   STRING counter, incremented on every change

ARGV[1]  now (Unix ms)
ARGV[2]  model id
ARGV[3]  tier multiplier (decimal text)
ARGV[4]  details (JSON text)
ARGV[5]  audit log cap (entries kept)

Returns the new version.
]]

local old_tier = redis.call('HGET', KEYS[1], ARGV[2])
local old_details = redis.call('HGET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
redis.call('LPUSH', KEYS[3], cjson.encode({
  at_ms = tonumber(ARGV[1]), op = 'model-set', model = ARGV[2],
  from = old_tier or cjson.null, to = ARGV[3],
  details_from = old_details or cjson.null, details_to = ARGV[4],
}))
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[5]) - 1)
return redis.call('INCR', KEYS[4])

--[[
configure.lua: open or update one API key's account settings.

KEYS[1]  P{key:<id>}:a   HASH the account (see router/billing/redis.ts)

ARGV[1]  metered: "1" or "0"
ARGV[2]  daily budget in micros, or "" for none
ARGV[3]  now (Unix ms)

A new account starts at balance 0; an existing one keeps its balance,
holds and spend (only the settings change). Returns 1.
]]
local ka = KEYS[1]
redis.call('HSET', ka, 'metered', ARGV[1])
if ARGV[2] == '' then
  redis.call('HDEL', ka, 'budget')
else
  redis.call('HSET', ka, 'budget', ARGV[2])
end
redis.call('HSETNX', ka, 'created', ARGV[3])
return 1

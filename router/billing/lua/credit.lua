--[[
credit.lua: append one audited credit entry to an API key's account,
exactly once per entry id.

KEYS[1]  P{key:<id>}:a     HASH the account: balance, credited
KEYS[2]  P{key:<id>}:ids   SET  ids of the entries applied
KEYS[3]  P{key:<id>}:log   LIST the entries (JSON), newest first; never trimmed or edited

ARGV[1]  entry id
ARGV[2]  amount in micros (a whole number, negative for a correction)
ARGV[3]  the entry as JSON (written by the caller, stored as is)

Returns 1 when applied, 0 when an entry with this id was applied before
(nothing changes).
]]
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[3], ARGV[3])
redis.call('HINCRBY', KEYS[1], 'balance', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'credited', ARGV[2])
return 1

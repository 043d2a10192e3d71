--[[
credit.lua: append one audited credit entry to an API key's account,
exactly once per entry id.

KEYS[1]  P{key:<id>}:a     HASH the account: balance, credited
KEYS[2]  P{key:<id>}:ids   SET  ids of the entries applied
KEYS[3]  P{key:<id>}:log   LIST the entries (JSON), newest first; never trimmed or edited

ARGV[1]  entry id
ARGV[2]  amount in micros (a whole number, negative for a correction)
ARGV[3]  the entry as JSON (written by the caller, stored as is)
ARGV[4]  "1" when the caller WAITs for replicas after this (optional)

Returns 1 when applied, 0 when an entry with this id was applied before
(nothing changes). A repeat with ARGV[4] "1" sets `credited` to the value
it has: a write that changes nothing, but that replicas must acknowledge
like any other, so that the caller's WAIT says whether they have the
first application too (WAIT counts only the writes of its own connection,
and a repeat usually comes from another).
]]
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  if ARGV[4] == '1' then
    redis.call('HSET', KEYS[1], 'credited', redis.call('HGET', KEYS[1], 'credited') or '0')
  end
  return 0
end
redis.call('LPUSH', KEYS[3], ARGV[3])
redis.call('HINCRBY', KEYS[1], 'balance', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'credited', ARGV[2])
return 1

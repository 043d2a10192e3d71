-- Appends records to bounded histories (probe results per miner, audits per
-- miner and model) and records each history's owner in a set, atomically.
--
-- KEYS[1]     set of the owners that have a history
-- KEYS[2..n]  one list per entry (newest first): the history the entry joins
-- ARGV[1]     how many records to keep per history
-- ARGV[2..n]  one JSON record per entry, in the same order as KEYS[2..n]
-- ARGV[n+1..] the set member naming each entry's owner, in the same order
-- Returns     the number of entries appended
local keep = tonumber(ARGV[1])
local n = #KEYS - 1
for i = 1, n do
  local list = KEYS[i + 1]
  redis.call('LPUSH', list, ARGV[i + 1])
  redis.call('LTRIM', list, 0, keep - 1)
  redis.call('SADD', KEYS[1], ARGV[n + i + 1])
end
return n

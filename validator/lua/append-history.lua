-- Appends probe results to miners' histories and records the miners, atomically.
--
-- KEYS[1]    set of miner hotkeys that have a history
-- KEYS[2..n] one list per entry (newest first): the history of that entry's miner
-- ARGV[1]    how many results to keep per miner
-- ARGV[2..n] one JSON probe record per entry, in the same order as KEYS[2..n]
-- ARGV[n+1..] the miner hotkey of each entry, in the same order
-- Returns    the number of entries appended
local keep = tonumber(ARGV[1])
local n = #KEYS - 1
for i = 1, n do
  local list = KEYS[i + 1]
  redis.call('LPUSH', list, ARGV[i + 1])
  redis.call('LTRIM', list, 0, keep - 1)
  redis.call('SADD', KEYS[1], ARGV[n + i + 1])
end
return n

-- Forgets the histories a pruning pass found stale (state-store-redis.ts),
-- each only if it is still as the pass read it: a record appended since the
-- read (a probe that landed meanwhile) keeps its history, and its owner.
--
-- KEYS[1]         set of the miners that have a probe history
-- KEYS[2]         set of the (miner, model) pairs that have an audit history
-- KEYS[3..2+n]    the probe histories to forget (lists, newest first)
-- KEYS[3+n..]     the audit histories to forget
-- ARGV[1]         n, how many probe histories
-- then, per probe history: its member of KEYS[1], and its newest entry as
--                 read ('' when it was empty)
-- then, per audit history: its member of KEYS[2], its newest entry as read,
--                 and '0', or the 1-based index of the probe history whose
--                 forgetting it follows (the audits of a forgotten miner):
--                 kept when that one was kept
-- Returns         the number of probe histories forgotten
local n = tonumber(ARGV[1])
local m = #KEYS - 2 - n

-- Unchanged since the read: the same newest entry (records carry their
-- time in ms, so a new one never repeats the old head), or still empty.
local function unchanged(key, head)
  local now = redis.call('LINDEX', key, 0)
  if now == false then return head == '' end
  return now == head
end

local forgotten = {}
local count = 0
for i = 1, n do
  local key = KEYS[2 + i]
  if unchanged(key, ARGV[1 + 2 * i]) then
    redis.call('DEL', key)
    redis.call('SREM', KEYS[1], ARGV[2 * i])
    forgotten[i] = true
    count = count + 1
  end
end

local base = 1 + 2 * n
for j = 1, m do
  local key = KEYS[2 + n + j]
  local member = ARGV[base + 3 * j - 2]
  local head = ARGV[base + 3 * j - 1]
  local follows = tonumber(ARGV[base + 3 * j])
  if (follows == 0 or forgotten[follows]) and unchanged(key, head) then
    redis.call('DEL', key)
    redis.call('SREM', KEYS[2], member)
  end
end
return count

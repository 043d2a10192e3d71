--[[
read.lua: what an account view (or the daily spend) of one API key needs.

KEYS[1]  P{key:<id>}:a      HASH the account
KEYS[2]  P{key:<id>}:holds  ZSET request id -> hold expiry
KEYS[3]  P{key:<id>}:hamt   HASH request id -> held micros
KEYS[4]  P{key:<id>}:s      HASH spend fields (see settle.lua)
KEYS[5]  P{key:<id>}:bz     ZSET "<bucket>:<model>", score = bucket start
KEYS[6]  P{key:<id>}:dz     ZSET "<day>:<model>", score = UTC day

ARGV[1]  now (Unix ms): holds expiring at or before it are not counted
ARGV[2]  first bucket start to read (inclusive)
ARGV[3]  end of the buckets to read (exclusive)
ARGV[4]  first UTC day to read (inclusive)

Returns {account (flat HGETALL), live hold amounts, buckets (flat:
member, cost), days (flat: member, prompt, completion, cost, requests)}.
Values are returned as stored (strings) so the caller adds them exactly.
Read-only.
]]
local ks = KEYS[4]
local acct = redis.call('HGETALL', KEYS[1])
local holds = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')
local amounts = {}
if #holds > 0 then amounts = redis.call('HMGET', KEYS[3], unpack(holds)) end
for i = 1, #amounts do amounts[i] = amounts[i] or '0' end

-- HMGET in slices: unpack() has a limit on how many values it spreads.
local function fields(members, kind, suffixes)
  local out = {}
  local step = math.floor(900 / #suffixes)
  for s = 1, #members, step do
    local names = {}
    local last = math.min(#members, s + step - 1)
    for j = s, last do
      for _, suf in ipairs(suffixes) do names[#names + 1] = kind .. ':' .. members[j] .. ':' .. suf end
    end
    local vals = redis.call('HMGET', ks, unpack(names))
    local k = 0
    for j = s, last do
      out[#out + 1] = members[j]
      for _ = 1, #suffixes do
        k = k + 1
        out[#out + 1] = vals[k] or '0'
      end
    end
  end
  return out
end
local buckets = redis.call('ZRANGEBYSCORE', KEYS[5], ARGV[2], '(' .. ARGV[3])
local days = redis.call('ZRANGEBYSCORE', KEYS[6], ARGV[4], '+inf')
return {acct, amounts, fields(buckets, 'b', {'u'}), fields(days, 'd', {'p', 'c', 'u', 'n'})}

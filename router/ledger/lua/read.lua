--[[
read.lua: trim expired buckets of ONE miner and sum a window per model.

The trim makes this a (small) mutation; it keeps reads cheap for miners that
saw no traffic since their buckets expired, and forgets models whose every
bucket expired.

KEYS[1]  P{hk}:models   ZSET model -> latest bucket start seen
KEYS[2]  P{hk}:b        ZSET "<bucket>:<model>", score = bucket start
KEYS[3]  P{hk}:h        HASH "<bucket>:<model>" -> "p,c,r,served,early,late,cut,paid_p,paid_c"
                        (older: "p,c,r" or the first seven; missing values read as 0);
                        "t:<model>" -> running total

ARGV[1]  retention cutoff: oldest bucket start still kept
ARGV[2]  window start (inclusive, bucket-aligned)
ARGV[3]  window end (exclusive, bucket-aligned)

Returns a flat array {model1, p1, c1, r1, s1, e1, f1, t1, pp1, pc1, model2, ...}:
per model of the miner (models whose buckets all expired are gone) its id,
then prompt, completion, requests, served, failed before output, failed after
output, deadline cuts, paid prompt and paid completion (router/ledger/outcomes.ts).

Cost: O(log n + models) when every kept bucket is inside the window (the
running totals answer), else O(log n + k), k = the smaller of the buckets
inside and outside the window.
]]

local cutoff = tonumber(ARGV[1])
local wstart, wend = ARGV[2], ARGV[3]
local nstart, nend = tonumber(wstart), tonumber(wend)
local kmodels, kb, kh = KEYS[1], KEYS[2], KEYS[3]

local NF = 9
local function zeros() return {0, 0, 0, 0, 0, 0, 0, 0, 0} end
local function unpackv(v)
  local t = zeros()
  if not v then return t end
  local i = 0
  for n in string.gmatch(v, '%d+') do
    i = i + 1
    if i > NF then break end
    t[i] = tonumber(n)
  end
  return t
end
local function allzero(t)
  for i = 1, NF do if t[i] > 0 then return false end end
  return true
end
-- Adds sign * v into acc[model].
local function add_into(acc, model, v, sign)
  local d = acc[model]
  if not d then d = zeros(); acc[model] = d end
  for i = 1, NF do d[i] = d[i] + sign * v[i] end
end
-- Sums "<bucket>:<model>" fields per model into acc[model].
local function sum_into(acc, members, sign)
  for j = 1, #members, 1000 do
    local chunk = {}
    for k = j, math.min(j + 999, #members) do chunk[#chunk + 1] = members[k] end
    local vals = redis.call('HMGET', kh, unpack(chunk))
    for k = 1, #vals do
      add_into(acc, string.match(chunk[k], '^%d+:(.*)$'), unpackv(vals[k]), sign)
    end
  end
end
local function totals(acc, models)
  local fields = {}
  for i = 1, #models do fields[i] = 't:' .. models[i] end
  if #fields == 0 then return end
  local vals = redis.call('HMGET', kh, unpack(fields))
  for i = 1, #models do add_into(acc, models[i], unpackv(vals[i]), 1) end
end
local lo = redis.call('ZRANGE', kb, 0, 0, 'WITHSCORES')
if lo[2] and tonumber(lo[2]) < cutoff then
  local old = redis.call('ZRANGEBYSCORE', kb, '-inf', '(' .. cutoff)
  local gone = {}
  sum_into(gone, old, 1)
  for j = 1, #old, 1000 do
    local chunk = {}
    for k = j, math.min(j + 999, #old) do chunk[#chunk + 1] = old[k] end
    redis.call('HDEL', kh, unpack(chunk))
  end
  redis.call('ZREMRANGEBYSCORE', kb, '-inf', '(' .. cutoff)
  for model, d in pairs(gone) do
    local tot = unpackv(redis.call('HGET', kh, 't:' .. model))
    for i = 1, NF do tot[i] = tot[i] - d[i] end
    if allzero(tot) then
      redis.call('HDEL', kh, 't:' .. model)
      redis.call('ZREM', kmodels, model)
    else
      redis.call('HSET', kh, 't:' .. model, string.format('%d,%d,%d,%d,%d,%d,%d,%d,%d', unpack(tot)))
    end
  end
  lo = redis.call('ZRANGE', kb, 0, 0, 'WITHSCORES')
end

local acc = {}
local models = redis.call('ZRANGE', kmodels, 0, -1)
if not lo[2] then
  models = {}
  redis.call('DEL', kb, kh, kmodels)
else
  local hi = redis.call('ZRANGE', kb, -1, -1, 'WITHSCORES')
  if tonumber(lo[2]) >= nstart and tonumber(hi[2]) < nend then
    totals(acc, models)
  else
    local total = redis.call('ZCARD', kb)
    local inside = redis.call('ZCOUNT', kb, wstart, '(' .. wend)
    if inside <= total - inside then
      sum_into(acc, redis.call('ZRANGEBYSCORE', kb, wstart, '(' .. wend), 1)
    else
      totals(acc, models)
      sum_into(acc, redis.call('ZRANGEBYSCORE', kb, '-inf', '(' .. wstart), -1)
      sum_into(acc, redis.call('ZRANGEBYSCORE', kb, wend, '+inf'), -1)
    end
  end
end

local out = {}
for i = 1, #models do
  local d = acc[models[i]] or zeros()
  out[#out + 1] = models[i]
  for k = 1, NF do out[#out + 1] = d[k] end
end
return out

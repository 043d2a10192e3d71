--[[
ledger-read.lua: trim expired buckets of ONE miner and sum a window per model.

The trim makes this a (small) mutation; it keeps reads cheap for models that
saw no traffic since their buckets expired, and forgets models whose every
bucket expired.

KEYS[1]           P{hk}:models      ZSET model -> latest bucket start seen
then for model i (i = 1..n), two keys:
KEYS[2 + 2(i-1)]  P{hk}:b:<model>   ZSET bucket start
KEYS[3 + 2(i-1)]  P{hk}:h:<model>   HASH <bucket start> -> "p,c,r"; "t" -> total

ARGV[1]  retention cutoff: oldest bucket start still kept
ARGV[2]  window start (inclusive, bucket-aligned)
ARGV[3]  window end (exclusive, bucket-aligned)
ARGV[1 + i + 2]  the model id of model i (ARGV[4] .. ARGV[3 + n])

Returns a flat array {p1, c1, r1, p2, c2, r2, ...}, one triple per model.

Cost per model: O(log n) when every kept bucket is inside the window (it
reads the running total), else O(log n + k), k = the smaller of the
buckets inside and outside the window.
]]

local cutoff = tonumber(ARGV[1])
local wstart = ARGV[2]
local wend = ARGV[3]

local function unpack3(v)
  if not v then return 0, 0, 0 end
  local p, c, r = string.match(v, '^(%d+),(%d+),(%d+)$')
  return tonumber(p) or 0, tonumber(c) or 0, tonumber(r) or 0
end

local function sum(h, fields)
  local p, c, r = 0, 0, 0
  for j = 1, #fields, 1000 do
    local chunk = {}
    for k = j, math.min(j + 999, #fields) do chunk[#chunk + 1] = fields[k] end
    local vals = redis.call('HMGET', h, unpack(chunk))
    for k = 1, #vals do
      local a, b, d = unpack3(vals[k])
      p, c, r = p + a, c + b, r + d
    end
  end
  return p, c, r
end

local out = {}
local n = (#KEYS - 1) / 2
local nstart, nend = tonumber(wstart), tonumber(wend)
for i = 1, n do
  local bz, h = KEYS[2 + 2 * (i - 1)], KEYS[3 + 2 * (i - 1)]
  -- The oldest and newest buckets decide the common case in O(log n):
  -- nothing expired and everything inside the window = the running total.
  local lo = redis.call('ZRANGE', bz, 0, 0, 'WITHSCORES')
  if lo[2] and tonumber(lo[2]) < cutoff then
    local old = redis.call('ZRANGEBYSCORE', bz, '-inf', '(' .. cutoff)
    local op, oc, orr = sum(h, old)
    local tp, tc, tr = unpack3(redis.call('HGET', h, 't'))
    for j = 1, #old, 1000 do
      local chunk = {}
      for k = j, math.min(j + 999, #old) do chunk[#chunk + 1] = old[k] end
      redis.call('HDEL', h, unpack(chunk))
    end
    redis.call('ZREMRANGEBYSCORE', bz, '-inf', '(' .. cutoff)
    redis.call('HSET', h, 't', string.format('%d,%d,%d', tp - op, tc - oc, tr - orr))
    lo = redis.call('ZRANGE', bz, 0, 0, 'WITHSCORES')
  end
  local p, c, r = 0, 0, 0
  if not lo[2] then
    redis.call('DEL', bz, h)
    redis.call('ZREM', KEYS[1], ARGV[3 + i])
  else
    local hi = redis.call('ZRANGE', bz, -1, -1, 'WITHSCORES')
    if tonumber(lo[2]) >= nstart and tonumber(hi[2]) < nend then
      p, c, r = unpack3(redis.call('HGET', h, 't'))
    else
      local total = redis.call('ZCARD', bz)
      local inside = redis.call('ZCOUNT', bz, wstart, '(' .. wend)
      if inside <= total - inside then
        p, c, r = sum(h, redis.call('ZRANGEBYSCORE', bz, wstart, '(' .. wend))
      else
        p, c, r = unpack3(redis.call('HGET', h, 't'))
        local bp, bc, br = sum(h, redis.call('ZRANGEBYSCORE', bz, '-inf', '(' .. wstart))
        local ap, ac, ar = sum(h, redis.call('ZRANGEBYSCORE', bz, wend, '+inf'))
        p, c, r = p - bp - ap, c - bc - ac, r - br - ar
      end
    end
  end
  out[#out + 1] = p
  out[#out + 1] = c
  out[#out + 1] = r
end
return out

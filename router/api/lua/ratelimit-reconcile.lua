-- Settle a reservation once the real token count is known: give back what was
-- reserved and take what was used, and give back the request itself when it
-- was refused for want of capacity. The token bucket may go into debt (down to
-- minus one minute's allowance) when a request used more than it reserved, so
-- later requests wait. Same arithmetic as reconcileBuckets() in
-- router/api/rate-limiter.ts.
--
-- KEYS[1]  hash of the key's buckets: r, t, at (see ratelimit-reserve.lua)
-- ARGV[1]  now, Unix ms
-- ARGV[2]  requests per minute (0: unlimited)
-- ARGV[3]  tokens per minute (0: unlimited)
-- ARGV[4]  tokens reserved
-- ARGV[5]  tokens actually used
-- ARGV[6]  key lifetime in ms
-- ARGV[7]  1: give back the request (refused for capacity), else 0 (absent: 0)
-- Returns  the tokens left in the bucket after settling, rounded down
local now = tonumber(ARGV[1])
local rpm = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local reserved = tonumber(ARGV[4])
local used = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local refund = tonumber(ARGV[7] or '0') == 1
if tpm <= 0 and not (refund and rpm > 0) then return 0 end
local h = redis.call('HMGET', KEYS[1], 'r', 't', 'at')
local r = tonumber(h[1]) or rpm
local t = tonumber(h[2]) or tpm
local at = tonumber(h[3]) or now
local dt = now - at
if dt < 0 then dt = 0 end
r = math.min(rpm, r + dt * rpm / 60000)
t = math.min(tpm, t + dt * tpm / 60000)
if refund and rpm > 0 then r = math.min(rpm, r + 1) end
if tpm > 0 then
  if reserved > tpm then reserved = tpm end
  t = t + reserved - used
  if t > tpm then t = tpm end
  if t < -tpm then t = -tpm end
end
redis.call('HSET', KEYS[1], 'r', string.format('%.17g', r), 't', string.format('%.17g', t), 'at', now)
redis.call('PEXPIRE', KEYS[1], ttl)
return math.floor(t)

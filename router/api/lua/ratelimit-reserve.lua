-- Reserve one request and `cost` tokens from an API key's two token buckets
-- (requests per minute, tokens per minute), atomically. Same arithmetic as
-- reserveBuckets() in router/api/rate-limiter.ts; the shared contract test keeps
-- them in step.
--
-- KEYS[1]  hash of the key's buckets: r (requests left), t (tokens left), at (ms of last update)
-- ARGV[1]  now, Unix ms (the caller's clock: scripts must not read time themselves)
-- ARGV[2]  requests per minute (0: unlimited)
-- ARGV[3]  tokens per minute (0: unlimited)
-- ARGV[4]  tokens to reserve
-- ARGV[5]  key lifetime in ms (a bucket left alone this long is full again)
-- Returns  {1, 0, r, t} when reserved, {0, retry_after_ms, r, t} when refused (nothing taken),
--          where r and t are the levels left in the buckets as exact decimal strings (a Lua
--          number in a reply would be truncated to an integer)
local now = tonumber(ARGV[1])
local rpm = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local h = redis.call('HMGET', KEYS[1], 'r', 't', 'at')
local r = tonumber(h[1]) or rpm
local t = tonumber(h[2]) or tpm
local at = tonumber(h[3]) or now
local dt = now - at
if dt < 0 then dt = 0 end
r = math.min(rpm, r + dt * rpm / 60000)
t = math.min(tpm, t + dt * tpm / 60000)
-- A request larger than the whole minute's allowance waits for a full bucket.
if cost > tpm then cost = tpm end
local wait = 0
if rpm > 0 and r < 1 then wait = math.max(wait, (1 - r) * 60000 / rpm) end
if tpm > 0 and t < cost then wait = math.max(wait, (cost - t) * 60000 / tpm) end
if wait > 0 then
  return {0, math.ceil(wait), string.format('%.17g', r), string.format('%.17g', t)}
end
if rpm > 0 then r = r - 1 end
if tpm > 0 then t = t - cost end
local rs = string.format('%.17g', r)
local ts = string.format('%.17g', t)
redis.call('HSET', KEYS[1], 'r', rs, 't', ts, 'at', now)
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, 0, rs, ts}

--[[
recent.lua: the newest generation records of one API key.

KEYS[1]  P{key:<id>}:gz  ZSET request id, score = created at (ms) (settle.lua keeps it)

ARGV[1]  the prefix of the key's generation records, P{key:<id>}:g: (a request
         id appended names its STRING; it carries KEYS[1]'s hash tag, so every
         key read here lives in KEYS[1]'s slot)
ARGV[2]  how many to read (1..100)

Returns {ids, records}: the newest ARGV[2] request ids, newest first, and
their records as stored (compact, or the JSON of older routers: see
settle.lua); false where a record is gone (expired). A compact record does
not hold its request id, hence the ids. The caller drops the gone ones and
records past their expiry. Read-only.
]]
local ids = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
if #ids == 0 then return {{}, {}} end
local names = {}
for i, id in ipairs(ids) do names[i] = ARGV[1] .. id end
return {ids, redis.call('MGET', unpack(names))}

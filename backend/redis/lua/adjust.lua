-- Adds delta units to a bucket counter, refusing to take it below zero.
-- KEYS[1] meta, KEYS[2] bucket counter; ARGV[1] delta, ARGV[2] the item's epoch the
-- caller read before its change in MySQL. Returns the new value, -1 when refused, -2
-- when Redis holds no sale state for the item or the item was loaded anew since
-- (warm.lua: the load may hold the change already; nothing written: MySQL is the
-- truth the load read, and the reconciler raises a counter left short).
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
if (redis.call('HGET', KEYS[1], 'epoch') or '') ~= ARGV[2] then return -2 end
local v = tonumber(redis.call('GET', KEYS[2]) or '0')
local d = tonumber(ARGV[1])
if v + d < 0 then return -1 end
local n = redis.call('INCRBY', KEYS[2], d)
redis.call('HINCRBY', KEYS[1], 'changes', 1)
if d > 0 then announce_stock(KEYS[1]) end
return n

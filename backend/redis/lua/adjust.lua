-- Adds delta units to a bucket counter, refusing to take it below zero.
-- KEYS[1] bucket counter; ARGV[1] delta. Returns the new value, or -1 when refused.
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local d = tonumber(ARGV[1])
if v + d < 0 then return -1 end
return redis.call('INCRBY', KEYS[1], d)

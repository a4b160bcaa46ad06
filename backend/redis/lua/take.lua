-- Takes up to n units out of a bucket counter (for moving them to another bucket);
-- returns how many it took.
-- KEYS[1] bucket counter; ARGV[1] n
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = math.min(v, tonumber(ARGV[1]))
if n <= 0 then return 0 end
redis.call('DECRBY', KEYS[1], n)
return n

-- Takes up to n units out of a bucket counter (to move them to another bucket, or to
-- lower the stock); returns how many it took (0 when Redis holds no sale state).
-- KEYS[1] meta, KEYS[2] bucket counter; ARGV[1] n
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local v = tonumber(redis.call('GET', KEYS[2]) or '0')
local n = math.min(v, tonumber(ARGV[1]))
if n <= 0 then return 0 end
redis.call('DECRBY', KEYS[2], n)
return n

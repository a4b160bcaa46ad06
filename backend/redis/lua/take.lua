-- Takes up to n units out of a bucket counter (to move them to another bucket, or to
-- lower the stock); returns how many it took (0 when Redis holds no sale state), or -1
-- when the fencing token is lower than one the item has seen (see reset.lua).
-- KEYS[1] meta, KEYS[2] bucket counter; ARGV[1] n, ARGV[2] fencing token
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if not fenced_ok(KEYS[1], ARGV[2]) then return -1 end
local v = tonumber(redis.call('GET', KEYS[2]) or '0')
local n = math.min(v, tonumber(ARGV[1]))
if n <= 0 then return 0 end
redis.call('DECRBY', KEYS[2], n)
redis.call('HINCRBY', KEYS[1], 'changes', 1)
return n

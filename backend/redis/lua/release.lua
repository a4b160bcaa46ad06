-- Gives back the stock of a committed order that was cancelled or expired. Idempotent
-- per order: the order's ticket is remembered in the released set.
--
-- KEYS[1] buyers, KEYS[2] released set, KEYS[3] bucket stock counter of the order
-- ARGV[1] ticket, ARGV[2] user id, ARGV[3] quantity
--
-- Returns 1 when the stock was given back now, 0 when it had been before.
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('INCRBY', KEYS[3], tonumber(ARGV[3]))
if redis.call('HINCRBY', KEYS[1], ARGV[2], -tonumber(ARGV[3])) <= 0 then redis.call('HDEL', KEYS[1], ARGV[2]) end
return 1

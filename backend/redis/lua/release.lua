-- Gives back the stock of a committed order that was cancelled or expired. Idempotent
-- per order: the order's ticket is remembered in the released set, which lives as long
-- as ticket results do.
--
-- KEYS[1] meta, KEYS[2] buyers, KEYS[3] released set, KEYS[4] pending releases,
-- KEYS[5..] bucket stock counters
-- ARGV[1] ticket, ARGV[2] user id, ARGV[3] quantity, ARGV[4] parts, ARGV[5] set TTL s,
-- ARGV[6] pending TTL s (each record carries the time it was made, by Redis's clock:
-- the warm lets one older than the TTL lapse, whatever the hash's expiry says)
--
-- Returns 1 when the stock was given back now, 0 when it had been before, -1 when
-- Redis holds no sale state for the item (it restarted empty): the release waits in
-- the pending hash for the next warm, which gives it back unless the MySQL it read
-- had the units back already (warm.lua); {-2, highest bucket} when a part names a
-- bucket past the counters passed (nothing written: call again with more).
if redis.call('EXISTS', KEYS[1]) == 0 then
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4] .. '|' .. ms)
  redis.call('EXPIRE', KEYS[4], tonumber(ARGV[6]))
  return -1
end
local parts = parse_parts(ARGV[4], ARGV[3])
if max_bucket(parts) >= #KEYS - 4 then return {-2, max_bucket(parts)} end
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[5]))
for _, p in ipairs(parts) do redis.call('INCRBY', KEYS[5 + p[1]], p[2]) end
redis.call('HINCRBY', KEYS[1], 'changes', 1)
announce_stock(KEYS[1])
if redis.call('HINCRBY', KEYS[2], ARGV[2], -tonumber(ARGV[3])) <= 0 then redis.call('HDEL', KEYS[2], ARGV[2]) end
return 1

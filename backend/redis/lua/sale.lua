-- Writes the sale state of a loaded item (an operator changed its activity or the item):
-- state, window, limit and bucket count, at the activity's version, unless the meta
-- holds this version or a newer one. Counters, buyers and records stay as they are.
--
-- KEYS[1] meta; ARGV[1] version, ARGV[2] state, ARGV[3] start ms, ARGV[4] end ms,
-- ARGV[5] limit, ARGV[6] buckets.
-- Returns 1 when written, 2 when the meta holds this version or a newer one, 0 when the item is not
-- loaded (nothing written: the next warm reads MySQL whole).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local held = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if tonumber(ARGV[1]) <= held then return 2 end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'state', ARGV[2], 'start', ARGV[3], 'end', ARGV[4], 'limit', ARGV[5], 'buckets', ARGV[6])
return 1

-- Sets one field of an item's sale state (state, buckets) when the item is loaded;
-- an item never warmed (or lost in a restart) stays unloaded, so the next order warms
-- it whole from MySQL.
-- KEYS[1] meta; ARGV[1] field, ARGV[2] value. Returns 1 when set, 0 when not loaded.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1

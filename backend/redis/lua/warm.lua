-- Loads an item's sale state into Redis from MySQL's view.
--
-- KEYS[1] meta, KEYS[2] buyers, KEYS[3..] bucket stock counters
-- ARGV[1] state, ARGV[2] start ms, ARGV[3] end ms, ARGV[4] limit, ARGV[5] buckets,
-- ARGV[6] "1" to overwrite stock counters, "0" to set only missing ones,
-- ARGV[7..] the stock of each bucket, then pairs of user id and units held
--
-- Stock counters that exist are kept unless asked (they are live during a sale); buyer
-- records are added only where Redis has none (Redis restarted empty).
local n = #KEYS - 2
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'start', ARGV[2], 'end', ARGV[3], 'limit', ARGV[4], 'buckets', ARGV[5])
for i = 1, n do
  if ARGV[6] == '1' then
    redis.call('SET', KEYS[2 + i], ARGV[6 + i])
  else
    redis.call('SETNX', KEYS[2 + i], ARGV[6 + i])
  end
end
local i = 7 + n
while i < #ARGV do
  redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
return n

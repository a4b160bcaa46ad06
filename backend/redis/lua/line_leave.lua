-- Ends a waiting-room admission once the backend answered (docs/WAITING_ROOM.md).
--
-- KEYS[1] line, KEYS[2] seen, KEYS[3] joined, KEYS[4] used, KEYS[5] lease
-- ARGV[1] user, ARGV[2] the admission's place, ARGV[3] "1" to put the shopper back at
-- that place (the backend took nothing and the shopper may retry), else "0"
--
-- Returns 1 when the admission was in flight, 0 when it had been dropped. An end of an
-- older admission (its lease lapsed, and the shopper was admitted again since, at a
-- new place) changes nothing: it must not free the newer one's slot.
-- A slot freed while shoppers wait in line is announced on sk:stock as
-- "freed <activity> <item>", so the gateways wake the heads they hold (?wait=).
local seq = tonumber(ARGV[2]) or 0
if seq > 0 and tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0') ~= seq then
  return 0
end
local removed = redis.call('ZREM', KEYS[5], ARGV[1])
if ARGV[3] == '1' and seq > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('ZADD', KEYS[1], 'NX', seq, ARGV[1])
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('HSETNX', KEYS[3], ARGV[1], now)
  redis.call('HDEL', KEYS[4], ARGV[1])
end
if removed == 1 and redis.call('ZCARD', KEYS[1]) > 0 then
  local a, i = string.match(KEYS[1], '{a(%d+):i(%d+)}')
  if a then redis.call('PUBLISH', 'sk:stock', 'freed ' .. a .. ' ' .. i) end
end
return removed

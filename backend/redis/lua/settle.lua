-- Ends an in-flight ticket: records its result and, when it failed, gives its stock back.
-- Idempotent: a ticket no longer in flight is left alone.
--
-- KEYS[1] buyers, KEYS[2] idem, KEYS[3] inflight, KEYS[4] ticket result key,
-- KEYS[5..] bucket stock counters
-- ARGV[1] ticket, ARGV[2] result JSON, ARGV[3] result TTL seconds,
-- ARGV[4] "1" to give the stock back (the request failed), "0" when the order was written
--
-- Returns 1 when this call settled the ticket, 0 when it had been settled before.
local v = redis.call('HGET', KEYS[3], ARGV[1])
if not v then return 0 end
local user, qty, bucket, _, idem = string.match(v, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('SET', KEYS[4], ARGV[2], 'EX', tonumber(ARGV[3]))
if ARGV[4] == '1' then
  redis.call('INCRBY', KEYS[5 + tonumber(bucket)], tonumber(qty))
  if redis.call('HINCRBY', KEYS[1], user, -tonumber(qty)) <= 0 then redis.call('HDEL', KEYS[1], user) end
  -- A failed request was not taken: a retry with the same key may try again.
  if idem ~= '' then redis.call('HDEL', KEYS[2], idem) end
end
return 1

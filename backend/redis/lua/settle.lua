-- Ends an in-flight ticket: records its result and, when it failed, gives back what it
-- held. Idempotent: a ticket no longer in flight keeps the result it has.
--
-- KEYS[1] buyers, KEYS[2] idem, KEYS[3] inflight, KEYS[4] ticket result key,
-- KEYS[5..] bucket stock counters
-- ARGV[1] ticket, ARGV[2] result JSON, ARGV[3] result TTL seconds,
-- ARGV[4] "0": the order was written; "1": the request failed, give back its stock,
--         buyer units and idempotency key; "2": the request failed because the stock
--         was not there after all (MySQL had less than Redis): give back the buyer
--         units and the key, not the phantom stock
--
-- Returns 1 when this call settled the ticket, 0 when it was not in flight (settled
-- before, or Redis lost it in a restart: then the result is recorded if none is).
local v = redis.call('HGET', KEYS[3], ARGV[1])
if not v then
  redis.call('SET', KEYS[4], ARGV[2], 'EX', tonumber(ARGV[3]), 'NX')
  return 0
end
local user, qty, bucket, _, idem = string.match(v, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('SET', KEYS[4], ARGV[2], 'EX', tonumber(ARGV[3]))
if ARGV[4] ~= '0' then
  if ARGV[4] == '1' then
    redis.call('INCRBY', KEYS[5 + tonumber(bucket)], tonumber(qty))
  end
  if redis.call('HINCRBY', KEYS[1], user, -tonumber(qty)) <= 0 then redis.call('HDEL', KEYS[1], user) end
  -- A failed request was not taken: a retry with the same key may try again.
  if idem ~= '' then redis.call('HDEL', KEYS[2], idem) end
end
return 1

-- The waiting room's step for one shopper of one item (docs/WAITING_ROOM.md): reads the
-- stock left from the ledger's counters, bounds the admissions in flight by
-- ceil(k x stock left), and admits the shopper if their place is within the capacity
-- left, or gives or keeps their place in line. All in one atomic step, so the bound
-- and the order hold whichever gateway calls.
--
-- KEYS[1] meta      the ledger's hash (state, buckets, limit): absent when the item is
--                   not loaded
-- KEYS[2] line      zset user -> place (arrival number)
-- KEYS[3] seen      zset user -> when the place was last asked about (ms)
-- KEYS[4] joined    hash user -> when the place was taken (ms)
-- KEYS[5] used      hash user -> the place an admission used (no rejoining it)
-- KEYS[6] lease     zset user -> when the admission in flight is dropped (ms)
-- KEYS[7] info      hash: seq (last place given), counters, rate, rate_t
-- KEYS[8] buyers    the ledger's hash: user -> units held (in flight or sold)
-- KEYS[9..] the ledger's bucket stock counters, bucket 0 first
-- ARGV[1] user, ARGV[2] the place a token names (0: none), ARGV[3] when the token was
-- issued (ms), ARGV[4] k, ARGV[5] place ttl (ms), ARGV[6] lease (ms), ARGV[7] the
-- units the shopper orders (0: not known, no limit check)
--
-- Returns {code, place, position, length, in flight, capacity, stock left, waited ms,
-- now ms, rate x 1000}; code 0 admitted, 1 queued, 2 sold out, 3 busy (an admission
-- of the shopper is in flight), 4 open (no sale state, or not on sale: no bound),
-- 5 limit (the shopper holds so many units that the order would pass the per-user
-- limit: no place is given, and one held is given up: a head that cannot buy would
-- hold a slot's worth of the line);
-- {-1, buckets} when the item has more bucket counters than passed (nothing written).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local user = ARGV[1]
local ttl = tonumber(ARGV[5])
local nb = #KEYS - 8
local meta = redis.call('HMGET', KEYS[1], 'state', 'buckets', 'limit')
if not meta[1] or meta[1] ~= 'published' then
  return {4, 0, 0, 0, 0, 0, 0, 0, now, 0}
end
local buckets = tonumber(meta[2] or '1') or 1
if buckets > nb then return {-1, buckets} end
local left = 0
for b = 1, nb do left = left + tonumber(redis.call('GET', KEYS[8 + b]) or '0') end

-- The rate of admissions: a decaying average over about five seconds.
local tau = 5000
local function rate_now()
  local r = redis.call('HMGET', KEYS[7], 'rate', 'rate_t')
  local v, at = tonumber(r[1] or '0') or 0, tonumber(r[2] or '0') or 0
  if v == 0 then return 0 end
  return v * math.exp(-(now - at) / tau)
end

-- Admissions whose gateway never came back, places nobody asked about for ttl.
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - ttl), 'LIMIT', 0, 64)
for _, u in ipairs(stale) do
  redis.call('ZREM', KEYS[2], u)
  redis.call('ZREM', KEYS[3], u)
  redis.call('HDEL', KEYS[4], u)
end
if #stale > 0 then redis.call('HINCRBY', KEYS[7], 'lapsed', #stale) end

local inflight = redis.call('ZCARD', KEYS[6])
local cap = 0
if left > 0 then cap = math.ceil(tonumber(ARGV[4]) * left - 1e-9) end
if redis.call('ZSCORE', KEYS[6], user) then
  return {3, 0, 0, redis.call('ZCARD', KEYS[2]), inflight, cap, left, 0, now, math.floor(rate_now() * 1000)}
end
-- A shopper the order would take past the limit is told so here: a place and a slot
-- in flight would only carry the order to the backend's refusal.
local qty, limit = tonumber(ARGV[7] or '0') or 0, tonumber(meta[3] or '0') or 0
if qty > 0 and limit > 0 and tonumber(redis.call('HGET', KEYS[8], user) or '0') + qty > limit then
  if redis.call('ZREM', KEYS[2], user) == 1 then
    redis.call('ZREM', KEYS[3], user)
    redis.call('HDEL', KEYS[4], user)
  end
  return {5, 0, 0, redis.call('ZCARD', KEYS[2]), inflight, cap, left, 0, now, math.floor(rate_now() * 1000)}
end

local seq = tonumber(redis.call('ZSCORE', KEYS[2], user))
local fresh = false
if not seq then
  local want = tonumber(ARGV[2]) or 0
  local used = tonumber(redis.call('HGET', KEYS[5], user) or '0')
  if want > 0 and tonumber(ARGV[3]) >= now - ttl and want > used then
    seq = want -- the store lost the place; the token, still fresh, gives it back
  elseif left <= 0 then
    return {2, 0, 0, redis.call('ZCARD', KEYS[2]), inflight, 0, 0, 0, now, math.floor(rate_now() * 1000)}
  else
    seq = redis.call('HINCRBY', KEYS[7], 'seq', 1)
    redis.call('HINCRBY', KEYS[7], 'places', 1)
    fresh = true
  end
  redis.call('ZADD', KEYS[2], seq, user)
  redis.call('HSET', KEYS[4], user, now)
  for k = 2, 5 do redis.call('PEXPIRE', KEYS[k], 172800000) end
  redis.call('PEXPIRE', KEYS[7], 172800000)
end
redis.call('ZADD', KEYS[3], now, user)
local length = redis.call('ZCARD', KEYS[2])
local rank = redis.call('ZRANK', KEYS[2], user)
if left <= 0 then
  redis.call('HINCRBY', KEYS[7], 'sold_out_told', 1)
  return {2, seq, rank + 1, length, inflight, 0, 0, 0, now, math.floor(rate_now() * 1000)}
end
if rank < cap - inflight then
  local joined = tonumber(redis.call('HGET', KEYS[4], user) or now)
  redis.call('ZREM', KEYS[2], user)
  redis.call('ZREM', KEYS[3], user)
  redis.call('HDEL', KEYS[4], user)
  redis.call('HSET', KEYS[5], user, seq)
  redis.call('ZADD', KEYS[6], now + tonumber(ARGV[6]), user)
  redis.call('PEXPIRE', KEYS[6], 172800000)
  local waited = 0
  redis.call('HINCRBY', KEYS[7], 'admitted', 1)
  if not fresh then
    waited = now - joined
    redis.call('HINCRBY', KEYS[7], 'admitted_from_line', 1)
    redis.call('HINCRBY', KEYS[7], 'wait_sum_ms', waited)
  end
  local rate = rate_now() + 1000 / tau
  redis.call('HSET', KEYS[7], 'rate', tostring(rate), 'rate_t', now)
  return {0, seq, 0, length - 1, inflight + 1, cap, left, waited, now, math.floor(rate * 1000)}
end
return {1, seq, rank + 1, length, inflight, cap, left, 0, now, math.floor(rate_now() * 1000)}

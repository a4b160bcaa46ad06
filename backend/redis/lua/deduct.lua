-- Pre-deducts stock for one admitted request, atomically, on one item's keys.
--
-- KEYS[1] meta      hash: state, start, end (unix ms), limit (units per user), buckets
-- KEYS[2] buyers    hash: user id -> units held
-- KEYS[3] idem      hash: "<user>:<idempotency key>" -> ticket
-- KEYS[4] inflight  hash: ticket -> "<user>|<qty>|<bucket>|<admitted ms>|<idem field>"
-- KEYS[5..] bucket stock counters, bucket 0 first
-- ARGV[1] user id, ARGV[2] quantity, ARGV[3] idem field or "", ARGV[4] new ticket,
-- ARGV[5] home bucket (0-based)
--
-- Returns {code, value}:
--   {0, bucket}   deducted from that bucket; the ticket is now in flight
--   {1, ticket}   the idempotency key was seen before: that request's ticket, nothing deducted
--   {2} sold out   {3} per-user limit   {4} not started   {5} ended
--   {6} not loaded (no meta: Redis lost its state)   {7} not on sale   {8} bad quantity
-- Order of checks: replay, state, window, quantity, buyer limit, stock. The buyer check
-- comes before any deduction, and the stock check covers the whole quantity.
local meta = redis.call('HMGET', KEYS[1], 'state', 'start', 'end', 'limit', 'buckets')
if not meta[1] then return {6} end
if ARGV[3] ~= '' then
  local prev = redis.call('HGET', KEYS[3], ARGV[3])
  if prev then return {1, prev} end
end
if meta[1] ~= 'published' then return {7} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now < tonumber(meta[2]) then return {4} end
if now >= tonumber(meta[3]) then return {5} end
local qty = tonumber(ARGV[2])
if not qty or qty <= 0 or qty ~= math.floor(qty) then return {8} end
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if held + qty > tonumber(meta[4]) then return {3} end
local n = #KEYS - 4
local home = tonumber(ARGV[5]) % n
local taken = -1
for i = 0, n - 1 do
  local b = (home + i) % n
  local left = tonumber(redis.call('GET', KEYS[5 + b]) or '0')
  if left >= qty then
    redis.call('DECRBY', KEYS[5 + b], qty)
    taken = b
    break
  end
end
if taken < 0 then return {2} end
redis.call('HINCRBY', KEYS[2], ARGV[1], qty)
if ARGV[3] ~= '' then redis.call('HSET', KEYS[3], ARGV[3], ARGV[4]) end
redis.call('HSET', KEYS[4], ARGV[4], ARGV[1] .. '|' .. qty .. '|' .. taken .. '|' .. now .. '|' .. ARGV[3])
return {0, taken}

-- Loads an item's sale state into Redis from MySQL's view.
--
-- KEYS[1] meta, KEYS[2] buyers, KEYS[3] idem, KEYS[4] released set, KEYS[5] pending
-- releases, KEYS[6..] bucket stock counters
-- ARGV[1] state, ARGV[2] start ms, ARGV[3] end ms, ARGV[4] limit, ARGV[5] buckets,
-- ARGV[6] "1" to overwrite stock counters, "0" to set only missing ones,
-- ARGV[7] the number of buyers m, ARGV[8] the activity's version the state was read
-- at (0: unversioned), ARGV[9] the number of released tickets r, ARGV[10] the released
-- set's TTL s, ARGV[11] a new epoch, ARGV[12] the pending releases' TTL s, ARGV[13]
-- the number c of counted tickets, ARGV[14] the number q of recent tickets, ARGV[15]
-- since when they are recent (ms, by the orders' created_at),
-- ARGV[16..] the stock of each bucket, then m pairs of user id and units held, then
-- the r released tickets, then pairs of idempotency field ("<user>:<key>") and the
-- ticket of the order holding it, then the c counted tickets: pending takes
-- (settle.lua) whose orders the MySQL read holds, then the q recent tickets: those of
-- the orders created since ARGV[15] that the MySQL read holds
--
-- The meta fields (state, window, limit, buckets) are kept when the meta holds this
-- version or a newer one: a warm that read MySQL before an operator's change must not
-- undo it. Stock counters that exist are kept unless asked (they are live during a
-- sale); buyer and idempotency records are added only where Redis has none (Redis
-- restarted empty), so a retry with the key of an order written before replays its
-- ticket. When this call writes every stock counter, the released tickets (orders
-- ended lately, whose units the stock read holds) join the released set: a release of
-- one landing after the warm gives nothing back twice (release.lua), and the item gets
-- the new epoch: a delta of a change committed before this load (adjust.lua) is
-- refused, as the load may hold it. Releases that found the item not loaded
-- (release.lua's pending hash) are given back now unless released already: an order
-- ended before the snapshot is in the released tickets, one ended after it is not, and
-- its units are not in the stock read. When some counter was kept, it does not hold
-- those units, and their releases and deltas still add them. The recent tickets go to
-- the item's recent set (the meta's key with :recent for :meta) and ARGV[15] to the
-- meta's 'recent_since': a written order whose ticket Redis lost is counted by this
-- load if it is in the set or was created before then (settle.lua).
local n = #KEYS - 5
local version = tonumber(ARGV[8])
local held = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version == 0 or version > held then
  redis.call('HSET', KEYS[1], 'state', ARGV[1], 'start', ARGV[2], 'end', ARGV[3], 'limit', ARGV[4], 'buckets', ARGV[5])
  if version > 0 then redis.call('HSET', KEYS[1], 'version', ARGV[8]) end
end
-- The count of changes starts from Redis's clock in microseconds when the meta is new
-- (Redis lost the item): a count read before the loss is never met again, as no item
-- changes once a microsecond.
if redis.call('HEXISTS', KEYS[1], 'changes') == 0 then
  local now = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'changes', tonumber(now[1]) * 1000000 + tonumber(now[2]))
end
redis.call('HINCRBY', KEYS[1], 'changes', 1)
local wrote_all = true
for i = 1, n do
  if ARGV[6] == '1' then
    redis.call('SET', KEYS[5 + i], ARGV[15 + i])
  elseif redis.call('SETNX', KEYS[5 + i], ARGV[15 + i]) == 0 then
    wrote_all = false
  end
end
local i = 16 + n
local q = tonumber(ARGV[14])
local keys = i + 2 * tonumber(ARGV[7])
-- Pending takes the MySQL read holds: those it was asked about (counted), and any of its
-- recent orders (a take recorded after the restore read the pending takes).
local counted = {}
for j = #ARGV - q - tonumber(ARGV[13]) + 1, #ARGV do counted[ARGV[j]] = true end
while i < keys do
  redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
local released = i + tonumber(ARGV[9])
if wrote_all then
  local now = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'epoch', ARGV[11], 'loaded', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000),
    'recent_since', ARGV[15])
  local recent = string.gsub(KEYS[1], ':meta$', ':recent')
  redis.call('DEL', recent)
  for j = #ARGV - q + 1, #ARGV, 1000 do
    redis.call('SADD', recent, unpack(ARGV, j, math.min(j + 999, #ARGV)))
  end
  if q > 0 then redis.call('EXPIRE', recent, 86400) end
end
if wrote_all and released > i then
  for j = i, released - 1, 1000 do
    redis.call('SADD', KEYS[4], unpack(ARGV, j, math.min(j + 999, released - 1)))
  end
  redis.call('EXPIRE', KEYS[4], tonumber(ARGV[10]))
end
if wrote_all then
  local pending = redis.call('HGETALL', KEYS[5])
  local t = redis.call('TIME')
  local oldest = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - 1000 * tonumber(ARGV[12])
  -- Takes first: a release of the same order then lowers the buyer's count the take
  -- raised, rather than a count it found missing.
  for j = 1, #pending, 2 do
    if string.sub(pending[j], 1, 5) == 'take:' then
      -- A written order whose settle found the item not loaded: taken unless the
      -- MySQL read holds it (counted, or among its recent orders) or the record
      -- lapsed (then the read does).
      local ticket = string.sub(pending[j], 6)
      local user, qty, ps, at, idem = string.match(pending[j + 1], '^([^|]*)|([^|]*)|([^|]*)|(%d+)|(.*)$')
      if at and tonumber(at) >= oldest and not counted[ticket] then
        take_units(function(b) return KEYS[6 + b] end, n, ps, qty)
        redis.call('HINCRBY', KEYS[2], user, tonumber(qty))
        if idem ~= '' then redis.call('HSETNX', KEYS[3], idem, ticket) end
      end
    end
  end
  for j = 1, #pending, 2 do
    -- A record older than the TTL lapses: its order ended long enough ago that the
    -- released tickets may not list it, and the MySQL read has its units.
    local user, qty, ps, at = string.match(pending[j + 1], '^([^|]*)|([^|]*)|([^|]*)|(%d+)$')
    local parts = parse_parts(ps or '0', qty or '0')
    if string.sub(pending[j], 1, 5) ~= 'take:' and at and tonumber(at) >= oldest and max_bucket(parts) < n and redis.call('SADD', KEYS[4], pending[j]) == 1 then
      for _, p in ipairs(parts) do redis.call('INCRBY', KEYS[6 + p[1]], p[2]) end
      if redis.call('HINCRBY', KEYS[2], user, -tonumber(qty)) <= 0 then redis.call('HDEL', KEYS[2], user) end
    end
  end
  if #pending > 0 then
    redis.call('EXPIRE', KEYS[4], tonumber(ARGV[10]))
    redis.call('DEL', KEYS[5])
  end
end
i = released
while i < #ARGV - tonumber(ARGV[13]) - q do
  redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
return n

-- Pre-deducts stock for a batch of requests of one item, atomically, in order: each
-- request gets its own result, and sees what the ones before it took.
--
-- KEYS[1] meta      hash: state, start, end (unix ms), limit (units per user), buckets
-- KEYS[2] buyers    hash: user id -> units held
-- KEYS[3] idem      hash: "<user>:<idempotency key>" -> ticket
-- KEYS[4] inflight  hash: ticket -> "<user>|<qty>|<parts>|<admitted ms>|<idem field>"
-- KEYS[5..4+n] each request's ticket result key
-- KEYS[5+n..] bucket stock counters, bucket 0 first
-- ARGV[1] the number of requests n; then 5 per request: user id, quantity, idem field
-- or "", new ticket, home bucket (0-based)
--
-- Returns 2n values, {code, value} per request:
--   0, parts   deducted; parts "<bucket>:<units>,..." says where; the ticket is in flight
--   1, ticket  the idempotency key was seen before: that request's ticket, nothing taken
--   2 sold out (no unit left at all)   3 per-user limit   4 not started   5 ended
--   6 not loaded (no meta: Redis lost its state)   7 not on sale   8 bad quantity
--   9 insufficient stock (units are left, fewer than asked)
--   10 the ticket has a result already: it was ended before this call ran (a caller
--      whose call timed out ended it, and Redis ran that first); nothing taken
-- A request whose ticket is in flight already (the same call sent twice) gets 0 and
-- the parts it took the first time, and takes nothing more.
-- The deduction that takes an item's last unit (or else its first sold-out answer) is
-- announced on sk:stock as "soldout <activity> <item>", so every gateway flags the
-- item at once; the marker "<meta key without :meta>:soldout" says it was, so it is
-- said once. Scripts that give units back clear the marker and announce "stock
-- <activity> <item>", and the next sell-out is announced again.
-- Order of checks: decided, resent, replay, state, window, quantity, buyer limit, stock. The buyer check
-- comes before any deduction, and the stock check covers the whole quantity: from the
-- home bucket when it holds it, else from the first bucket after it that does, else
-- from several buckets in turn.
local n = tonumber(ARGV[1])
local out = {}
local meta = redis.call('HMGET', KEYS[1], 'state', 'start', 'end', 'limit')
if not meta[1] then
  for _ = 1, n do out[#out + 1] = 6; out[#out + 1] = '' end
  return out
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nb = #KEYS - 4 - n
local marker = string.gsub(KEYS[1], ':meta$', ':soldout')

local function announce_sold_out()
  if redis.call('SET', marker, '1', 'NX', 'EX', 86400) then
    local a, i = string.match(KEYS[1], '{a(%d+):i(%d+)}')
    redis.call('PUBLISH', 'sk:stock', 'soldout ' .. a .. ' ' .. i)
  end
end

local function admit(r, user, qty, idem, ticket, home)
  if redis.call('EXISTS', KEYS[5 + r]) == 1 then return 10, '' end
  -- Tickets are new for each request: one already in flight is this very request,
  -- sent again after its answer was lost. It gets its answer again, and takes nothing.
  local rec = redis.call('HGET', KEYS[4], ticket)
  if rec then return 0, string.match(rec, '^[^|]*|[^|]*|([^|]*)') end
  if idem ~= '' then
    local prev = redis.call('HGET', KEYS[3], idem)
    if prev then return 1, prev end
  end
  if meta[1] ~= 'published' then return 7, '' end
  if now < tonumber(meta[2]) then return 4, '' end
  if now >= tonumber(meta[3]) then return 5, '' end
  if not qty or qty <= 0 or qty ~= math.floor(qty) then return 8, '' end
  local held = tonumber(redis.call('HGET', KEYS[2], user) or '0')
  if held + qty > tonumber(meta[4]) then return 3, '' end
  home = home % nb
  local parts = nil
  local left = {}
  local total = 0
  for i = 0, nb - 1 do
    local b = (home + i) % nb
    local v = tonumber(redis.call('GET', KEYS[5 + n + b]) or '0')
    if v >= qty then
      parts = {{b, qty}}
      break
    end
    left[#left + 1] = {b, v}
    total = total + v
  end
  if not parts then
    if total == 0 then
      announce_sold_out()
      return 2, ''
    end
    if total < qty then return 9, '' end
    parts = {}
    local need = qty
    for _, bv in ipairs(left) do
      if need == 0 then break end
      local take = math.min(need, bv[2])
      if take > 0 then
        parts[#parts + 1] = {bv[1], take}
        need = need - take
      end
    end
  end
  local ps = {}
  local emptied = false
  for _, p in ipairs(parts) do
    if redis.call('DECRBY', KEYS[5 + n + p[1]], p[2]) == 0 then emptied = true end
    ps[#ps + 1] = p[1] .. ':' .. p[2]
  end
  if emptied then
    -- A bucket ran dry: when it took the item's last unit, say so now, not at the
    -- next refusal.
    local rest = 0
    for b = 0, nb - 1 do
      rest = rest + tonumber(redis.call('GET', KEYS[5 + n + b]) or '0')
      if rest > 0 then break end
    end
    if rest == 0 then announce_sold_out() end
  end
  local pstr = table.concat(ps, ',')
  redis.call('HINCRBY', KEYS[2], user, qty)
  if idem ~= '' then redis.call('HSET', KEYS[3], idem, ticket) end
  redis.call('HSET', KEYS[4], ticket, user .. '|' .. qty .. '|' .. pstr .. '|' .. now .. '|' .. idem)
  redis.call('HINCRBY', KEYS[1], 'changes', 1) -- counters or tickets in flight changed: see ItemState.Changes
  return 0, pstr
end

for r = 0, n - 1 do
  local a = 2 + r * 5
  local code, val = admit(r, ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4]))
  out[#out + 1] = code
  out[#out + 1] = val
end
return out

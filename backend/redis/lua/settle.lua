-- Ends a batch of in-flight tickets of one item: records each one's result and, by
-- its mode, gives back what it held. Idempotent: a ticket no longer in flight keeps the
-- result it has, and a ticket named twice in one call is settled by the first.
--
-- KEYS[1] meta, KEYS[2] buyers, KEYS[3] idem, KEYS[4] inflight,
-- KEYS[5..4+n] the tickets' result keys, KEYS[5+n..] bucket stock counters
-- ARGV[1] result TTL seconds, ARGV[2] n; then 3 per ticket: ticket, result JSON, mode
-- mode "0": the order was written, keep everything;
--      "1": refused: give back stock, buyer units and the idempotency key;
--      "2": refused because the stock was not there after all (the store had fewer
--           units than Redis): give back the buyer units and the key, not the stock;
--      "3": replayed: another ticket of the same key wrote the order: give back the
--           stock and buyer units, keep the key.
--      "4|<user>|<qty>|<parts>|<admitted ms>|<created ms>|<idem field>": as "0",
--           and the caller (or a delivery before it) wrote the order, created at
--           created ms (its created_at; 0: not known). When the item is loaded, the
--           ticket is neither in flight nor has a result, and it was admitted before
--           the item's load (the meta's 'loaded' ms, which warm.lua writes), Redis
--           lost it with its state. The load counted the order's units as sold if
--           its MySQL read held the order: the order is in the item's recent set, or
--           was created before the meta's 'recent_since' (minutes before the read,
--           longer than any write transaction lasts). Otherwise its units are taken
--           now (from its buckets, then any; as many as there are), with the buyer's
--           units and the key. (A ticket admitted after the load was in flight until
--           settled: with no result now, its result expired.)
--           When the item is not loaded, the take waits in the pending hash
--           ("take:<ticket>" -> "<user>|<qty>|<parts>|<ms>|<idem field>") for the
--           next load, which takes it unless its view of MySQL holds the order.
--
-- Returns n values: 1 when this call settled the ticket, 0 when it was not in flight
-- (settled before, or Redis lost it: then the result is recorded if none is). When a
-- ticket names a bucket past the counters passed, it returns {-1, highest bucket}
-- before writing anything: call again with more counters.
local ttl = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local nb = #KEYS - 4 - n
local loaded = redis.call('EXISTS', KEYS[1]) == 1
local recs = {}
for r = 0, n - 1 do
  local ticket = ARGV[3 + r * 3]
  local v = redis.call('HGET', KEYS[4], ticket)
  if v then
    local user, qty, ps, _, idem = string.match(v, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
    local parts = parse_parts(ps, qty)
    if max_bucket(parts) >= nb then return {-1, max_bucket(parts)} end
    recs[r] = {user, tonumber(qty), parts, idem}
  elseif string.sub(ARGV[5 + r * 3], 1, 2) == '4|' then
    local _, qty, ps = string.match(ARGV[5 + r * 3], '^4|([^|]*)|([^|]*)|([^|]*)|')
    local m = max_bucket(parse_parts(ps, qty))
    if m >= nb then return {-1, m} end
  end
end
local lm = redis.call('HMGET', KEYS[1], 'loaded', 'recent_since')
local since, recent_since = tonumber(lm[1] or '0'), tonumber(lm[2] or '-1')
local recent = string.gsub(KEYS[1], ':meta$', ':recent')
local out = {}
local ended = {} -- tickets this call settled: a ticket named twice is settled once
for r = 0, n - 1 do
  local a = 3 + r * 3
  local ticket, result, mode = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local wrote = string.sub(mode, 1, 2) == '4|'
  if wrote then mode = '0' end -- in flight, a written order keeps everything
  local rk = KEYS[5 + r]
  local rec = recs[r]
  if ended[ticket] then rec = nil end
  ended[ticket] = true
  if not rec then
    local first = redis.call('SET', rk, result, 'EX', ttl, 'NX')
    if first and wrote and not loaded then
      -- A load is to come, perhaps on its way with a view read before this order was
      -- written: it takes the units unless its view holds the order (warm.lua).
      local user, qty, ps, _, _, idem = string.match(ARGV[a + 2], '^4|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
      local t = redis.call('TIME')
      local pk = string.gsub(KEYS[1], ':meta$', ':pending')
      redis.call('HSET', pk, 'take:' .. ticket, user .. '|' .. qty .. '|' .. ps .. '|' .. (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) .. '|' .. idem)
      if redis.call('TTL', pk) < 600 then redis.call('EXPIRE', pk, 600) end
    elseif first and loaded and wrote then
      local user, qty, ps, admitted, at, idem = string.match(ARGV[a + 2], '^4|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
      admitted, at = tonumber(admitted), tonumber(at)
      if since > 0 and admitted < since and recent_since >= 0 and at >= recent_since and
          redis.call('SISMEMBER', recent, ticket) == 0 then
        redis.call('HINCRBY', KEYS[1], 'changes', 1)
        take_units(function(b) return KEYS[5 + n + b] end, nb, ps, qty)
        redis.call('HINCRBY', KEYS[2], user, tonumber(qty))
        if idem ~= '' then redis.call('HSETNX', KEYS[3], idem, ticket) end
      end
    end
    out[#out + 1] = 0
  else
    redis.call('HDEL', KEYS[4], ticket)
    redis.call('SET', rk, result, 'EX', ttl)
    if loaded then redis.call('HINCRBY', KEYS[1], 'changes', 1) end
    if mode ~= '0' then
      if (mode == '1' or mode == '3') and loaded then
        for _, p in ipairs(rec[3]) do redis.call('INCRBY', KEYS[5 + n + p[1]], p[2]) end
        announce_stock(KEYS[1])
      end
      if redis.call('HINCRBY', KEYS[2], rec[1], -rec[2]) <= 0 then redis.call('HDEL', KEYS[2], rec[1]) end
      -- A refused request was not taken: a retry with the same key may try again.
      if mode ~= '3' and rec[4] ~= '' then redis.call('HDEL', KEYS[3], rec[4]) end
    end
    out[#out + 1] = 1
  end
end
return out

-- Reads an item's waiting room for operators (docs/WAITING_ROOM.md).
--
-- KEYS[1] meta, KEYS[2] line, KEYS[3] joined, KEYS[4] lease, KEYS[5] info,
-- KEYS[6..] bucket stock counters
-- ARGV[1] k
--
-- Returns {loaded, length, in flight, capacity, stock left, head's wait ms, now ms,
-- places, admitted, admitted from line, sold out told, lapsed, wait sum ms,
-- rate x 1000}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local loaded = redis.call('EXISTS', KEYS[1])
local left = 0
for b = 6, #KEYS do left = left + tonumber(redis.call('GET', KEYS[b]) or '0') end
local cap = 0
if left > 0 then cap = math.ceil(tonumber(ARGV[1]) * left - 1e-9) end
local inflight = redis.call('ZCOUNT', KEYS[4], '(' .. now, '+inf')
local head = redis.call('ZRANGE', KEYS[2], 0, 0)
local headWait = 0
if head[1] then
  local j = tonumber(redis.call('HGET', KEYS[3], head[1]) or now)
  headWait = now - j
end
local f = redis.call('HMGET', KEYS[5], 'places', 'admitted', 'admitted_from_line', 'sold_out_told', 'lapsed', 'wait_sum_ms', 'rate', 'rate_t')
local rate = 0
if f[7] then rate = tonumber(f[7]) * math.exp(-(now - tonumber(f[8] or now)) / 5000) end
local function n(v) return tonumber(v or '0') or 0 end
return {loaded, redis.call('ZCARD', KEYS[2]), inflight, cap, left, headWait, now,
  n(f[1]), n(f[2]), n(f[3]), n(f[4]), n(f[5]), n(f[6]), math.floor(rate * 1000)}

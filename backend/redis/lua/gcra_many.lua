-- GCRA over many buckets in one call (gcra.lua's rule for each): KEYS[i] is a
-- bucket that fills at ARGV[2i-1] tokens a second and holds ARGV[2i]. One clock
-- reading serves them all. Returns {allowed_1, wait_1, allowed_2, wait_2, ...}:
-- allowed 1 or 0, wait the microseconds until a token is due (0 when allowed).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local interval = 1000000 / tonumber(ARGV[2 * i - 1])
  local tolerance = interval * tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new = tat + interval
  local due = new - tolerance
  if due > now then
    out[2 * i - 1] = 0
    out[2 * i] = math.ceil(due - now)
  else
    -- Kept until the bucket is full again: a missing key reads as full.
    redis.call('SET', key, new, 'PX', math.max(math.ceil((new - now) / 1000), 1))
    out[2 * i - 1] = 1
    out[2 * i] = 0
  end
end
return out

-- GCRA: takes one token of a bucket that fills at ARGV[1] tokens a second (a float)
-- and holds ARGV[2]; the key keeps the theoretical arrival time (TAT) of the next
-- token, in microseconds of the server's clock (TIME: the gateways' clocks do not
-- matter). Returns {1, 0} when allowed, else {0, microseconds until a token is due}.
-- KEYS[1] bucket; ARGV[1] rate, ARGV[2] burst
local interval = 1000000 / tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new = tat + interval
local due = new - tolerance
if due > now then return {0, math.ceil(due - now)} end
-- Kept until the bucket is full again: a missing key reads as full.
redis.call('SET', KEYS[1], new, 'PX', math.max(math.ceil((new - now) / 1000), 1))
return {1, 0}

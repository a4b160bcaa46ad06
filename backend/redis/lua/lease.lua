-- Takes or renews a lease. The lease key holds "<holder> <token>" and expires with the
-- lease; the fencing counter gives each new holder a token above every earlier one.
-- A token is never below Redis's clock in milliseconds: a counter lost with its node
-- (restarted empty) starts again above every token handed out before, so the data the
-- duties fenced (lua/fence.lua) does not refuse the next holder for good.
-- KEYS[1] lease, KEYS[2] fencing counter; ARGV[1] holder (no spaces needed: the
-- token is after the last space), ARGV[2] ttl in ms.
-- Returns the token when the caller holds the lease afterwards, else 0.
local cur = redis.call('GET', KEYS[1])
if cur then
  local holder, token = string.match(cur, '^(.*) (%d+)$')
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(token)
  end
  return 0
end
local token = redis.call('INCR', KEYS[2])
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if token < ms then
  token = ms
  redis.call('SET', KEYS[2], token)
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[2])
return token

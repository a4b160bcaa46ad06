-- Prepended to the scripts a background duty calls under the fleet's lease (reset,
-- take). token is the lease's fencing token, as a string; "0" means no lease (an
-- operator's call) and is always let through. The item's meta hash keeps the highest
-- token that wrote to it: a lower one is refused, so a holder that lost the lease
-- mid-pass cannot write over its successor's work.
local function fenced_ok(meta, token)
  local t = tonumber(token) or 0
  if t <= 0 then return true end
  local seen = tonumber(redis.call('HGET', meta, 'fence') or '0')
  if t < seen then return false end
  if t > seen then redis.call('HSET', meta, 'fence', t) end
  return true
end


-- Reads tickets of one item: each one's result and its in-flight record, in one step,
-- so a settle between two reads cannot hide a ticket.
-- KEYS[1] inflight, KEYS[2..n+1] the tickets' result keys; ARGV the n tickets.
-- Returns 2n values: per ticket its result or false, then its in-flight record or false.
local out = {}
for i, ticket in ipairs(ARGV) do
  out[#out + 1] = redis.call('GET', KEYS[1 + i])
  out[#out + 1] = redis.call('HGET', KEYS[1], ticket)
end
return out

-- Reads a ticket's result and its in-flight record in one step, so a settle between
-- two reads cannot hide the ticket. KEYS[1] result key, KEYS[2] inflight; ARGV[1] ticket.
-- Returns {result or false, in-flight record or false}.
return {redis.call('GET', KEYS[1]), redis.call('HGET', KEYS[2], ARGV[1])}

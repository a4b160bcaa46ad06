-- Sets a bucket counter to a new value only if it still holds the value the caller
-- read (the reconciler's repair must not undo a deduction that happened meanwhile) and
-- the item's sale state is loaded. A fencing token above 0 (the background lease's)
-- is checked against the highest the item has seen: a lower one is refused (-1), so a
-- reconciler that lost its lease mid-pass writes nothing after its successor has.
-- When the counter is set, the orders passed (ended lately, their units counted in the
-- new value) are released: each not in the released set joins it and its buyer's
-- units go back, as its release would have done, so a release of one landing
-- afterwards gives nothing back twice (release.lua).
-- While a change that took units out before its MySQL commit holds the item (KEYS[5],
-- a sorted set of holds by deadline; HoldResets), nothing is set (0): the counter is
-- short of the row by design. Holds past their deadline are dropped. Nor is it set
-- when a hold was taken or let go since the caller read (KEYS[6], their count, against
-- ARGV[5]): that change may have moved units after the rows the caller compared.
-- KEYS[1] meta, KEYS[2] bucket counter, KEYS[3] released set, KEYS[4] buyers, KEYS[5]
-- holds, KEYS[6] holds ever taken and let go;
-- ARGV[1] expected current value, ARGV[2] new value, ARGV[3] fencing token, ARGV[4]
-- the released set's TTL s, ARGV[5] that count as the caller read it, ARGV[6] the
-- item's count of changes (meta 'changes') the caller compared at (-1: not checked):
-- a counter that came back to its value after other changes is not the one compared,
-- ARGV[7..] triples of ticket, user id and quantity.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if not fenced_ok(KEYS[1], ARGV[3]) then return -1 end
local now = redis.call('TIME')
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
if redis.call('ZCARD', KEYS[5]) > 0 then return 0 end
if tonumber(redis.call('GET', KEYS[6]) or '0') ~= tonumber(ARGV[5]) then return 0 end
if ARGV[6] ~= '-1' and tonumber(redis.call('HGET', KEYS[1], 'changes') or '0') ~= tonumber(ARGV[6]) then return 0 end
local cur = redis.call('GET', KEYS[2]) or '0'
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'changes', 1)
for j = 7, #ARGV - 2, 3 do
  if redis.call('SADD', KEYS[3], ARGV[j]) == 1 then
    if redis.call('HINCRBY', KEYS[4], ARGV[j + 1], -tonumber(ARGV[j + 2])) <= 0 then redis.call('HDEL', KEYS[4], ARGV[j + 1]) end
  end
end
if #ARGV >= 7 then redis.call('EXPIRE', KEYS[3], tonumber(ARGV[4])) end
return 1

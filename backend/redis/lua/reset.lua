-- Sets a bucket counter to a new value only if it still holds the value the caller
-- read (the reconciler's repair must not undo a deduction that happened meanwhile).
-- KEYS[1] bucket counter; ARGV[1] expected current value, ARGV[2] new value.
local cur = redis.call('GET', KEYS[1]) or '0'
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1

-- Takes the operation lock unless it is held or live waiters are queued for
-- it (they go first).
-- KEYS: 1 lock, 2 fence counter, 3 set of lock scopes, 4 queue heartbeats
-- ARGV: 1 scope, 2 owner, 3 operation, 4 since (Unix ms), 5 TTL (ms)
-- Returns the fencing token, or nil when the lock was not taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
if redis.call('ZCOUNT', KEYS[4], '(' .. now_ms(), '+inf') > 0 then
  return false
end
return take_lock(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])

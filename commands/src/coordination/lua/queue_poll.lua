-- Renews a waiter's heartbeat, and takes the lock for it when it is first in
-- the queue and the lock is free.
-- KEYS: 1 queue, 2 heartbeats, 3 entries, 4 lock, 5 fence counter,
--       6 set of lock scopes
-- ARGV: 1 waiter id, 2 heartbeat TTL (ms), 3 scope, 4 owner, 5 operation,
--       6 since (Unix ms), 7 lock TTL (ms)
-- Returns {'acquired', token}, {'evicted'} when the waiter is not queued, or
-- {'waiting', position from 1, queue length, entry JSON of the waiter ahead
-- or '', lock value or ''}.
local now = now_ms()
prune_dead_waiters(KEYS[1], KEYS[2], KEYS[3], now)
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank then
  return {'evicted'}
end

local holder = redis.call('GET', KEYS[4])
if rank == 0 and not holder then
  local token = take_lock(KEYS[4], KEYS[5], KEYS[6], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return {'acquired', token}
end

redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
local ahead = ''
if rank > 0 then
  local ahead_id = redis.call('ZRANGE', KEYS[1], rank - 1, rank - 1)[1]
  ahead = redis.call('HGET', KEYS[3], ahead_id) or ''
end
return {'waiting', rank + 1, redis.call('ZCARD', KEYS[1]), ahead, holder or ''}

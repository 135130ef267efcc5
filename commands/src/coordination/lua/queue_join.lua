-- Appends a waiter to the lock queue.
-- KEYS: 1 queue (waiter id -> join sequence), 2 heartbeats (waiter id ->
--       deadline in Unix ms), 3 entries (waiter id -> JSON), 4 sequence counter
-- ARGV: 1 waiter id, 2 entry JSON, 3 heartbeat TTL (ms), 4 maximum queue length
-- Returns 1 when the waiter joined, 0 when the queue is full.
local now = now_ms()
prune_dead_waiters(KEYS[1], KEYS[2], KEYS[3], now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
local sequence = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[1], sequence, ARGV[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
return 1

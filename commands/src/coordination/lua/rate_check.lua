-- Sliding-window log: counts an event unless `limit` events were counted in
-- the last `window` ms.
-- KEYS: 1 event log (sorted set, score = event time in Unix ms)
-- ARGV: 1 limit, 2 window (ms), 3 random text that makes the member unique
-- Returns {1, 0} when counted, or {0, ms until the oldest event leaves the window}.
local now = now_ms()
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, now .. '-' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0}
end
local retry_after = window
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] then
  retry_after = tonumber(oldest[2]) + window - now
end
return {0, math.max(retry_after, 1)}

-- Helpers prepended to the lock, queue and rate scripts. Redis runs a script
-- atomically, so no other client's command runs between its reads and writes.

-- Server time in Unix milliseconds: the one clock that all replicas share.
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- Removes queued waiters whose heartbeat deadline (score in `heartbeats`,
-- Unix ms) is at or before `now`: their process stopped polling.
local function prune_dead_waiters(queue, heartbeats, entries, now)
  local dead = redis.call('ZRANGEBYSCORE', heartbeats, '-inf', now)
  for _, waiter in ipairs(dead) do
    redis.call('ZREM', queue, waiter)
    redis.call('HDEL', entries, waiter)
  end
  if #dead > 0 then
    redis.call('ZREMRANGEBYSCORE', heartbeats, '-inf', now)
  end
end

-- Takes a free lock with the next fencing token and returns the token. The
-- lock value is JSON: owner, operation, token and since (Unix ms).
-- cjson prints numbers with 14 significant digits (Redis 7.0), which covers
-- Unix ms timestamps and tokens below 10^14.
local function take_lock(lock, fence, scopes, scope, owner, operation, since, ttl_ms)
  local token = redis.call('INCR', fence)
  local value = cjson.encode({
    owner = owner,
    operation = operation,
    token = token,
    since = tonumber(since),
  })
  redis.call('SET', lock, value, 'PX', ttl_ms)
  redis.call('SADD', scopes, scope)
  return token
end


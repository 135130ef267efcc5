-- Marks pending requests whose expires_at is at or before `now` as expired
-- and returns their hash fields, oldest first. Each request is returned once.
-- KEYS: 1 index (sorted set, id -> created_at)
-- ARGV: 1 request key prefix, 2 now (Unix ms), 3 retention of a decided
--       request (ms)
local now = tonumber(ARGV[2])
local expired = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. id
  local stored = redis.call('HMGET', key, 'state', 'expires_at')
  if not stored[1] then
    redis.call('ZREM', KEYS[1], id)
  elseif stored[1] == 'pending' and tonumber(stored[2]) <= now then
    redis.call('HSET', key, 'state', 'expired')
    redis.call('PEXPIRE', key, ARGV[3])
    table.insert(expired, redis.call('HGETALL', key))
  end
end
return expired

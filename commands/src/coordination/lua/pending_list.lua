-- Returns the hash fields of indexed requests that are still pending, oldest
-- first, and drops index entries whose hash has expired.
-- KEYS: 1 index (sorted set, id -> created_at)
-- ARGV: 1 request key prefix (the key of a request is the prefix and the id)
local pending = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. id
  local state = redis.call('HGET', key, 'state')
  if not state then
    redis.call('ZREM', KEYS[1], id)
  elseif state == 'pending' then
    table.insert(pending, redis.call('HGETALL', key))
  end
end
return pending

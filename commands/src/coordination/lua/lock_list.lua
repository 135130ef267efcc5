-- Lists held locks and removes scopes whose lock expired from the set.
-- KEYS: 1 set of lock scopes
-- ARGV: 1 lock key prefix (the key of a lock is the prefix and the scope)
-- Returns {scope, lock value, remaining TTL in ms} per held lock.
local held = {}
for _, scope in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. scope
  local value = redis.call('GET', key)
  if value then
    table.insert(held, {scope, value, redis.call('PTTL', key)})
  else
    redis.call('SREM', KEYS[1], scope)
  end
end
return held

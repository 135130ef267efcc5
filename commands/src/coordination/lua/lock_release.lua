-- Deletes the lock if the caller still holds it.
-- KEYS: 1 lock, 2 set of lock scopes
-- ARGV: 1 owner, 2 fencing token, 3 scope
-- Returns 1 when deleted, 0 when the lock expired or has another holder.
local value = redis.call('GET', KEYS[1])
if not value then
  return 0
end
local lock = cjson.decode(value)
if lock.owner ~= ARGV[1] or lock.token ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[3])
return 1

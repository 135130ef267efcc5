-- Extends the lock if the caller still holds it.
-- KEYS: 1 lock
-- ARGV: 1 owner, 2 fencing token, 3 TTL (ms)
-- Returns 1 when renewed, 0 when the lock expired or has another holder.
local value = redis.call('GET', KEYS[1])
if not value then
  return 0
end
local lock = cjson.decode(value)
if lock.owner ~= ARGV[1] or lock.token ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1

-- Stores a new pending request as a hash and indexes it by creation time.
-- KEYS: 1 request hash, 2 index (sorted set, id -> created_at)
-- ARGV: 1 id, 2 created_at (Unix ms), 3 TTL (ms), then field/value pairs
-- Returns 1 when stored, 0 when the id is in use.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local fields = {}
for i = 4, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1

-- Lists live waiters, next in line first, after removing dead ones.
-- KEYS: 1 queue, 2 heartbeats, 3 entries
-- Returns the entry JSON of each waiter.
prune_dead_waiters(KEYS[1], KEYS[2], KEYS[3], now_ms())
local entries = {}
for _, waiter in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local entry = redis.call('HGET', KEYS[3], waiter)
  if entry then
    table.insert(entries, entry)
  end
end
return entries

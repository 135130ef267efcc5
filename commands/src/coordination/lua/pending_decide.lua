-- Applies one approve, reject or cancel click to a pending request. Running
-- as one script makes the check and the write a single step, so exactly one
-- click can complete the approvals.
-- KEYS: 1 request hash
-- ARGV: 1 action ('approve', 'reject' or 'cancel'), 2 user, 3 reason,
--       4 now (Unix ms), 5 retention of a decided request (ms)
-- Returns {outcome, approvals, approvals needed, request hash fields}.
local function reply(outcome, approvals, needed)
  return {outcome, approvals or 0, needed or 0, redis.call('HGETALL', KEYS[1])}
end

local function decide(fields)
  redis.call('HSET', KEYS[1], unpack(fields))
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'unknown', 0, 0, {}}
end
local stored = redis.call('HMGET', KEYS[1], 'state', 'requester', 'needed', 'allow_self', 'expires_at', 'approvals')
local state, requester, needed, allow_self = stored[1], stored[2], tonumber(stored[3]), stored[4]
local expires_at, approvals = tonumber(stored[5]), cjson.decode(stored[6])
local action, user, now = ARGV[1], ARGV[2], tonumber(ARGV[4])

if state ~= 'pending' then
  return reply('already_decided')
end
if now >= expires_at then
  decide({'state', 'expired'})
  return reply('expired')
end

if action == 'reject' then
  decide({'state', 'rejected', 'decided_by', user, 'reason', ARGV[3]})
  return reply('rejected')
end
if action == 'cancel' then
  if user ~= requester then
    return reply('not_requester')
  end
  decide({'state', 'cancelled', 'decided_by', user})
  return reply('cancelled')
end

if user == requester and allow_self ~= '1' then
  return reply('self_approval')
end
for _, approval in ipairs(approvals) do
  if approval.by == user then
    return reply('duplicate_approver')
  end
end
table.insert(approvals, {by = user, at = now})
redis.call('HSET', KEYS[1], 'approvals', cjson.encode(approvals))
if #approvals < needed then
  return reply('recorded', #approvals, needed)
end
decide({'state', 'approved', 'decided_by', user})
return reply('approved', #approvals, needed)

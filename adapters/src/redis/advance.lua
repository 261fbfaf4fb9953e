-- Moves an order's status forward, atomically across every process using this Redis.
-- KEYS[1] = order:status:{cid}, KEYS[2] = order:map:{cid}
-- ARGV[1] = TTL in ms, ARGV[2] = next status, ARGV[3] = next orderId or ''
-- ARGV[4..] = the current statuses that next may replace. The Rust side derives them from
-- OrderStatus::advance, so the forward-only rule lives in one place and is not copied here.
local current = redis.call('GET', KEYS[1])
local stored = ARGV[2]
if ARGV[3] ~= '' then
  stored = stored .. '|' .. ARGV[3]
end
if current then
  local bar = string.find(current, '|', 1, true)
  local current_status = current
  if bar then
    current_status = string.sub(current, 1, bar - 1)
  end
  local allowed = false
  for i = 4, #ARGV do
    if ARGV[i] == current_status then
      allowed = true
    end
  end
  if not allowed then
    stored = current
  elseif ARGV[3] == '' and bar then
    -- The next status carries no orderId: keep the one already known ('|42').
    stored = ARGV[2] .. string.sub(current, bar)
  end
end
-- Refreshed on every advance, even one that keeps the current status: work is in flight.
redis.call('SET', KEYS[1], stored, 'PX', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return stored

-- dead_letter_activity.lua (scriptDeadLetterActivity) posts an activity's
-- failure result, records the dead letter and retires the item, if the item is
-- still pending.
--
-- KEYS: 1 act, 2 ctl, 3 dead. ARGV: 1 item id, 2 result message, 3 raw item,
-- 4 reason, 5 instance, 6 execution, 7 task id, 8 activity, 9 input,
-- 10 deliveries.
-- Returns the dead letter's id, or "" when the item was no longer pending.

local p = redis.call('XPENDING', KEYS[1], '$GROUP', ARGV[1], ARGV[1], 1)
if #p == 0 then return '' end
redis.call('XADD', KEYS[2], '*', 'm', ARGV[2])
local id = redis.call('XADD', KEYS[3], '*', 'kind', 'activity', 'src', KEYS[1], 'id', ARGV[1], 'field', 'a', 'raw', ARGV[3],
  'reason', ARGV[4], 'i', ARGV[5], 'x', ARGV[6], 't', ARGV[7], 'n', ARGV[8], 'in', ARGV[9], 'dl', ARGV[10])
redis.call('XACK', KEYS[1], '$GROUP', ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
return id

-- complete_activity.lua (scriptCompleteActivity) posts an activity result and
-- retires the item.
--
-- KEYS: 1 act, 2 ctl. ARGV: 1 item id, 2 result message.
-- Returns 1 when applied, 0 when the item was no longer pending.

local p = redis.call('XPENDING', KEYS[1], '$GROUP', ARGV[1], ARGV[1], 1)
if #p == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'm', ARGV[2])
redis.call('XACK', KEYS[1], '$GROUP', ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
return 1

-- touch_activity.lua (scriptTouchActivity) resets the idle time of an
-- activity item while the given consumer holds it, so that it is not
-- claimed after the visibility timeout while it runs. The check and the
-- claim are one step: an item another worker has reclaimed meanwhile is left
-- with it.
--
-- KEYS: 1 activity stream. ARGV: 1 group, 2 consumer, 3 item id.
-- Returns 1 when touched, 0 when the consumer does not hold the item.

local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #p == 0 then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1

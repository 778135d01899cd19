-- rewind.lua (scriptRewind) enqueues a rewind message for a Failed instance.
--
-- KEYS: 1 instance, 2 ctl, 3 dedup marker, 4 dedup set (optional),
-- 5 idempotency record (optional)
-- ARGV: 1 message, 2 message id ("" = no de-dup), 3 de-dup ttl ms,
-- 4 idempotency fingerprint ("" or absent = none), 5 operation name,
-- 6 idempotency ttl ms
-- Returns "ok", "dup" (already delivered), "notfound", "st:<status>" (the
-- instance is not Failed; nothing written), or an idem_check reply.

local r = idem_check(KEYS[5], ARGV[4])
if r then return r end
if ARGV[2] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then return 'dup' end
local s = redis.call('HGET', KEYS[1], 's')
if not s then return 'notfound' end
if s ~= 'Failed' then return 'st:' .. s end
redis.call('XADD', KEYS[2], '*', 'm', ARGV[1])
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
  if KEYS[4] then dedup_track(KEYS[4], ARGV[2], ARGV[3]) end
end
idem_record(KEYS[5], ARGV[4], ARGV[5], '', ARGV[6])
return 'ok'

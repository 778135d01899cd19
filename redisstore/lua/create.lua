-- create.lua (scriptCreate) creates an instance and enqueues its start
-- message.
--
-- KEYS: 1 instance, 2 history, 3 ctl, 4 idx:created, 5 idx:st: prefix,
-- 6 idx:d: prefix (digest index; optional), 7 dedup set, 8 dedup prefix,
-- 9 idempotency record (7-9 optional, together)
-- ARGV: 1 id, 2 execution id, 3 status, 4 created score (ms), 5 start message,
-- 6.. instance hash field/value pairs; with KEYS[7], the last four ARGV are
-- not fields but: de-dup ttl ms, idempotency fingerprint ("" = none),
-- operation name, idempotency ttl ms.
-- A replaced terminal instance's dedup markers are retired (dedup_retire)
-- when KEYS[7] is given.
-- Returns "ok", "dup" (an instance with this execution id exists: a retry),
-- "exists" (a non-terminal instance exists; nothing written), or an
-- idem_check reply ("replay\n<execution id>", "reused\n<operation>").

local last, ex = #ARGV, nil
if KEYS[7] then ex = last - 3; last = last - 4 end
local fp = ex and ARGV[ex+1]
local r = idem_check(KEYS[9], fp)
if r then return r end
local old = redis.call('HGET', KEYS[1], 's')
if old then
  if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'x') == ARGV[2] then return 'dup' end
  if not terminal[old] then return 'exists' end
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[5] .. old, ARGV[1])
  if ex then dedup_retire(KEYS[7], KEYS[8], ARGV[ex]) end
end
chunked('HSET', KEYS[1], nil, ARGV, 6, last - 5)
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[5] .. ARGV[3], ARGV[4], ARGV[1])
digidx(KEYS[6], ARGV[1], false, false, ARGV[3], fieldOr(KEYS[1], 6, last, 'd'))
redis.call('XADD', KEYS[3], '*', 'm', ARGV[5])
if ex then idem_record(KEYS[9], fp, ARGV[ex+2], ARGV[2], ARGV[ex+3]) end
return 'ok'

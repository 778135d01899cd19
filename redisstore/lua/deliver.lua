-- deliver.lua (scriptDeliver) delivers one outbox message on the target
-- partition.
--
-- KEYS: 1 dedup marker, 2 ctl, 3 instance, 4 history, 5 idx:created,
-- 6 idx:st: prefix, 7 idx:d: prefix (digest index; optional), 8 dedup set
-- (optional: else built from KEYS[3], see keys.go), 9 dedup prefix
-- (optional, likewise)
-- ARGV: 1 message, 2 message id, 3 de-dup ttl ms, 4 create ("1"/"0"),
-- 5 id, 6 status, 7 created score, 8.. instance field/value pairs (create only)
-- The marker is added to the target's dedup set; a create that replaces a
-- terminal instance retires that instance's markers first.
-- Returns "ok", "dup" (delivered before) or "skipped" (create found a
-- non-terminal instance; the message is dropped and marked delivered).

if ARGV[2] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then return 'dup' end
local pk = string.sub(KEYS[3], 1, #KEYS[3] - #ARGV[5] - 2)
local dk, dp = KEYS[8] or (pk .. 'dm:' .. ARGV[5]), KEYS[9] or (pk .. 'dedup:')
local res = 'ok'
if ARGV[4] == '1' then
  local old = redis.call('HGET', KEYS[3], 's')
  if old and not terminal[old] then
    res = 'skipped'
  else
    if old then
      redis.call('DEL', KEYS[3], KEYS[4])
      redis.call('ZREM', KEYS[6] .. old, ARGV[5])
      dedup_retire(dk, dp, ARGV[3])
    end
    chunked('HSET', KEYS[3], nil, ARGV, 8, #ARGV - 7)
    redis.call('ZADD', KEYS[5], ARGV[7], ARGV[5])
    redis.call('ZADD', KEYS[6] .. ARGV[6], ARGV[7], ARGV[5])
    digidx(KEYS[7], ARGV[5], false, false, ARGV[6], fieldOr(KEYS[3], 8, #ARGV, 'd'))
  end
end
if res == 'ok' then redis.call('XADD', KEYS[2], '*', 'm', ARGV[1]) end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[3])
  dedup_track(dk, ARGV[2], ARGV[3])
end
return res

-- commit.lua (scriptCommit) applies one orchestration step.
--
-- KEYS: 1 lease, 2 instance, 3 history, 4 ctl, 5 act, 6 timers, 7 outbox,
-- 8 idx:created, 9 idx:st: prefix, 10 timer index prefix, 11 idx:d: prefix
-- (digest index), 12 done channel (notify.go)
-- ARGV: 1 epoch, 2 commit id, 3 id, 4 status, 5 created score (ms), 6 reset ("1"),
-- 7 expected fresh execution id ("" for none: see host.Commit.ExpectFresh),
-- 8 the command that announces a finished instance on the done channel
-- (PUBLISH, or SPUBLISH on a cluster; "" for none),
-- then sections, each "n, item1..itemn": instance field/value pairs, history
-- events, acked control ids, activity items, timers (score, member, owner
-- instance id triples; the member is also added to the owner's timer index),
-- local control messages, outbox envelopes.
-- Returns "ok", "dup" (commit id already applied), "stale" (epoch is not the
-- lease's current one) or "changed" (the instance is not the fresh one
-- ARGV[7] names), each followed by a space and the commit id, so that the
-- caller can tell its reply from another command's. Only "ok" writes.

local epoch = redis.call('HGET', KEYS[1], 'epoch') or '0'
if epoch ~= ARGV[1] then return 'stale ' .. ARGV[2] end
local cur = redis.call('HMGET', KEYS[2], 'lc', 's', 'd', 'x', 'hl')
local old, oldd = cur[2], cur[3]
if ARGV[2] ~= '' and cur[1] == ARGV[2] then return 'dup ' .. ARGV[2] end
local fresh = ARGV[7] ~= ''
if fresh then
  if cur[4] ~= ARGV[7] or old ~= 'Pending' or (cur[5] and cur[5] ~= '0' and cur[5] ~= '') or redis.call('EXISTS', KEYS[3]) == 1 then
    return 'changed ' .. ARGV[2]
  end
end
local pos = 9
local function section()
  local n = tonumber(ARGV[pos])
  local from = pos + 1
  pos = pos + 1 + n
  return from, n
end
local ff, fn = section()
local ef, en = section()
local af, an = section()
local vf, vn = section()
local tf, tn = section()
local lf, ln = section()
local of, on = section()
-- newd: the digest after the write (the last 'd' the fields set, else the
-- old one). one: hl and lc go into the fields' HSET, unless the fields set
-- them too (they must win, so they are set after) or the call would pass
-- more than 1000 items.
local newd, one = oldd, fn <= 996
for i = ff, ff + fn - 2, 2 do
  local f = ARGV[i]
  if f == 'd' then newd = ARGV[i+1] elseif f == 'hl' or f == 'lc' then one = false end
end
if ARGV[6] == '1' then redis.call('DEL', KEYS[3]) end
local hl
if en > 0 then
  hl = chunked('RPUSH', KEYS[3], nil, ARGV, ef, en)
elseif fresh or ARGV[6] == '1' then
  hl = 0
else
  hl = redis.call('LLEN', KEYS[3])
end
if one then
  redis.call('HSET', KEYS[2], 'hl', hl, 'lc', ARGV[2], unpack(ARGV, ff, ff + fn - 1))
else
  chunked('HSET', KEYS[2], nil, ARGV, ff, fn)
  redis.call('HSET', KEYS[2], 'hl', hl, 'lc', ARGV[2])
end
if not old then redis.call('ZADD', KEYS[8], ARGV[5], ARGV[3]) end
reindex(KEYS[9], ARGV[3], old, ARGV[4], ARGV[5])
digidx(KEYS[11], ARGV[3], old, oldd, ARGV[4], newd)
if an > 0 then
  chunked('XACK', KEYS[4], '$GROUP', ARGV, af, an)
  chunked('XDEL', KEYS[4], nil, ARGV, af, an)
end
for i = vf, vf + vn - 1 do redis.call('XADD', KEYS[5], '*', 'a', ARGV[i]) end
for i = tf, tf + tn - 1, 3 do
  redis.call('ZADD', KEYS[6], ARGV[i], ARGV[i+1])
  redis.call('SADD', KEYS[10] .. ARGV[i+2], ARGV[i+1])
end
for i = lf, lf + ln - 1 do redis.call('XADD', KEYS[4], '*', 'm', ARGV[i]) end
for i = of, of + on - 1 do redis.call('XADD', KEYS[7], '*', 'o', ARGV[i]) end
if ARGV[8] ~= '' and terminal[ARGV[4]] and not (old and terminal[old]) then
  -- After the writes: pcall, so that a server that refuses pub/sub (ACL
  -- channel rights, no SPUBLISH before Redis 7) cannot fail a commit that
  -- has landed. The announcement is best effort anyway.
  redis.pcall(ARGV[8], KEYS[12], ARGV[3])
end
return 'ok ' .. ARGV[2]

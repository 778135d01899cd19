-- purge.lua (scriptPurge) purges instances of one partition. Each is checked
-- before it is touched: it exists; it still matches (its status is among the
-- allowed ones, its created index score and, when given, its created time are
-- the ones it was selected with — an instance replaced since is left alone);
-- it is terminal unless forced. Then the script deletes its hash, history and
-- timer index, the timer set members listed in that index, its created, status
-- and digest index entries, and retires its dedup markers (dedup_retire).
--
-- KEYS: 1 idx:created, 2 idx:st: prefix, 3 timers, 4 idx:d: prefix (digest
-- index), 5 dedup prefix, 6 idempotency record (only when ARGV[3] is 3), then
-- per instance: hash, history, timer index, dedup set.
-- ARGV: 1 force ("1"/"0"), 2 de-dup ttl ms, 3 ni (0, or 3 with one instance:
-- the idempotency fingerprint, operation name and ttl ms follow), then n
-- allowed statuses (0 = any), the statuses, then per instance: id, created
-- score ("" = not checked), created ns ("" = not checked).
-- Returns one reply per instance: "deleted", "notfound", "gone" (no longer
-- matches) or the status of an unfinished instance that was refused; or one
-- idem_check reply.

local force = ARGV[1] == '1'
local ni = tonumber(ARGV[3])
local kb = 5
local fp, op, ittl, ik0
if ni > 0 then
  fp, op, ittl, ik0 = ARGV[4], ARGV[5], ARGV[6], KEYS[6]
  kb = 6
  local r = idem_check(ik0, fp)
  if r then return {r} end
end
local na = tonumber(ARGV[4 + ni])
local allowed = nil
if na > 0 then
  allowed = {}
  for i = 5 + ni, 4 + ni + na do allowed[ARGV[i]] = true end
end
local res = {}
for a = 5 + ni + na, #ARGV, 3 do
  local id, score, created = ARGV[a], ARGV[a+1], ARGV[a+2]
  local ik, hk, tk, dk = KEYS[kb+1], KEYS[kb+2], KEYS[kb+3], KEYS[kb+4]
  kb = kb + 4
  local s = redis.call('HGET', ik, 's')
  local r
  if not s then
    r = 'notfound'
  elseif allowed and not allowed[s] then
    r = 'gone'
  elseif score ~= '' and tonumber(redis.call('ZSCORE', KEYS[1], id) or '') ~= tonumber(score) then
    r = 'gone'
  elseif created ~= '' and redis.call('HGET', ik, 'c') ~= created then
    r = 'gone'
  elseif not force and not terminal[s] then
    r = s
  else
    digidx(KEYS[4], id, s, redis.call('HGET', ik, 'd'), false, false)
    local tm = redis.call('SMEMBERS', tk)
    if #tm > 0 then chunked('ZREM', KEYS[3], nil, tm, 1, #tm) end
    redis.call('UNLINK', ik, hk, tk)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2] .. s, id)
    dedup_retire(dk, KEYS[5], ARGV[2])
    r = 'deleted'
    if ni > 0 then idem_record(ik0, fp, op, '', ittl) end
  end
  res[#res+1] = r
end
return res

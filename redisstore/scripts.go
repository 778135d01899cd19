package redisstore

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Lua scripts. Rules every script follows:
//
//   - All checks (lease epoch, existence, commit id, de-dup) come before the
//     first write: a Lua runtime error does not roll back earlier writes.
//   - All keys are passed in KEYS and share one hash tag (see keys.go); the
//     status index keys are KEYS[n] .. status and, in the commit and
//     fire-timers scripts, the per-instance timer index keys are
//     KEYS[n] .. instance id.
//   - Times that scripts compare (lease expiry, worker liveness) come from the
//     server's TIME, one clock for all workers. Timer due times come from the
//     caller (FireDueTimers' now).
//   - Values are passed as flat ARGV strings (sections of "count, items...")
//     rather than one JSON argument: history events are already JSON, and
//     flat ARGV avoids escaping them a second time and cjson's 14-digit
//     number formatting.
//   - unpack() is chunked (Redis' Lua has a C stack limit of ~8000 values).
//   - The scripts must run on real Redis 7 and on miniredis (gopher-lua).

// luaPrelude is prepended to every script.
const luaPrelude = `
local terminal = {Completed=true, Failed=true, Canceled=true, Terminated=true}
-- chunked runs cmd key [pre] list[from..from+n-1] in calls of at most 1000
-- items (pre: one argument or nil) and returns the last call's reply.
local function chunked(cmd, key, pre, list, from, n)
  local r
  local i = 0
  while i < n do
    local j = math.min(i + 1000, n)
    if pre then
      r = redis.call(cmd, key, pre, unpack(list, from + i, from + j - 1))
    else
      r = redis.call(cmd, key, unpack(list, from + i, from + j - 1))
    end
    i = j
  end
  return r
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- fieldOr returns the value of field f of hash key after an HSET of the
-- field/value pairs ARGV[from..to]: the last value the pairs give f, else
-- what the hash holds.
local function fieldOr(key, from, to, f)
  local v
  for i = from, to - 1, 2 do
    if ARGV[i] == f then v = ARGV[i+1] end
  end
  if v == nil then v = redis.call('HGET', key, f) end
  return v
end
-- idem_check reads the idempotency record k (keys.go: idem:) for the
-- fingerprint fp ('' or nil: the call has no key, nothing to check). It
-- returns nil when there is no record (apply the operation), else the reply:
-- "replay\n<result>" for the same fingerprint, "reused\n<operation>" for
-- another one. Nothing is written either way.
local function idem_check(k, fp)
  if not fp or fp == '' then return nil end
  local v = redis.call('GET', k)
  if not v then return nil end
  local a = string.find(v, '\n', 1, true)
  if not a then return 'reused\n?' end
  local b = string.find(v, '\n', a + 1, true) or (#v + 1)
  if string.sub(v, 1, a - 1) ~= fp then return 'reused\n' .. string.sub(v, a + 1, b - 1) end
  return 'replay\n' .. string.sub(v, b + 1)
end
-- idem_record records an applied operation (after its writes) for ttl ms.
local function idem_record(k, fp, op, result, ttl)
  if fp and fp ~= '' then redis.call('SET', k, fp .. '\n' .. op .. '\n' .. result, 'PX', ttl) end
end
-- dedup_track adds message id mid, whose dedup marker was just set for ttl
-- ms, to its target instance's dedup set dk (keys.go: dm:), drops the
-- members whose markers have expired, and renews dk's own expiry.
local function dedup_track(dk, mid, ttl)
  local now = now_ms()
  redis.call('ZADD', dk, now, mid)
  redis.call('ZREMRANGEBYSCORE', dk, '-inf', now - tonumber(ttl))
  redis.call('PEXPIRE', dk, ttl)
end
-- dedup_retire removes an instance's dedup markers (named dprefix .. member
-- of its dedup set dk) and dk itself: markers set more than the grace
-- (DEDUP_GRACE ms, at most ttl) ago at once; younger ones are left to expire
-- within what is left of the grace (see keys.go, "Dedup markers and purge").
local function dedup_retire(dk, dprefix, ttl)
  local now = now_ms()
  local g = math.min($GRACE, tonumber(ttl))
  local old = redis.call('ZRANGEBYSCORE', dk, '-inf', now - g)
  local i = 1
  while i <= #old do
    local j = math.min(i + 999, #old)
    local ks = {}
    for x = i, j do ks[#ks+1] = dprefix .. old[x] end
    redis.call('UNLINK', unpack(ks))
    i = j + 1
  end
  local young = redis.call('ZRANGEBYSCORE', dk, '(' .. (now - g), '+inf', 'WITHSCORES')
  for y = 1, #young, 2 do
    local left = math.max(1, tonumber(young[y+1]) + g - now)
    local mk = dprefix .. young[y]
    if redis.call('PTTL', mk) > left then redis.call('PEXPIRE', mk, left) end
  end
  redis.call('UNLINK', dk)
end
local function reindex(prefix, id, old, new, score)
  if old and old ~= new then redis.call('ZREM', prefix .. old, id) end
  redis.call('ZADD', prefix .. new, score, id)
end
-- digidx keeps the digest index (see keys.go: idx:d:<digest>): the set of
-- non-terminal instances on each digest. olds/oldd are the status and digest
-- before the write (false when there was no instance), news/newd after it
-- (false after a delete). A nil prefix (a caller that passes no index key)
-- skips it.
local function digidx(prefix, id, olds, oldd, news, newd)
  if not prefix then return end
  local was = olds and not terminal[olds] and oldd and oldd ~= ''
  local is = news and not terminal[news] and newd and newd ~= ''
  if was and not (is and oldd == newd) then redis.call('SREM', prefix .. oldd, id) end
  if is then redis.call('SADD', prefix .. newd, id) end
end
`

func newScript(body string) *redis.Script {
	src := strings.NewReplacer("$GROUP", group, "$GRACE", strconv.FormatInt(dedupGrace.Milliseconds(), 10)).Replace(luaPrelude + body)
	return redis.NewScript(src)
}

// scriptFindFunction returns {app, app record} for the function named
// ARGV[1], {app} when the app record is missing, nil when no app registers
// the function.
//
// KEYS: 1 funcs, 2 apps.
var scriptFindFunction = redis.NewScript(`
local app = redis.call('HGET', KEYS[1], ARGV[1])
if not app then return false end
local rec = redis.call('HGET', KEYS[2], app)
if not rec then return {app} end
return {app, rec}
`)

// scriptCreate creates an instance and enqueues its start message.
//
// KEYS: 1 instance, 2 history, 3 ctl, 4 idx:created, 5 idx:st: prefix,
// 6 idx:d: prefix (digest index; optional), 7 dedup set, 8 dedup prefix,
// 9 idempotency record (7-9 optional, together)
// ARGV: 1 id, 2 execution id, 3 status, 4 created score (ms), 5 start message,
// 6.. instance hash field/value pairs; with KEYS[7], the last four ARGV are
// not fields but: de-dup ttl ms, idempotency fingerprint ("" = none),
// operation name, idempotency ttl ms.
// A replaced terminal instance's dedup markers are retired (dedup_retire)
// when KEYS[7] is given.
// Returns "ok", "dup" (an instance with this execution id exists: a retry),
// "exists" (a non-terminal instance exists; nothing written), or an
// idem_check reply ("replay\n<execution id>", "reused\n<operation>").
var scriptCreate = newScript(`
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
`)

// scriptSend enqueues a message for an existing, non-terminal instance.
//
// KEYS: 1 instance, 2 ctl, 3 dedup marker, 4 dedup set (optional),
// 5 idempotency record (optional)
// ARGV: 1 message, 2 message id ("" = no de-dup), 3 de-dup ttl ms,
// 4 idempotency fingerprint ("" or absent = none), 5 operation name,
// 6 idempotency ttl ms
// Returns "ok", "dup" (already delivered), "notfound", "finished", or an
// idem_check reply.
var scriptSend = newScript(`
local r = idem_check(KEYS[5], ARGV[4])
if r then return r end
if ARGV[2] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then return 'dup' end
local s = redis.call('HGET', KEYS[1], 's')
if not s then return 'notfound' end
if terminal[s] then return 'finished' end
redis.call('XADD', KEYS[2], '*', 'm', ARGV[1])
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
  if KEYS[4] then dedup_track(KEYS[4], ARGV[2], ARGV[3]) end
end
idem_record(KEYS[5], ARGV[4], ARGV[5], '', ARGV[6])
return 'ok'
`)

// scriptDeliver delivers one outbox message on the target partition.
//
// KEYS: 1 dedup marker, 2 ctl, 3 instance, 4 history, 5 idx:created,
// 6 idx:st: prefix, 7 idx:d: prefix (digest index; optional), 8 dedup set
// (optional: else built from KEYS[3], see keys.go), 9 dedup prefix
// (optional, likewise)
// ARGV: 1 message, 2 message id, 3 de-dup ttl ms, 4 create ("1"/"0"),
// 5 id, 6 status, 7 created score, 8.. instance field/value pairs (create only)
// The marker is added to the target's dedup set; a create that replaces a
// terminal instance retires that instance's markers first.
// Returns "ok", "dup" (delivered before) or "skipped" (create found a
// non-terminal instance; the message is dropped and marked delivered).
var scriptDeliver = newScript(`
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
`)

// scriptCommit applies one orchestration step.
//
// KEYS: 1 lease, 2 instance, 3 history, 4 ctl, 5 act, 6 timers, 7 outbox,
// 8 idx:created, 9 idx:st: prefix, 10 timer index prefix, 11 idx:d: prefix
// (digest index), 12 done channel (notify.go)
// ARGV: 1 epoch, 2 commit id, 3 id, 4 status, 5 created score (ms), 6 reset ("1"),
// 7 expected fresh execution id ("" for none: see host.Commit.ExpectFresh),
// 8 the command that announces a finished instance on the done channel
// (PUBLISH, or SPUBLISH on a cluster; "" for none),
// then sections, each "n, item1..itemn": instance field/value pairs, history
// events, acked control ids, activity items, timers (score, member, owner
// instance id triples; the member is also added to the owner's timer index),
// local control messages, outbox envelopes.
// Returns "ok", "dup" (commit id already applied), "stale" (epoch is not the
// lease's current one) or "changed" (the instance is not the fresh one
// ARGV[7] names), each followed by a space and the commit id, so that the
// caller can tell its reply from another command's. Only "ok" writes.
var scriptCommit = newScript(`
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
`)

// scriptAckControl acks and deletes control messages, fenced by epoch.
//
// KEYS: 1 lease, 2 ctl. ARGV: 1 epoch, 2.. ids. Returns "ok" or "stale".
var scriptAckControl = newScript(`
local epoch = redis.call('HGET', KEYS[1], 'epoch') or '0'
if epoch ~= ARGV[1] then return 'stale' end
chunked('XACK', KEYS[2], '$GROUP', ARGV, 2, #ARGV - 1)
chunked('XDEL', KEYS[2], nil, ARGV, 2, #ARGV - 1)
return 'ok'
`)

// scriptOutboxDel deletes delivered outbox entries, fenced by epoch.
//
// KEYS: 1 lease, 2 outbox. ARGV: 1 epoch, 2.. ids. Returns "ok" or "stale".
var scriptOutboxDel = newScript(`
local epoch = redis.call('HGET', KEYS[1], 'epoch') or '0'
if epoch ~= ARGV[1] then return 'stale' end
chunked('XDEL', KEYS[2], nil, ARGV, 2, #ARGV - 1)
return 'ok'
`)

// scriptCheckEpoch returns "ok" or "stale". KEYS: 1 lease. ARGV: 1 epoch.
var scriptCheckEpoch = newScript(`
local epoch = redis.call('HGET', KEYS[1], 'epoch') or '0'
if epoch ~= ARGV[1] then return 'stale' end
return 'ok'
`)

// scriptFireTimers moves due timers into the control stream.
//
// KEYS: 1 lease, 2 timers, 3 ctl, 4 timer index prefix. ARGV: 1 epoch,
// 2 now (ms; capped at the server's TIME so a fast worker clock never fires
// a timer early), 3 max.
// Each fired member is also removed from its instance's timer index (the
// owner is the member's "i" field; a member that does not decode is left).
// Returns {moved, next score or ""}; moved is -1 for a stale epoch.
var scriptFireTimers = newScript(`
local epoch = redis.call('HGET', KEYS[1], 'epoch') or '0'
if epoch ~= ARGV[1] then return {-1, ''} end
-- A worker's clock may run ahead: never fire before the server's time.
local upto = math.min(tonumber(ARGV[2]), now_ms())
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', upto, 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do
  redis.call('XADD', KEYS[3], '*', 'm', m)
  local ok, d = pcall(cjson.decode, m)
  if ok and type(d) == 'table' and type(d.i) == 'string' then redis.call('SREM', KEYS[4] .. d.i, m) end
end
if #due > 0 then chunked('ZREM', KEYS[2], nil, due, 1, #due) end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local ns = ''
if #nxt == 2 then ns = nxt[2] end
return {#due, ns}
`)

// scriptCompleteActivity posts an activity result and retires the item.
//
// KEYS: 1 act, 2 ctl. ARGV: 1 item id, 2 result message.
// Returns 1 when applied, 0 when the item was no longer pending.
var scriptCompleteActivity = newScript(`
local p = redis.call('XPENDING', KEYS[1], '$GROUP', ARGV[1], ARGV[1], 1)
if #p == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', 'm', ARGV[2])
redis.call('XACK', KEYS[1], '$GROUP', ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
`)

// scriptAcquireLease takes or renews a partition lease.
//
// KEYS: 1 lease. ARGV: 1 owner, 2 ttl ms. Returns {epoch, 1 if held}.
var scriptAcquireLease = newScript(`
local cur = redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'exp')
local owner = cur[1] or ''
local epoch = tonumber(cur[2] or '0')
local exp = tonumber(cur[3] or '0')
local now = now_ms()
local nexp = now + tonumber(ARGV[2])
if owner ~= '' and owner == ARGV[1] then
  redis.call('HSET', KEYS[1], 'exp', nexp)
  return {epoch, 1}
end
if owner == '' or exp <= now then
  epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'exp', nexp)
  return {epoch, 1}
end
return {epoch, 0}
`)

// scriptRenewLease extends a lease held by owner at epoch.
//
// KEYS: 1 lease. ARGV: 1 owner, 2 epoch, 3 ttl ms. Returns 1 or 0.
var scriptRenewLease = newScript(`
local cur = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if ARGV[1] == '' or cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'exp', now_ms() + tonumber(ARGV[3]))
return 1
`)

// scriptReleaseLease frees a lease held by owner at epoch; the epoch is
// increased so the releaser's epoch is stale from now on.
//
// KEYS: 1 lease. ARGV: 1 owner, 2 epoch. Returns 1 or 0.
var scriptReleaseLease = newScript(`
local cur = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if ARGV[1] == '' or cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'owner', '', 'exp', 0)
return 1
`)

// scriptHeartbeat records a live worker and returns all live workers.
//
// KEYS: 1 workers. ARGV: 1 worker, 2 ttl ms.
var scriptHeartbeat = newScript(`
local now = now_ms()
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`)

// scriptPutModule stores a module and points an app at it.
//
// KEYS: 1 module, 2 apps, 3 funcs, 4 modules (the set of stored digests;
// optional). ARGV: 1 app, 2 wasm bytes, 3 app record JSON (its "digest" is
// added to KEYS[4]), 4.. function names.
// Returns {"ok"} or {"conflict", function, owning app}.
var scriptPutModule = newScript(`
for i = 4, #ARGV do
  local owner = redis.call('HGET', KEYS[3], ARGV[i])
  if owner and owner ~= ARGV[1] then return {'conflict', ARGV[i], owner} end
end
local keep = {}
for i = 4, #ARGV do keep[ARGV[i]] = true end
local prev = redis.call('HGET', KEYS[2], ARGV[1])
local drop = {}
if prev then
  local rec = cjson.decode(prev)
  if type(rec.functions) == 'table' then
    for _, f in ipairs(rec.functions) do
      if not keep[f.name] and redis.call('HGET', KEYS[3], f.name) == ARGV[1] then drop[#drop+1] = f.name end
    end
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'NX')
if KEYS[4] then redis.call('ZADD', KEYS[4], 'NX', now_ms(), cjson.decode(ARGV[3]).digest) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
for _, f in ipairs(drop) do redis.call('HDEL', KEYS[3], f) end
for i = 4, #ARGV do redis.call('HSET', KEYS[3], ARGV[i], ARGV[1]) end
return {'ok'}
`)

// allScripts lists every script, for preloading.
var allScripts = []*redis.Script{
	scriptCreate, scriptSend, scriptDeliver, scriptCommit, scriptAckControl,
	scriptOutboxDel, scriptCheckEpoch, scriptFireTimers, scriptCompleteActivity,
	scriptAcquireLease, scriptRenewLease, scriptReleaseLease, scriptHeartbeat,
	scriptPutModule, scriptDeadLetter, scriptRewind, scriptIndexRange, scriptPurge,
}

// runScript runs s with EVALSHA, falling back to EVAL when the server does not
// have it cached (first use, restart, or a cluster node that never saw it).
// NOSCRIPT means the script did not run, so the fallback cannot apply twice.
func runScript(ctx context.Context, c redis.Scripter, s *redis.Script, keys []string, args ...interface{}) *redis.Cmd {
	return s.Run(ctx, c, keys, args...)
}

// isNoScript reports whether err is a NOSCRIPT error reply.
func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// scriptDeadLetter parks an undecodable stream entry in the partition's
// dead-letter stream and removes it from its stream (acking it first when the
// stream has a consumer group).
//
// KEYS: 1 source stream, 2 dead-letter stream. ARGV: 1 entry id, 2 field,
// 3 raw value, 4 reason, 5 "1" to XACK.
var scriptDeadLetter = newScript(`
redis.call('XADD', KEYS[2], '*', 'src', KEYS[1], 'id', ARGV[1], 'field', ARGV[2], 'raw', ARGV[3], 'reason', ARGV[4])
if ARGV[5] == '1' then redis.call('XACK', KEYS[1], '$GROUP', ARGV[1]) end
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
`)

// scriptRewind enqueues a rewind message for a Failed instance.
//
// KEYS: 1 instance, 2 ctl, 3 dedup marker, 4 dedup set (optional),
// 5 idempotency record (optional)
// ARGV: 1 message, 2 message id ("" = no de-dup), 3 de-dup ttl ms,
// 4 idempotency fingerprint ("" or absent = none), 5 operation name,
// 6 idempotency ttl ms
// Returns "ok", "dup" (already delivered), "notfound", "st:<status>" (the
// instance is not Failed; nothing written), or an idem_check reply.
var scriptRewind = newScript(`
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
`)

// scriptIndexRange reads several index sorted sets of one partition at one
// instant (a script is atomic, and MULTI cannot be pipelined across slots on
// a cluster). It writes nothing.
//
// KEYS: index keys. ARGV: 1 min score, 2 max score, 3 count.
// Returns one ZRANGEBYSCORE … WITHSCORES LIMIT 0 count reply per key.
var scriptIndexRange = newScript(`
local out = {}
for i, k in ipairs(KEYS) do
  out[i] = redis.call('ZRANGEBYSCORE', k, ARGV[1], ARGV[2], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
end
return out
`)

// scriptPurge purges instances of one partition. Each is checked before it
// is touched: it exists; it still matches (its status is among the allowed
// ones, its created index score and, when given, its created time are the
// ones it was selected with — an instance replaced since is left alone); it
// is terminal unless forced. Then the script deletes its hash, history and
// timer index, the timer set members listed in that index, its created,
// status and digest index entries, and retires its dedup markers
// (dedup_retire).
//
// KEYS: 1 idx:created, 2 idx:st: prefix, 3 timers, 4 idx:d: prefix (digest
// index), 5 dedup prefix, 6 idempotency record (only when ARGV[3] is 3), then
// per instance: hash, history, timer index, dedup set.
// ARGV: 1 force ("1"/"0"), 2 de-dup ttl ms, 3 ni (0, or 3 with one instance:
// the idempotency fingerprint, operation name and ttl ms follow), then n
// allowed statuses (0 = any), the statuses, then per instance: id, created
// score ("" = not checked), created ns ("" = not checked).
// Returns one reply per instance: "deleted", "notfound", "gone" (no longer
// matches) or the status of an unfinished instance that was refused; or one
// idem_check reply.
var scriptPurge = newScript(`
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
`)

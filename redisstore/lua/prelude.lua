-- prelude.lua is prepended to every script (see lua.go, scriptSource): the
-- definitions below are locals of each script. $GROUP (the consumer group
-- name) and $GRACE (dedupGrace in ms) are substituted in the prelude and the
-- script alike before the script is built.

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

-- fire_timers.lua (scriptFireTimers) moves due timers into the control stream.
--
-- KEYS: 1 lease, 2 timers, 3 ctl, 4 timer index prefix. ARGV: 1 epoch,
-- 2 now (ms; capped at the server's TIME so a fast worker clock never fires
-- a timer early), 3 max.
-- Each fired member is also removed from its instance's timer index (the
-- owner is the member's "i" field; a member that does not decode is left).
-- Returns {moved, next score or ""}; moved is -1 for a stale epoch.

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

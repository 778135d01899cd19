-- requeue_control.lua (scriptRequeueControl) moves a control dead letter back
-- to its partition's control stream (a new entry with the same message) and
-- deletes the dead letter.
--
-- KEYS: 1 dead, 2 ctl. ARGV: 1 dead-letter id.
-- Returns the new entry id, "notfound", or "kind:<kind>" (not a control
-- message; nothing written).

local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return 'notfound' end
local f, kind, raw = e[1][2], '', nil
for k = 1, #f, 2 do
  if f[k] == 'kind' then kind = f[k + 1] end
  if f[k] == 'raw' then raw = f[k + 1] end
end
if kind ~= 'control' or raw == nil then return 'kind:' .. kind end
local id = redis.call('XADD', KEYS[2], '*', 'm', raw)
redis.call('XDEL', KEYS[1], ARGV[1])
return id

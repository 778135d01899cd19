-- quarantine_control.lua (scriptQuarantineControl) parks control messages that
-- could not be processed: each still-present entry is copied (its raw field)
-- to the dead-letter stream as kind=control with the reason, then acked and
-- deleted. Fenced by the lease epoch.
--
-- KEYS: 1 lease, 2 ctl, 3 dead. ARGV: 1 epoch, 2 reason, then pairs of
-- (entry id, instance id).
-- Returns {"stale"} or {"ok", dead-letter id or "" (entry gone), ...}.

local epoch = redis.call('HGET', KEYS[1], 'epoch') or '0'
if epoch ~= ARGV[1] then return {'stale'} end
local out = {'ok'}
for j = 3, #ARGV, 2 do
  local id = ARGV[j]
  local e = redis.call('XRANGE', KEYS[2], id, id)
  local dl = ''
  if #e > 0 then
    local f, raw = e[1][2], ''
    for k = 1, #f, 2 do
      if f[k] == 'm' then raw = f[k + 1] end
    end
    dl = redis.call('XADD', KEYS[3], '*', 'kind', 'control', 'src', KEYS[2], 'id', id, 'field', 'm', 'raw', raw,
      'reason', ARGV[2], 'i', ARGV[j + 1])
  end
  redis.call('XACK', KEYS[2], '$GROUP', id)
  redis.call('XDEL', KEYS[2], id)
  out[#out + 1] = dl
end
return out

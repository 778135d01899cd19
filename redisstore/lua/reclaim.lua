-- reclaim.lua (scriptReclaim) takes over the pending entries of a stream's
-- consumers whose worker is no longer alive, and removes such consumers
-- once they hold nothing. The check and the removal are one step, so an
-- entry read by a consumer is never dropped from the pending list with it.
--
-- KEYS: 1 stream. ARGV: 1 group, 2 claimer (a live worker), 3 max entries to
-- claim (0: only remove empty dead consumers), 4 min idle ms (a consumer
-- that read more recently is left alone: a worker that has just started may
-- not be in the claimer's list of live workers yet), 5.. the live worker ids.
-- Returns the claimed entries, as XCLAIM returns them (delivery counts
-- incremented).

local group, claimer, max, minIdle = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local live = { [claimer] = true }
for i = 5, #ARGV do live[ARGV[i]] = true end
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], group)
if not ok then
  return {} -- no stream or group yet
end
local out = {}
for _, c in ipairs(consumers) do
  -- A flat field/value list (RESP2, Redis), or a table keyed by field
  -- (miniredis).
  local name, pending, idle = c['name'], tonumber(c['pending']), tonumber(c['idle'])
  for j = 1, #c, 2 do
    if c[j] == 'name' then name = c[j + 1]
    elseif c[j] == 'pending' then pending = tonumber(c[j + 1])
    elseif c[j] == 'idle' then idle = tonumber(c[j + 1]) end
  end
  -- An unknown idle time (miniredis answers -1) counts as long.
  if idle == nil or idle < 0 then idle = minIdle end
  if name and not live[name] and idle >= minIdle then
    if pending == 0 then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], group, name)
    elseif #out < max then
      local ids = {}
      for _, e in ipairs(redis.call('XPENDING', KEYS[1], group, '-', '+', max - #out, name)) do
        ids[#ids + 1] = e[1]
      end
      if #ids > 0 then
        for _, m in ipairs(redis.call('XCLAIM', KEYS[1], group, claimer, 0, unpack(ids))) do
          if m then out[#out + 1] = m end
        end
      end
    end
  end
end
return out

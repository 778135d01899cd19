-- remove_app.lua (scriptRemoveApp) removes an app record and its function
-- mappings, and optionally its module when no other app points at it.
--
-- KEYS: 1 apps, 2 funcs, 3 module, 4 module settings, 5 modules.
-- ARGV: 1 app, 2 expected digest, 3 "1" to drop the module.
-- Returns {"notfound"}, {"changed", current digest} or {"ok", "1"|"0"
-- (module removed)}.

local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {'notfound'} end
local rec = cjson.decode(raw)
if rec.digest ~= ARGV[2] then return {'changed', tostring(rec.digest)} end
redis.call('HDEL', KEYS[1], ARGV[1])
if type(rec.functions) == 'table' then
  for _, f in ipairs(rec.functions) do
    if redis.call('HGET', KEYS[2], f.name) == ARGV[1] then redis.call('HDEL', KEYS[2], f.name) end
  end
end
local removed = '0'
if ARGV[3] == '1' then
  local used = false
  for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
    local ok, r = pcall(cjson.decode, v)
    if ok and type(r) == 'table' and r.digest == ARGV[2] then used = true break end
  end
  if not used then
    redis.call('DEL', KEYS[3], KEYS[4])
    redis.call('ZREM', KEYS[5], ARGV[2])
    removed = '1'
  end
end
return {'ok', removed}

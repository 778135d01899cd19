-- remove_module.lua (scriptRemoveModule) removes a module no app points at.
--
-- KEYS: 1 apps, 2 module, 3 module settings, 4 modules. ARGV: 1 digest.
-- Returns {"inuse", app}, {"notfound"} or {"ok"}.

local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local ok, r = pcall(cjson.decode, all[i+1])
  if ok and type(r) == 'table' and r.digest == ARGV[1] then return {'inuse', all[i]} end
end
local existed = redis.call('EXISTS', KEYS[2])
redis.call('DEL', KEYS[2], KEYS[3])
local listed = redis.call('ZREM', KEYS[4], ARGV[1])
if existed == 0 and listed == 0 then return {'notfound'} end
return {'ok'}

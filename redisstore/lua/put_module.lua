-- put_module.lua (scriptPutModule) stores a module and points an app at it.
--
-- KEYS: 1 module, 2 apps, 3 funcs, 4 modules (the set of stored digests;
-- optional). ARGV: 1 app, 2 wasm bytes, 3 app record JSON (its "digest" is
-- added to KEYS[4]), 4.. function names.
-- Returns {"ok"} or {"conflict", function, owning app}.

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

-- acquire_lease.lua (scriptAcquireLease) takes or renews a partition lease.
--
-- KEYS: 1 lease. ARGV: 1 owner, 2 ttl ms. Returns {epoch, 1 if held}.

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

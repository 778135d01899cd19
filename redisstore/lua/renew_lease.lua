-- renew_lease.lua (scriptRenewLease) extends a lease held by owner at epoch.
--
-- KEYS: 1 lease. ARGV: 1 owner, 2 epoch, 3 ttl ms. Returns 1 or 0.

local cur = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if ARGV[1] == '' or cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'exp', now_ms() + tonumber(ARGV[3]))
return 1

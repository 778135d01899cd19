-- release_lease.lua (scriptReleaseLease) frees a lease held by owner at epoch;
-- the epoch is increased so the releaser's epoch is stale from now on.
--
-- KEYS: 1 lease. ARGV: 1 owner, 2 epoch. Returns 1 or 0.

local cur = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if ARGV[1] == '' or cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'owner', '', 'exp', 0)
return 1

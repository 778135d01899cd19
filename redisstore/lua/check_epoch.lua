-- check_epoch.lua (scriptCheckEpoch) returns "ok" or "stale". KEYS: 1 lease.
-- ARGV: 1 epoch.

local epoch = redis.call('HGET', KEYS[1], 'epoch') or '0'
if epoch ~= ARGV[1] then return 'stale' end
return 'ok'

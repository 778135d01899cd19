-- heartbeat.lua (scriptHeartbeat) records a live worker and returns all live
-- workers.
--
-- KEYS: 1 workers. ARGV: 1 worker, 2 ttl ms.

local now = now_ms()
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)

-- ack_control.lua (scriptAckControl) acks and deletes control messages, fenced
-- by epoch.
--
-- KEYS: 1 lease, 2 ctl. ARGV: 1 epoch, 2.. ids. Returns "ok" or "stale".

local epoch = redis.call('HGET', KEYS[1], 'epoch') or '0'
if epoch ~= ARGV[1] then return 'stale' end
chunked('XACK', KEYS[2], '$GROUP', ARGV, 2, #ARGV - 1)
chunked('XDEL', KEYS[2], nil, ARGV, 2, #ARGV - 1)
return 'ok'

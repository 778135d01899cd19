-- dead_letter.lua (scriptDeadLetter) parks an undecodable stream entry in the
-- partition's dead-letter stream and removes it from its stream (acking it
-- first when the stream has a consumer group).
--
-- KEYS: 1 source stream, 2 dead-letter stream. ARGV: 1 entry id, 2 field,
-- 3 raw value, 4 reason, 5 "1" to XACK.

redis.call('XADD', KEYS[2], '*', 'src', KEYS[1], 'id', ARGV[1], 'field', ARGV[2], 'raw', ARGV[3], 'reason', ARGV[4])
if ARGV[5] == '1' then redis.call('XACK', KEYS[1], '$GROUP', ARGV[1]) end
redis.call('XDEL', KEYS[1], ARGV[1])
return 1

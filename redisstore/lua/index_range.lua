-- index_range.lua (scriptIndexRange) reads several index sorted sets of one
-- partition at one instant (a script is atomic, and MULTI cannot be pipelined
-- across slots on a cluster). It writes nothing.
--
-- KEYS: index keys. ARGV: 1 min score, 2 max score, 3 count.
-- Returns one ZRANGEBYSCORE … WITHSCORES LIMIT 0 count reply per key.

local out = {}
for i, k in ipairs(KEYS) do
  out[i] = redis.call('ZRANGEBYSCORE', k, ARGV[1], ARGV[2], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
end
return out

-- find_function.lua (scriptFindFunction) returns {app, app record} for the
-- function named ARGV[1], {app} when the app record is missing, nil when no
-- app registers the function.
--
-- KEYS: 1 funcs, 2 apps.

local app = redis.call('HGET', KEYS[1], ARGV[1])
if not app then return false end
local rec = redis.call('HGET', KEYS[2], app)
if not rec then return {app} end
return {app, rec}

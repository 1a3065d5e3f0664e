-- Reserve an account's next query time. Runs after now.lua.
-- KEYS: tat, penalty. ARGV: interval ms, burst tolerance ms, now in ms (empty: Redis's clock).
-- Returns the wait in ms. Queries may run up to the tolerance ahead of the even spacing (a
-- result query right after the list call that found its task), never above Q per second on
-- average; a penalty (the provider's 429s) takes the tolerance away.
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local penalty = tonumber(redis.call('GET', KEYS[2]) or '1')
local tolerance = tonumber(ARGV[2])
if penalty > 1 then tolerance = 0 end
redis.call('SET', KEYS[1], tat + tonumber(ARGV[1]) * penalty, 'PX', 60000)
local wait = tat - now - tolerance
if wait < 0 then wait = 0 end
return tostring(wait)

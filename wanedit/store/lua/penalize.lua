-- The provider answered 429: double the spacing, up to a maximum, for a while.
-- KEYS: penalty. ARGV: max, ttl ms. Returns the new penalty.
local penalty = tonumber(redis.call('GET', KEYS[1]) or '1') * 2
if penalty > tonumber(ARGV[1]) then penalty = tonumber(ARGV[1]) end
redis.call('SET', KEYS[1], penalty, 'PX', tonumber(ARGV[2]))
return penalty

-- Book a wake-up unless one is booked for the same time or sooner.
-- KEYS: mark. ARGV: at ms, ttl ms. Returns 1 when booked.
local booked = redis.call('GET', KEYS[1])
if booked and tonumber(booked) <= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1

-- A wake-up runs: forget its booking (not a later, sooner-booked one).
-- KEYS: mark. ARGV: now ms.
local booked = redis.call('GET', KEYS[1])
if booked and tonumber(booked) <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
return 0

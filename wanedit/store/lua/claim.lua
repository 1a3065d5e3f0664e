-- Renew the lease of the job holding a slot. Runs after now.lua.
-- KEYS: slots, job. ARGV: job id, account, the admission's token (empty: not checked), lease ms,
--   now in ms (empty: Redis's clock).
-- Returns 1 when the job still holds its slot on that account, from that admission, else 0.
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then return 0 end
if redis.call('HGET', KEYS[2], 'account') ~= ARGV[2] then return 0 end
if ARGV[3] ~= '' and redis.call('HGET', KEYS[2], 'admit_token') ~= ARGV[3] then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[4]), ARGV[1])
return 1

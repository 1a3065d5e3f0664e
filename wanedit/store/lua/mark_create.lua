-- Note that a create is about to be sent for a queued job that has none noted (and, once, when
-- its first create was: its deadlines count from then).
-- KEYS: job. ARGV: now (unix seconds), the queued status.
-- Returns 1 when noted, 0 when the job is not queued or a create was noted before.
if redis.call('HGET', KEYS[1], 'status') ~= ARGV[2] then return 0 end
local sent = redis.call('HGET', KEYS[1], 'create_sent_at')
if sent and sent ~= '' then return 0 end
redis.call('HSET', KEYS[1], 'create_sent_at', ARGV[1])
redis.call('HSETNX', KEYS[1], 'first_create_at', ARGV[1])
return 1

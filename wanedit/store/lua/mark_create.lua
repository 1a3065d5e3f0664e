-- Note that a create is about to be sent for a queued job that has none noted, and put the job
-- in the due index in the same step: a worker lost in the middle of the create leaves a job the
-- sweeper sees. The first create's moment is kept too: deadlines count from it.
-- KEYS: job, due index. ARGV: now (unix seconds), the queued status, when the create's outcome
--   is due (unix seconds).
-- Returns 1 when noted, 0 when a create was noted before, -1 when the job is not queued, -2 when
-- a cancel was requested (no create may go).
if redis.call('HGET', KEYS[1], 'status') ~= ARGV[2] then return -1 end
local sent = redis.call('HGET', KEYS[1], 'create_sent_at')
if sent and sent ~= '' then return 0 end
if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then return -2 end
redis.call('HSET', KEYS[1], 'create_sent_at', ARGV[1])
redis.call('HSETNX', KEYS[1], 'first_create_at', ARGV[1])
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), redis.call('HGET', KEYS[1], 'id'))
return 1

-- The provider surely made no task for the create noted at ARGV[2]: clear it, so the next create
-- may go. Compare-and-set on that create: a look that read an older create never clears a newer
-- one in flight.
-- KEYS: job. ARGV: the queued status, when the create was noted (unix seconds).
-- Returns 1 when cleared, 0 when the job is not queued or another create is noted.
if redis.call('HGET', KEYS[1], 'status') ~= ARGV[1] then return 0 end
local sent = tonumber(redis.call('HGET', KEYS[1], 'create_sent_at') or '')
if sent == nil or sent ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'create_sent_at', '', 'provider_request_id', '', 'create_lost_at', '')
return 1

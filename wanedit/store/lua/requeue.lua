-- A job admitted to an account that cannot create (paused) goes back to the backlog at its
-- arrival score, as a reclaimed slot's job does: its slot and its reservation against the daily
-- cap are given back (its next admission reserves again). Only the admission of `token` may.
-- KEYS: the account's slots, job, interactive backlog, batch backlog.
-- ARGV: job id, admission token (empty: any), spend key prefix, the queued status, now in ms
--   (the place of a job recorded before arrival scores were kept).
-- Returns 1 when the job went back to the backlog, 0 when it was not this admission's or is no
-- longer queued with no create in flight.
local jk = KEYS[2]
if ARGV[2] ~= '' and redis.call('HGET', jk, 'admit_token') ~= ARGV[2] then return 0 end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HGET', jk, 'status') ~= ARGV[4] then return 0 end
local sent = redis.call('HGET', jk, 'create_sent_at')
if sent and sent ~= '' then return 0 end
local reserved = tonumber(redis.call('HGET', jk, 'reserved') or '0')
local day = redis.call('HGET', jk, 'spend_day')
local account = redis.call('HGET', jk, 'account')
if reserved > 0 and day and account and redis.call('HGET', jk, 'settled') ~= '1' then
  redis.call('HINCRBY', ARGV[3] .. day, 'total', -reserved)
  redis.call('HINCRBY', ARGV[3] .. day, account, -reserved)
end
-- The refused create spent none of the job's time: its deadline counts from its next create.
redis.call('HDEL', jk, 'account', 'spend_day', 'reserved', 'first_create_at')
local backlog = KEYS[3]
if redis.call('HGET', jk, 'priority') == 'batch' then backlog = KEYS[4] end
redis.call('ZADD', backlog, redis.call('HGET', jk, 'backlog_score') or ARGV[5], ARGV[1])
return 1

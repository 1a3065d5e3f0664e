-- Record a new job and its place in the backlog, as one step. Neither the record nor its
-- idempotency key expires while the job has not ended (the terminal transition starts their
-- retention clock).
-- KEYS: job, then the idempotency key (when ARGV[3] is '1'), then the backlog (when ARGV[4]
--   is '1').
-- ARGV: job id, backlog score, has an idempotency key ('1'/'0'), goes to a backlog ('1'/'0'),
--   the job key prefix, the request's fingerprint ('' for none), then field/value pairs.
-- Returns {1, id} once created; {0, id} when the job exists already (a caller-chosen id sent
-- twice: it is never overwritten) or {0, the first job's id} when the idempotency key was used
-- for the same request; {-1, the first job's id} when it was used for a request with another
-- fingerprint (a job recorded without one, or a request without one, is not compared).
local next_key = 2
local idempotency, backlog
if ARGV[3] == '1' then idempotency = KEYS[next_key]; next_key = next_key + 1 end
if ARGV[4] == '1' then backlog = KEYS[next_key] end
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, ARGV[1]} end
if idempotency then
  local existing = redis.call('GET', idempotency)
  if existing then
    local fingerprint = ARGV[6]
    if fingerprint ~= '' then
      local stored = redis.call('HGET', ARGV[5] .. existing, 'request_fingerprint')
      if stored and stored ~= '' and stored ~= fingerprint then return {-1, existing} end
    end
    return {0, existing}
  end
  redis.call('SET', idempotency, ARGV[1])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
if backlog then redis.call('ZADD', backlog, tonumber(ARGV[2]), ARGV[1]) end
return {1, ARGV[1]}

-- Record new jobs, each with its place in the backlog, as one step: one job (a submit) or a chunk
-- of a batch's lines in one call. Neither a record nor its idempotency key expires while its job
-- has not ended (the terminal transition starts their retention clock).
-- KEYS: per job, in order: its record, then its idempotency key (when it has one), then its
--   backlog (when it goes to one).
-- ARGV: the job key prefix, the number of jobs; then per job: id, backlog score, has an
--   idempotency key ('1'/'0'), goes to a backlog ('1'/'0'), the request's fingerprint ('' for
--   none), its field/value strings as one JSON array (one argument, not dozens: a chunk of a
--   batch's lines is thousands of them).
-- Returns, per job in order, a pair: {1, id} once created; {0, id} when the job exists already (a
-- caller-chosen id sent twice: it is never overwritten) or {0, the first job's id} when the
-- idempotency key was used for the same request; {-1, the first job's id} when it was used for a
-- request with another fingerprint (a job recorded without one, or a request without one, is not
-- compared).
local prefix = ARGV[1]
local answers = {}
local k, a = 1, 3
for _ = 1, tonumber(ARGV[2]) do
  local id, score, fingerprint, fields = ARGV[a], ARGV[a + 1], ARGV[a + 4], ARGV[a + 5]
  local job = KEYS[k]
  k = k + 1
  local idempotency, backlog
  if ARGV[a + 2] == '1' then idempotency = KEYS[k]; k = k + 1 end
  if ARGV[a + 3] == '1' then backlog = KEYS[k]; k = k + 1 end
  a = a + 6
  local code, winner = 1, id
  if redis.call('EXISTS', job) == 1 then
    code = 0
  elseif idempotency then
    local existing = redis.call('GET', idempotency)
    if existing then
      code, winner = 0, existing
      if fingerprint ~= '' then
        local stored = redis.call('HGET', prefix .. existing, 'request_fingerprint')
        if stored and stored ~= '' and stored ~= fingerprint then code = -1 end
      end
    end
  end
  if code == 1 then
    if idempotency then redis.call('SET', idempotency, id) end
    redis.call('HSET', job, unpack(cjson.decode(fields)))
    if backlog then redis.call('ZADD', backlog, tonumber(score), id) end
  end
  answers[#answers + 1] = code
  answers[#answers + 1] = winner
end
return answers

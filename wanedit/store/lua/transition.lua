-- Change a job's fields, and maybe its status, only while its status is one of those expected:
-- the compare-and-set behind every change of a job.
-- KEYS: job, events stream, due index, callbacks index, metrics hash, then the job's
--   idempotency key when it has one.
-- ARGV: check ('1': only from the statuses in ARGV[2]; '0': from any status), the expected
--   statuses (comma-joined), the new status, the retention ttl, the event JSON, the stream's
--   maxlen, when the callbacks are due, metric increments JSON, the terminal statuses
--   (comma-joined), then field/value pairs. Optional arguments are empty when absent.
-- Returns {-1, ''} when there is no job, {0, status} when its status was not expected, and
-- {1, status} once changed (status: the one it had).
-- An event ends the job: it leaves the due index and the event joins the stream in the same
-- step. With callbacks owed, the event is kept on the job and the job enters the callbacks index
-- too, so a worker lost right after it still delivers. The increments count the job's end once.
-- Retention: the record and its idempotency key expire `ttl` after the job ended, never before:
-- the ending step starts the clock, a write to a job not ended takes any expiry off (records
-- written by older versions had one), and a later write to an ended job leaves it as it is.
local check, expected, target, ttl = ARGV[1] == '1', ARGV[2], ARGV[3], ARGV[4]
local event, maxlen, callbacks_due, increments = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {-1, ''} end
if check then
  local allowed = false
  for status in string.gmatch(expected, '[^,]+') do
    if status == current then allowed = true end
  end
  if not allowed then return {0, current} end
end
if #ARGV > 9 then redis.call('HSET', KEYS[1], unpack(ARGV, 10)) end
if target ~= '' then redis.call('HSET', KEYS[1], 'status', target) end
local status = current
if target ~= '' then status = target end
local ended = false
for name in string.gmatch(ARGV[9], '[^,]+') do
  if name == status then ended = true end
end
if event ~= '' then
  redis.call('EXPIRE', KEYS[1], tonumber(ttl))
  if KEYS[6] then redis.call('EXPIRE', KEYS[6], tonumber(ttl)) end
elseif not ended then
  redis.call('PERSIST', KEYS[1])
  if KEYS[6] then redis.call('PERSIST', KEYS[6]) end
end
if event ~= '' then
  redis.call('ZREM', KEYS[3], redis.call('HGET', KEYS[1], 'id'))
  local decoded = cjson.decode(event)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(maxlen), '*',
             'type', decoded['type'], 'job_id', decoded['job_id'], 'data', event)
  if callbacks_due ~= '' then
    redis.call('HSET', KEYS[1], 'event', event)
    redis.call('ZADD', KEYS[4], tonumber(callbacks_due), redis.call('HGET', KEYS[1], 'id'))
  end
end
if increments ~= '' then
  for name, amount in pairs(cjson.decode(increments)) do
    redis.call('HINCRBYFLOAT', KEYS[5], name, amount)
  end
end
return {1, current}

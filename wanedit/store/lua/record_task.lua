-- A create made a provider task: record its id on the job, only where none is recorded, and move
-- a queued job to submitted with its first poll in the due index, as one step.
-- KEYS: job, due index. ARGV: the queued status, the submitted status, the ended statuses
--   (comma-joined), the task id, when the first poll is due (unix seconds), then field/value
--   pairs.
-- Returns {1, status, '', cancel requested ('1' or '0')} once submitted (status: the one it
--   had); {0, status, the id recorded} when the job has a task id already (this one or
--   another); {2, status, ''} when the job had ended with none: the id is kept on it, its status
--   unchanged; {-1, '', ''} when there is no job.
-- A job that has not ended has no TTL: its retention starts when it ends.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {-1, '', ''} end
local recorded = redis.call('HGET', KEYS[1], 'provider_task_id')
if recorded and recorded ~= '' then return {0, status, recorded} end
if status ~= ARGV[1] then
  for ended in string.gmatch(ARGV[3], '[^,]+') do
    if ended == status then
      redis.call('HSET', KEYS[1], 'provider_task_id', ARGV[4])
      return {2, status, ''}
    end
  end
  return {0, status, ''}
end
if #ARGV > 5 then redis.call('HSET', KEYS[1], unpack(ARGV, 6)) end
redis.call('HSET', KEYS[1], 'provider_task_id', ARGV[4], 'status', ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(ARGV[5]), redis.call('HGET', KEYS[1], 'id'))
redis.call('PERSIST', KEYS[1])
return {1, status, '', redis.call('HGET', KEYS[1], 'cancel_requested') or '0'}

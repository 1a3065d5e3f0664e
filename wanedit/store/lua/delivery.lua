-- Record how a job's callbacks went, and book or end its place in the callbacks index.
-- KEYS: job, callbacks index.
-- ARGV: check ('1': only if the job has exactly ARGV[2] webhook attempts; '0': always), the
--   expected number of attempts, what to do in the index ('keep', 'book' at ARGV[4], or
--   'done'), when the next attempt is due, then field/value pairs.
-- Returns -1 when there is no job, 0 when the attempts differ (a redelivered attempt finds one
-- more), 1 once written.
local check, expected, index, due = ARGV[1] == '1', ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if check then
  local raw = redis.call('HGET', KEYS[1], 'webhook_attempts')
  local count = 0
  if raw and raw ~= '' then count = #cjson.decode(raw) end
  if count ~= tonumber(expected) then return 0 end
end
if #ARGV > 4 then redis.call('HSET', KEYS[1], unpack(ARGV, 5)) end
if index == 'done' then
  redis.call('ZREM', KEYS[2], redis.call('HGET', KEYS[1], 'id'))
elseif index == 'book' then
  redis.call('ZADD', KEYS[2], tonumber(due), redis.call('HGET', KEYS[1], 'id'))
end
return 1

-- End a job whose record is gone (evicted, or deleted by hand) before it ended: write a failed
-- record in its place, with the retention ttl, and its `job.failed` event, as one step. Only the
-- first report of a job does anything: after it the record exists again.
-- KEYS: job, events stream, due index, metrics hash, lost index.
-- ARGV: job id, ttl, the event JSON, the stream's maxlen, metric increments JSON, then
--   field/value pairs of the record.
-- Returns 1 when written, 0 when the job has a record (with a status) after all.
redis.call('ZREM', KEYS[5], ARGV[1])
if redis.call('HGET', KEYS[1], 'status') then return 0 end
-- A stray write after the record went may have left a few fields and no status.
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
redis.call('ZREM', KEYS[3], ARGV[1])
local decoded = cjson.decode(ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(ARGV[4]), '*',
           'type', decoded['type'], 'job_id', decoded['job_id'], 'data', ARGV[3])
for name, amount in pairs(cjson.decode(ARGV[5])) do
  redis.call('HINCRBYFLOAT', KEYS[4], name, amount)
end
return 1

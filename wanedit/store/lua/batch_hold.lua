-- Hold a batch's run lock, and record the line its runner has just handled.
-- KEYS: the batch's run lock, its info hash.
-- ARGV: the runner's token, lease seconds (0: let go of the lock), the line handled ('' for
--       none), progress retention seconds.
-- Returns 1 while the runner holds the lock (the line recorded), 0 when another runner holds it
-- or the line was recorded before (a stale copy of a chunk: it must stop).
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return 0
end
if ARGV[3] ~= '' then
  local line = tonumber(ARGV[3])
  if line <= tonumber(redis.call('HGET', KEYS[2], 'line') or '0') then
    return 0
  end
  redis.call('HSET', KEYS[2], 'line', line)
  redis.call('HINCRBY', KEYS[2], 'total', 1)
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
elseif holder then
  redis.call('DEL', KEYS[1])
end
return 1

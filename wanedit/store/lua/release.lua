-- Give a slot back; correct the day's spend from the images reserved to those billed, once.
-- KEYS: slots, job. ARGV: job id, images billed (-1: not known yet), spend key prefix.
-- Returns 1 when this call gave the slot back.
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
local billed = tonumber(ARGV[2])
-- (A job whose record is gone has nothing to settle: no write may bring back part of it.)
local exists = redis.call('EXISTS', KEYS[2]) == 1
if billed >= 0 and exists and redis.call('HSETNX', KEYS[2], 'settled', '1') == 1 then
  local day = redis.call('HGET', KEYS[2], 'spend_day')
  local reserved = tonumber(redis.call('HGET', KEYS[2], 'reserved') or '0')
  local account = redis.call('HGET', KEYS[2], 'account')
  if day and account and billed ~= reserved then
    redis.call('HINCRBY', ARGV[3] .. day, 'total', billed - reserved)
    redis.call('HINCRBY', ARGV[3] .. day, account, billed - reserved)
  end
end
return removed

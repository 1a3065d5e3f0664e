-- Take provider slots for as many waiting jobs as slots, rates and the daily cap allow, best
-- first; reclaim slots whose lease ran out (a job that never reached the provider goes back to
-- the backlog, and its reservation against the daily cap is given back: its next admission
-- reserves again). Each admission gives the job a new token (`admit_token`), which its submit
-- message carries: a message from an earlier admission cannot claim the slot. Runs after now.lua.
-- KEYS: interactive backlog, batch backlog, today's spend hash, cap, paused; then per account:
--   slots, submit tat, submit penalty; then the lost index (jobs whose record is gone, by when:
--   the sweeper reports each); then the paused accounts (a hash by name: none is given a slot).
-- ARGV: job key prefix, account count, lease ms, batch max wait ms, default cap, max admits,
--   horizon ms, day, the queued status, spend key prefix; then per account: name, concurrency,
--   interval ms; then now in ms (empty: Redis's clock).
-- Returns {admitted (job, account, delay ms, token, ...), what blocked ('', 'slots', 'rate', 'cap'
-- or 'paused': every account with a free slot is paused),
-- jobs still waiting, slots reclaimed}.
local queued = ARGV[9]
local accounts = tonumber(ARGV[2])
local function akey(i, k) return KEYS[5 + 3 * (i - 1) + k] end
local function aarg(i, k) return ARGV[10 + 3 * (i - 1) + k] end
local lost = KEYS[5 + 3 * accounts + 1]
local pauses = KEYS[5 + 3 * accounts + 2]
local paused = {}
for i = 1, accounts do
  paused[i] = redis.call('HEXISTS', pauses, aarg(i, 1)) == 1
end
local reclaimed = 0
for i = 1, accounts do
  for _, job in ipairs(redis.call('ZRANGEBYSCORE', akey(i, 1), '-inf', now)) do
    redis.call('ZREM', akey(i, 1), job)
    reclaimed = reclaimed + 1
    local jk = ARGV[1] .. job
    local status = redis.call('HGET', jk, 'status')
    if not status then redis.call('ZADD', lost, now, job) end
    if status == queued then
      local backlog = KEYS[1]
      if redis.call('HGET', jk, 'priority') == 'batch' then backlog = KEYS[2] end
      local reserved = tonumber(redis.call('HGET', jk, 'reserved') or '0')
      local day = redis.call('HGET', jk, 'spend_day')
      local account = redis.call('HGET', jk, 'account')
      if reserved > 0 and day and account and redis.call('HGET', jk, 'settled') ~= '1' then
        redis.call('HINCRBY', ARGV[10] .. day, 'total', -reserved)
        redis.call('HINCRBY', ARGV[10] .. day, account, -reserved)
      end
      redis.call('HDEL', jk, 'account', 'spend_day', 'reserved')
      redis.call('ZADD', backlog, redis.call('HGET', jk, 'backlog_score') or now, job)
    end
  end
end
local cap = tonumber(redis.call('GET', KEYS[4]) or ARGV[5])
local spent = tonumber(redis.call('HGET', KEYS[3], 'total') or '0')
local admitted = {}
local reason = ''
for _ = 1, tonumber(ARGV[6]) do
  local ih = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local bh = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local pick, from
  if #bh > 0 and (#ih == 0 or now - tonumber(bh[2]) >= tonumber(ARGV[4])) then
    pick, from = bh[1], KEYS[2]
  elseif #ih > 0 then
    pick, from = ih[1], KEYS[1]
  end
  if not pick then break end
  local jk = ARGV[1] .. pick
  local status = redis.call('HGET', jk, 'status')
  if status ~= queued then
    redis.call('ZREM', from, pick)
    if not status then redis.call('ZADD', lost, now, pick) end
  else
    local n = tonumber(redis.call('HGET', jk, 'n') or '1')
    if cap > 0 and spent + n > cap then reason = 'cap'; break end
    local best, best_tat
    local full = false
    for i = 1, accounts do
      if redis.call('ZCARD', akey(i, 1)) >= tonumber(aarg(i, 2)) then
        full = full or not paused[i]
      elseif not paused[i] then
        local tat = tonumber(redis.call('GET', akey(i, 2)) or '0')
        if tat < now then tat = now end
        if best == nil or tat < best_tat then best, best_tat = i, tat end
      end
    end
    if best == nil then
      if full then reason = 'slots' else reason = 'paused' end
      break
    end
    if best_tat - now > tonumber(ARGV[7]) then reason = 'rate'; break end
    local penalty = tonumber(redis.call('GET', akey(best, 3)) or '1')
    redis.call('SET', akey(best, 2), best_tat + tonumber(aarg(best, 3)) * penalty, 'PX', 60000)
    redis.call('ZREM', from, pick)
    redis.call('ZADD', akey(best, 1), now + tonumber(ARGV[3]), pick)
    local token = redis.call('HINCRBY', jk, 'admit_token', 1)
    redis.call('HSET', jk, 'account', aarg(best, 1), 'spend_day', ARGV[8], 'reserved', n)
    redis.call('HDEL', jk, 'settled')
    redis.call('HINCRBY', KEYS[3], 'total', n)
    redis.call('HINCRBY', KEYS[3], aarg(best, 1), n)
    redis.call('EXPIRE', KEYS[3], 3 * 86400)
    spent = spent + n
    table.insert(admitted, pick)
    table.insert(admitted, aarg(best, 1))
    table.insert(admitted, tostring(best_tat - now))
    table.insert(admitted, tostring(token))
  end
end
if reason == 'cap' then
  redis.call('SET', KEYS[5], tostring(cap), 'PX', 3600000)
else
  redis.call('DEL', KEYS[5])
end
local waiting = redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2])
return {admitted, reason, waiting, reclaimed}

-- Pause an account, or say anew why it is paused (its first moment is kept). Only the call
-- that paused it writes the `account.paused` event.
-- KEYS: the pauses hash, the events stream. ARGV: account name, why (JSON: code, message,
--   since), the event (JSON; its `since` is the pause's), stream max length.
-- Returns 1 when this call paused the account, 0 when it was paused already.
local old = redis.call('HGET', KEYS[1], ARGV[1])
local why = cjson.decode(ARGV[2])
if old then
  why['since'] = cjson.decode(old)['since']
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(why))
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(ARGV[4]), '*',
           'type', 'account.paused', 'account', ARGV[1], 'data', ARGV[3])
return 1

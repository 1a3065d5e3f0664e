-- Lift an account's pause; only the call that lifted it writes the `account.resumed` event
-- (its `paused` field is the pause that ended).
-- KEYS: the pauses hash, the events stream, the account's probe lock. ARGV: account name, the
--   event (JSON, without `paused`), stream max length.
-- Returns the pause that was lifted (JSON), or false when the account was not paused.
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3])
local event = cjson.decode(ARGV[2])
event['paused'] = cjson.decode(old)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', tonumber(ARGV[3]), '*',
           'type', 'account.resumed', 'account', ARGV[1], 'data', cjson.encode(event))
return old

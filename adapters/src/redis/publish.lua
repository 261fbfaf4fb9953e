-- Appends one notification to the backplane, atomically:
--   the stream every hub replica reads, trimmed to about ARGV[2] entries;
--   the user's history, for clients that reconnect: the last ARGV[3] entries, kept ARGV[4] ms.
-- KEYS[1]: the stream; KEYS[2]: the user's history list. ARGV[1]: the message JSON.
-- Returns the stream entry id: the notification's cursor.
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'm', ARGV[1])
redis.call('RPUSH', KEYS[2], id .. ' ' .. ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return id

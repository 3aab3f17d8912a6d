-- Stores a session and indexes it under its user, atomically.
-- KEYS[1] session key, KEYS[2] the user's index (sorted set scored by expiry, Unix ms)
-- ARGV[1] session JSON, ARGV[2] ttl in ms, ARGV[3] index member (token hash, hex)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
-- The Redis clock scores entries, so app servers with skewed clocks agree on expiry.
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
redis.call('ZADD', KEYS[2], string.format('%.0f', now + ttl), ARGV[3])
-- The index lives as long as its longest-lived session, so an idle user leaves nothing behind.
if redis.call('PTTL', KEYS[2]) < ttl then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1

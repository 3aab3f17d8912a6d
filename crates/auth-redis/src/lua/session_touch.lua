-- Records a use of a live session: stores its new value and TTL, and keeps its index entry
-- (and the index) alive at least as long, atomically. A revoked or expired session stays gone.
-- KEYS[1] session key, KEYS[2] the user's index (sorted set scored by expiry, Unix ms)
-- ARGV[1] session JSON, ARGV[2] ttl in ms, ARGV[3] index member (token hash, hex)
-- Returns 1 when the session was live, 0 when there was none (nothing written).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
if not redis.call('SET', KEYS[1], ARGV[1], 'XX', 'PX', ARGV[2]) then
  return 0
end
local expiry = now + ttl
local score = redis.call('ZSCORE', KEYS[2], ARGV[3])
if (not score) or tonumber(score) < expiry then
  redis.call('ZADD', KEYS[2], string.format('%.0f', expiry), ARGV[3])
end
if redis.call('PTTL', KEYS[2]) < ttl then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1

-- Records a use of a live session: stores its new value and TTL, and keeps its index entries
-- (and the indexes) alive at least as long, atomically. A revoked or expired session stays gone.
-- KEYS[1] session key, KEYS[2] the user's index, KEYS[3] the user's id map (see
-- session_insert.lua); ARGV[1] session JSON, ARGV[2] ttl in ms, ARGV[3] token hash (hex),
-- ARGV[4] session id
-- Returns 1 when the session was live, 0 when there was none (nothing written).
local ttl = tonumber(ARGV[2])
if not redis.call('SET', KEYS[1], ARGV[1], 'XX', 'PX', ARGV[2]) then
  return 0
end
if not redis.call('ZSCORE', KEYS[2], ARGV[4]) then
  -- Indexed by an earlier version (or not at all): moves to the current form, as the newest.
  local t = redis.call('TIME')
  local position = tonumber(t[1]) * 1000000 + tonumber(t[2])
  redis.call('ZREM', KEYS[2], ARGV[3] .. ':' .. ARGV[4], ARGV[3])
  redis.call('ZADD', KEYS[2], string.format('%.0f', position), ARGV[4])
end
redis.call('HSET', KEYS[3], ARGV[4], ARGV[3])
for i = 2, 3 do
  if redis.call('PTTL', KEYS[i]) < ttl then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  end
end
return 1

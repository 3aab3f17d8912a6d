-- Redis Cluster, step 1 of a touch (the user's slot): keeps the index alive at least as long
-- as the session will be, and indexes the session if an earlier version indexed it in another
-- form. The session is written after this step (only if it is still there).
-- KEYS[1] the user's index, KEYS[2] the user's id map
-- ARGV[1] ttl in ms, ARGV[2] token hash (hex), ARGV[3] session id
local ttl = tonumber(ARGV[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  local t = redis.call('TIME')
  local position = tonumber(t[1]) * 1000000 + tonumber(t[2])
  redis.call('ZREM', KEYS[1], ARGV[2] .. ':' .. ARGV[3], ARGV[2])
  redis.call('ZADD', KEYS[1], string.format('%.0f', position), ARGV[3])
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
for i = 1, 2 do
  if redis.call('PTTL', KEYS[i]) < ttl then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
end
return 1

-- Stores a session and indexes it under its user, atomically; ends the user's sessions
-- nearest their end (the least recently used, or the oldest) beyond the cap.
-- KEYS[1] session key, KEYS[2] the user's index (sorted set of '{token hash}:{id}' scored by
-- expiry, Unix ms), KEYS[3] the user's id map (hash session id -> token hash)
-- ARGV[1] session JSON, ARGV[2] ttl in ms, ARGV[3] token hash (hex), ARGV[4] session id,
-- ARGV[5] most sessions per user (0: no cap), ARGV[6] session key prefix
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])

-- Each entry is a member once and pruned once; LIMIT bounds one call's share of the work.
local function forget(m)
  local sep = string.find(m, ':', 1, true)
  if sep then
    redis.call('HDEL', KEYS[3], string.sub(m, sep + 1))
  end
  redis.call('ZREM', KEYS[2], m)
  return sep and string.sub(m, 1, sep - 1) or m
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now),
    'LIMIT', 0, 256)) do
  forget(m)
end

local cap = tonumber(ARGV[5])
if cap > 0 then
  local excess = redis.call('ZCARD', KEYS[2]) - cap + 1
  if excess > 0 then
    for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, math.min(excess, 256) - 1)) do
      redis.call('DEL', ARGV[6] .. forget(m))
    end
  end
end

local member = ARGV[3] .. ':' .. ARGV[4]
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
-- The Redis clock scores entries, so app servers with skewed clocks agree on expiry.
redis.call('ZADD', KEYS[2], string.format('%.0f', now + ttl), member)
redis.call('HSET', KEYS[3], ARGV[4], ARGV[3])
-- The index lives as long as its longest-lived session, so an idle user leaves nothing behind.
for i = 2, 3 do
  if redis.call('PTTL', KEYS[i]) < ttl then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  end
end
return 1

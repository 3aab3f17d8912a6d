-- Stores a session and indexes it under its user, atomically, as the user's newest; ends the
-- user's oldest sessions beyond the cap. Bounded work whatever the size of the index.
-- KEYS[1] session key, KEYS[2] the user's index (sorted set of session ids scored by the
-- position: Redis clock at insert, Unix microseconds), KEYS[3] the user's id map (hash session
-- id -> token hash)
-- ARGV[1] session JSON, ARGV[2] ttl in ms, ARGV[3] token hash (hex), ARGV[4] session id,
-- ARGV[5] most sessions per user (0: no cap), ARGV[6] session key prefix
local t = redis.call('TIME')
local position = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[2])

-- An index member is a session id (the id map gives its token hash); members written by
-- earlier versions are '{token hash}:{session id}' or a bare token hash.
local function token_of(m)
  local sep = string.find(m, ':', 1, true)
  if sep then
    return string.sub(m, 1, sep - 1), string.sub(m, sep + 1)
  end
  if #m == 64 then
    return m, nil
  end
  return redis.call('HGET', KEYS[3], m), m
end
local function forget(m)
  local token, id = token_of(m)
  redis.call('ZREM', KEYS[2], m)
  if id then
    redis.call('HDEL', KEYS[3], id)
  end
  return token
end

-- Entries of ended sessions gather at the old end: each login drops a few of them, so the
-- index does not grow with logins even without a cap.
for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, 3)) do
  local token = token_of(m)
  if token and redis.call('EXISTS', ARGV[6] .. token) == 1 then
    break
  end
  forget(m)
end

local cap = tonumber(ARGV[5])
if cap > 0 then
  local excess = redis.call('ZCARD', KEYS[2]) - cap + 1
  if redis.call('ZSCORE', KEYS[2], ARGV[4]) then
    excess = excess - 1
  end
  if excess > 0 then
    -- LIMIT bounds one call's share of the work: an index left over a higher cap shrinks
    -- by 256 per login.
    for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, math.min(excess, 256) - 1)) do
      local token = forget(m)
      if token then
        redis.call('DEL', ARGV[6] .. token)
      end
    end
  end
end

redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], string.format('%.0f', position), ARGV[4])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[3])
-- The index lives as long as its longest-lived session, so an idle user leaves nothing behind.
for i = 2, 3 do
  if redis.call('PTTL', KEYS[i]) < ttl then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  end
end
return 1

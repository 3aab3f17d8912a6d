-- Redis Cluster, step 1 of an insert (the user's slot): indexes the session as the user's
-- newest and keeps the index alive as long as it; names the oldest entries beyond the cap
-- (at most 256), which the caller ends and then drops with cluster_index_drop.lua. The
-- session itself is stored after this step: a stored session is always indexed.
-- KEYS[1] the user's index, KEYS[2] the user's id map (see session_insert.lua)
-- ARGV[1] ttl in ms, ARGV[2] token hash (hex), ARGV[3] session id, ARGV[4] cap (0: none)
-- Returns {member 1, token hash 1 or '', member 2, ...} of the entries beyond the cap.
local t = redis.call('TIME')
local position = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], string.format('%.0f', position), ARGV[3])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
for i = 1, 2 do
  if redis.call('PTTL', KEYS[i]) < ttl then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
end
local out = {}
local cap = tonumber(ARGV[4])
if cap > 0 then
  local excess = redis.call('ZCARD', KEYS[1]) - cap
  if excess > 0 then
    for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, math.min(excess, 256) - 1)) do
      local sep = string.find(m, ':', 1, true)
      local token
      if sep then
        token = string.sub(m, 1, sep - 1)
      elseif #m == 64 then
        token = m
      else
        token = redis.call('HGET', KEYS[2], m)
      end
      out[#out + 1] = m
      out[#out + 1] = token or ''
    end
  end
end
return out

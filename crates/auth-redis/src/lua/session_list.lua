-- The user's live sessions as a flat array {token hash 1, json1, token hash 2, json2, ...};
-- prunes index entries whose session expired or vanished.
-- KEYS[1] the user's index, KEYS[2] the user's id map; ARGV[1] session key prefix
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local sep = string.find(m, ':', 1, true)
  local token = sep and string.sub(m, 1, sep - 1) or m
  local score = tonumber(redis.call('ZSCORE', KEYS[1], m))
  local v = nil
  if score > now then
    v = redis.call('GET', ARGV[1] .. token)
  end
  if v then
    out[#out + 1] = token
    out[#out + 1] = v
  else
    redis.call('ZREM', KEYS[1], m)
    if sep then
      redis.call('HDEL', KEYS[2], string.sub(m, sep + 1))
    end
  end
end
return out

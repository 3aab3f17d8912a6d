-- Redis Cluster (the user's slot): the index entries of one page, newest first, after the
-- cursor (see session_list.lua); the caller reads the sessions and drops the entries of
-- those that are gone. With ARGV[1] = 'oldest': the oldest ARGV[4] + 1 entries instead
-- (logout everywhere), without the one of session id ARGV[3].
-- KEYS[1] the user's index, KEYS[2] the user's id map; ARGV[1] 'page' or 'oldest',
-- ARGV[2] cursor position ('' for the first page), ARGV[3] cursor (or kept) session id,
-- ARGV[4] limit
-- Returns {next position or '', next member or '', member 1, token hash 1 or '', ...}; for
-- 'oldest' the first two are the entries left besides the kept one, and ''.
local limit = tonumber(ARGV[4])
local function token_of(m)
  local sep = string.find(m, ':', 1, true)
  if sep then
    return string.sub(m, 1, sep - 1), string.sub(m, sep + 1)
  end
  if #m == 64 then
    return m, nil
  end
  return redis.call('HGET', KEYS[2], m) or '', m
end
local out = {'', ''}
if ARGV[1] == 'oldest' then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, limit)) do
    local token, id = token_of(m)
    if ARGV[3] == '' or id ~= ARGV[3] then
      out[#out + 1] = m
      out[#out + 1] = token
    end
  end
  local left = redis.call('ZCARD', KEYS[1])
  if ARGV[3] ~= '' and redis.call('ZSCORE', KEYS[1], ARGV[3]) then
    left = left - 1
  end
  out[1] = tostring(left)
  return out
end
local start = 0
if ARGV[2] ~= '' then
  local added = redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[3])
  start = redis.call('ZREVRANK', KEYS[1], ARGV[3])
  if added == 1 then
    redis.call('ZREM', KEYS[1], ARGV[3])
  else
    start = start + 1
  end
end
local window = redis.call('ZREVRANGE', KEYS[1], start, start + limit, 'WITHSCORES')
if #window > 2 * limit then
  out[1] = window[2 * limit]
  out[2] = window[2 * limit - 1]
end
for i = 1, math.min(#window, 2 * limit), 2 do
  out[#out + 1] = window[i]
  out[#out + 1] = (token_of(window[i]))
end
return out

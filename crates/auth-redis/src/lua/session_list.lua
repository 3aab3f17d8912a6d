-- One page of the user's sessions, newest first (position descending, then id descending),
-- after the cursor; drops the index entries of ended sessions it meets. Reads at most
-- limit + 1 entries, whatever the size of the index.
-- KEYS[1] the user's index, KEYS[2] the user's id map (see session_insert.lua);
-- ARGV[1] session key prefix, ARGV[2] cursor position ('' for the first page),
-- ARGV[3] cursor session id, ARGV[4] limit
-- Returns {next position or '', next member or '', token hash 1, json 1, token hash 2, ...}.
local limit = tonumber(ARGV[4])
local start = 0
if ARGV[2] ~= '' then
  -- The cursor's entry may have gone since: put a stand-in at its place to learn its rank
  -- (O(log n)), and take it away again; nobody sees it, the script is atomic.
  local added = redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[3])
  start = redis.call('ZREVRANK', KEYS[1], ARGV[3])
  if added == 1 then
    redis.call('ZREM', KEYS[1], ARGV[3])
  else
    start = start + 1
  end
end
local window = redis.call('ZREVRANGE', KEYS[1], start, start + limit, 'WITHSCORES')
local out = {'', ''}
if #window > 2 * limit then
  out[1] = window[2 * limit]
  out[2] = window[2 * limit - 1]
end
for i = 1, math.min(#window, 2 * limit), 2 do
  local m = window[i]
  local sep = string.find(m, ':', 1, true)
  local token, id
  if sep then
    token, id = string.sub(m, 1, sep - 1), string.sub(m, sep + 1)
  elseif #m == 64 then
    token = m
  else
    token, id = redis.call('HGET', KEYS[2], m), m
  end
  local v = token and redis.call('GET', ARGV[1] .. token)
  if v then
    out[#out + 1] = token
    out[#out + 1] = v
  else
    redis.call('ZREM', KEYS[1], m)
    if id then
      redis.call('HDEL', KEYS[2], id)
    end
  end
end
return out

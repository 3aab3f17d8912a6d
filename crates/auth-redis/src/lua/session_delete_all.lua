-- Revokes every session in the user's index except the one with id ARGV[3]; returns how many.
-- KEYS[1] the user's index, KEYS[2] the user's id map; ARGV[1] session key prefix,
-- ARGV[2] user id, ARGV[3] kept id or ''
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local sep = string.find(m, ':', 1, true)
  local token = sep and string.sub(m, 1, sep - 1) or m
  local key = ARGV[1] .. token
  local v = redis.call('GET', key)
  local drop = false
  if not v then
    drop = true
  else
    local ok, s = pcall(cjson.decode, v)
    if not ok or type(s) ~= 'table' or type(s.user) ~= 'table' then
      -- Unreadable but indexed under this user: revoking is the safe side.
      redis.call('DEL', key)
      drop = true
      n = n + 1
    elseif s.user.id ~= ARGV[2] then
      -- Never revoke another user's session, whatever the index says.
      drop = true
    elseif ARGV[3] == '' or s.id ~= ARGV[3] then
      redis.call('DEL', key)
      drop = true
      n = n + 1
    end
  end
  if drop then
    redis.call('ZREM', KEYS[1], m)
    if sep then
      redis.call('HDEL', KEYS[2], string.sub(m, sep + 1))
    end
  end
end
return n

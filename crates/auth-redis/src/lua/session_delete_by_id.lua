-- Revokes the session with this public id, looked up in this user's index only, so another
-- user's session is never found; 1 if one was revoked.
-- KEYS[1] the user's index; ARGV[1] session key prefix, ARGV[2] session id, ARGV[3] user id
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local v = redis.call('GET', ARGV[1] .. m)
  if not v then
    redis.call('ZREM', KEYS[1], m)
  else
    local ok, s = pcall(cjson.decode, v)
    if ok and type(s) == 'table' and s.id == ARGV[2]
        and type(s.user) == 'table' and s.user.id == ARGV[3] then
      redis.call('DEL', ARGV[1] .. m)
      redis.call('ZREM', KEYS[1], m)
      return 1
    end
  end
end
return 0

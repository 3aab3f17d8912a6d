-- Revokes the session with this public id, looked up in this user's id map only, so another
-- user's session is never found; 1 if one was revoked. Reads one session, whatever the number
-- of the user's sessions.
-- KEYS[1] the user's index, KEYS[2] the user's id map; ARGV[1] session key prefix,
-- ARGV[2] session id, ARGV[3] user id
local token = redis.call('HGET', KEYS[2], ARGV[2])
if not token then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[2], token .. ':' .. ARGV[2])
local v = redis.call('GET', ARGV[1] .. token)
if not v then
  return 0
end
local ok, s = pcall(cjson.decode, v)
if ok and type(s) == 'table' and s.id == ARGV[2]
    and type(s.user) == 'table' and s.user.id == ARGV[3] then
  redis.call('DEL', ARGV[1] .. token)
  return 1
end
return 0

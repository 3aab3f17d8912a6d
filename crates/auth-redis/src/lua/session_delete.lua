-- Revokes the session with this token hash; 1 if there was one.
-- KEYS[1] session key; ARGV[1] user index key prefix, ARGV[2] token hash (hex),
-- ARGV[3] user id map key prefix
local v = redis.call('GET', KEYS[1])
if not v then
  return 0
end
redis.call('DEL', KEYS[1])
-- A record that does not decode is still revoked; its index entry is dropped when a listing,
-- a login or a logout everywhere meets it.
local ok, s = pcall(cjson.decode, v)
if ok and type(s) == 'table' and type(s.user) == 'table' and type(s.user.id) == 'string' then
  if type(s.id) == 'string' then
    redis.call('ZREM', ARGV[1] .. s.user.id, s.id, ARGV[2] .. ':' .. s.id)
    redis.call('HDEL', ARGV[3] .. s.user.id, s.id)
  end
  redis.call('ZREM', ARGV[1] .. s.user.id, ARGV[2])
end
return 1

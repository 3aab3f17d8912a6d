-- Redis Cluster (the session's slot): ends the session if it belongs to user ARGV[1] (and,
-- when ARGV[2] is not '', has that id); an unreadable record is ended too when ARGV[3] is
-- '1' (logout everywhere: revoking is the safe side). Returns 1 if it was ended.
-- KEYS[1] the session key
local v = redis.call('GET', KEYS[1])
if not v then
  return 0
end
local ok, s = pcall(cjson.decode, v)
if not ok or type(s) ~= 'table' or type(s.user) ~= 'table' then
  if ARGV[3] == '1' then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
end
if s.user.id == ARGV[1] and (ARGV[2] == '' or s.id == ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0

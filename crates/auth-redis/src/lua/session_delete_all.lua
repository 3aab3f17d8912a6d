-- Revokes the user's oldest sessions, at most ARGV[4] + 1 index entries per call, except the
-- one with id ARGV[3]; the caller repeats it until nothing is left, so Redis serves other
-- clients between the calls however many sessions the user has.
-- KEYS[1] the user's index, KEYS[2] the user's id map; ARGV[1] session key prefix,
-- ARGV[2] user id, ARGV[3] kept id or '', ARGV[4] entries per call
-- Returns {sessions revoked, index entries removed, index entries left besides the kept one}.
local n, removed = 0, 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[4]))) do
  local sep = string.find(m, ':', 1, true)
  local token, id
  if sep then
    token, id = string.sub(m, 1, sep - 1), string.sub(m, sep + 1)
  elseif #m == 64 then
    token = m
  else
    token, id = redis.call('HGET', KEYS[2], m), m
  end
  if ARGV[3] == '' or id ~= ARGV[3] then
    local v = token and redis.call('GET', ARGV[1] .. token)
    if v then
      local ok, s = pcall(cjson.decode, v)
      if not ok or type(s) ~= 'table' or type(s.user) ~= 'table' then
        -- Unreadable but indexed under this user: revoking is the safe side.
        redis.call('DEL', ARGV[1] .. token)
        n = n + 1
      elseif s.user.id == ARGV[2] then
        redis.call('DEL', ARGV[1] .. token)
        n = n + 1
      end
      -- Never revoke another user's session, whatever the index says.
    end
    redis.call('ZREM', KEYS[1], m)
    if id then
      redis.call('HDEL', KEYS[2], id)
    end
    removed = removed + 1
  end
end
local left = redis.call('ZCARD', KEYS[1])
if ARGV[3] ~= '' and redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  left = left - 1
end
return {n, removed, left}

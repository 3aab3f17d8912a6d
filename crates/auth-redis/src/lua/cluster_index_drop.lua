-- Redis Cluster (the user's slot): drops these entries from the user's index and id map,
-- after their sessions were ended (or found gone).
-- KEYS[1] the user's index, KEYS[2] the user's id map; ARGV the members
-- Returns how many entries are left.
for _, m in ipairs(ARGV) do
  redis.call('ZREM', KEYS[1], m)
  local sep = string.find(m, ':', 1, true)
  if sep then
    redis.call('HDEL', KEYS[2], string.sub(m, sep + 1))
  elseif #m ~= 64 then
    redis.call('HDEL', KEYS[2], m)
  end
end
return redis.call('ZCARD', KEYS[1])

-- Redis Cluster (the session's slot): ends the session and returns its record (false when
-- there was none), so that the caller can drop its index entry in the user's slot.
-- KEYS[1] the session key
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('DEL', KEYS[1])
end
return v

-- Starts a cooldown of ARGV[1] ms unless one runs; -1 when started, else the ms left.
-- KEYS[1] the cooldown key
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return -1
end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  -- A cooldown key without expiry would block mail to this address for good.
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return tonumber(ARGV[1])
end
return left

-- Records a sighting of a device of an account; answers 0 (known), 1 (new), 2 (the first).
-- KEYS[1] the account's devices: sorted set of device key (hex) scored by last sighting (Unix µs)
-- ARGV[1] device key (hex), ARGV[2] sighting (Unix µs), ARGV[3] devices kept, ARGV[4] TTL (ms)
local before = redis.call('ZCARD', KEYS[1])
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
if known and tonumber(known) >= tonumber(ARGV[2]) then
  -- A later sighting was recorded already.
else
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
local keep = tonumber(ARGV[3])
if redis.call('ZCARD', KEYS[1]) > keep then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(keep + 1))
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if known then
  return 0
elseif before == 0 then
  return 2
end
return 1

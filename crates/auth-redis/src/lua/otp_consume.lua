-- Deletes the code if, and only if, its MAC is ARGV[1]; 1 if it did.
-- KEYS[1] the code's hash
if redis.call('HGET', KEYS[1], 'mac') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0

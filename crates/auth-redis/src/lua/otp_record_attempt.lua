-- Counts one attempt against the code; nil when there is none, else {mac, exp, attempts}.
-- KEYS[1] the code's hash
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
local r = redis.call('HMGET', KEYS[1], 'mac', 'exp')
return { r[1], r[2], n }

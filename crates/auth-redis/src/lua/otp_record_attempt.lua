-- Counts one attempt against the codes; nil when there are none, else {codes JSON, attempts}.
-- KEYS[1] the codes' hash
local raw = redis.call('HGET', KEYS[1], 'codes')
if not raw then
  return false
end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return { raw, n }

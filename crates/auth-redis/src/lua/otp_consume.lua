-- Deletes the code whose MAC is ARGV[1], leaving the others; 1 if there was one.
-- KEYS[1] the codes' hash
local raw = redis.call('HGET', KEYS[1], 'codes')
if not raw then
  return 0
end
local codes = cjson.decode(raw)
for i, c in ipairs(codes) do
  if c.mac == ARGV[1] then
    table.remove(codes, i)
    if #codes == 0 then
      redis.call('DEL', KEYS[1])
    else
      redis.call('HSET', KEYS[1], 'codes', cjson.encode(codes))
    end
    return 1
  end
end
return 0

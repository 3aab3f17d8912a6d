-- Adds a code, keeps the first code and the ARGV[2] - 1 newest (a flood of new codes cannot
-- push out the first), starts the shared attempt counter over and keeps the entry for ARGV[3]
-- ms.
-- KEYS[1] the codes' hash: {codes: JSON array oldest first of {mac, exp, pw?}, attempts: n}
-- ARGV[1] the new code as a JSON object
local raw = redis.call('HGET', KEYS[1], 'codes')
local codes = {}
if raw then
  codes = cjson.decode(raw)
end
table.insert(codes, cjson.decode(ARGV[1]))
local keep = math.max(tonumber(ARGV[2]), 1)
while #codes > keep do
  if keep >= 2 then
    table.remove(codes, 2)
  else
    table.remove(codes, 1)
  end
end
redis.call('HSET', KEYS[1], 'codes', cjson.encode(codes), 'attempts', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1

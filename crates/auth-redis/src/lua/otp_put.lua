-- Adds a code, keeps the ARGV[2] newest, starts the shared attempt counter over and keeps
-- the entry for ARGV[3] ms.
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
  table.remove(codes, 1)
end
redis.call('HSET', KEYS[1], 'codes', cjson.encode(codes), 'attempts', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1

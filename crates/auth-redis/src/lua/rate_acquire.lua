-- GCRA: spends one unit of a budget. -1 when allowed, else the microseconds until one unit
-- is back. The clock is Redis' own, so every instance of the service agrees on "now".
-- KEYS[1] the budget key (holds the theoretical arrival time, microseconds since the epoch)
-- ARGV[1] emission interval T (us), ARGV[2] period (us)
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - period
if allow_at > now then
  return math.ceil(allow_at - now)
end
-- The key lives exactly as long as the budget needs to refill.
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return -1

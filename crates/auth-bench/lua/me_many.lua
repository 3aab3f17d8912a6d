-- auth-bench: GET /me with a bearer token drawn at random from a file of tokens, one per line,
-- so the lookups spread over the whole session set (scenario 8, the cost curves).
-- Environment: BENCH_TOKENS_FILE, BENCH_OUT (JSON report path).
local tokens = {}

function init(args)
  for line in io.lines(os.getenv("BENCH_TOKENS_FILE")) do
    tokens[#tokens + 1] = "Bearer " .. line
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
  local headers = { ["Authorization"] = tokens[math.random(#tokens)] }
  return wrk.format("GET", nil, headers, nil)
end

local report = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
function done(summary, latency, requests)
  report.write(os.getenv("BENCH_OUT"), summary, latency, {}, 0)
end

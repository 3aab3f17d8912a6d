-- auth-bench: POST /login cycling through distinct verified users bench-<i>@example.com.
-- Environment: BENCH_USERS, BENCH_PASSWORD, BENCH_THREADS, BENCH_OUT.
local users = tonumber(os.getenv("BENCH_USERS") or "1")
local password = os.getenv("BENCH_PASSWORD") or ""
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local headers = { ["Content-Type"] = "application/json" }

local threads = {}
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  statuses = {}
  missing_retry_after = 0
end

function request()
  local i = (counter * nthreads + tid) % users
  counter = counter + 1
  local body = '{"email":"bench-' .. i .. '@example.com","password":"' .. password .. '"}'
  return wrk.format("POST", "/login", headers, body)
end

function response(status, hdrs, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 503 and hdrs["Retry-After"] == nil and hdrs["retry-after"] == nil then
    missing_retry_after = missing_retry_after + 1
  end
end

local report = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
function done(summary, latency, requests)
  local codes = {}
  local missing = 0
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for k, v in pairs(s) do
        codes[k] = (codes[k] or 0) + v
      end
    end
    missing = missing + (t:get("missing_retry_after") or 0)
  end
  report.write(os.getenv("BENCH_OUT"), summary, latency, codes, missing)
end

-- auth-bench: POST /signup, every request with an address no other request used
-- (su-<run>-<thread>-<n>@example.com), so each one creates an account and mails its code.
-- Environment: BENCH_RUN (different for every run against one database), BENCH_PASSWORD,
-- BENCH_OUT.
local run = os.getenv("BENCH_RUN") or "run"
local password = os.getenv("BENCH_PASSWORD") or ""
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
end

function request()
  counter = counter + 1
  local email = "su-" .. run .. "-" .. tid .. "-" .. counter .. "@example.com"
  local body = '{"email":"' .. email .. '","password":"' .. password .. '"}'
  return wrk.format("POST", "/signup", headers, body)
end

function response(status, hdrs, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local report = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
function done(summary, latency, requests)
  local codes = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for k, v in pairs(s) do
        codes[k] = (codes[k] or 0) + v
      end
    end
  end
  report.write(os.getenv("BENCH_OUT"), summary, latency, codes, 0)
end

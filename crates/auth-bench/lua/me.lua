-- auth-bench: GET with a bearer token (static request: no per-request Lua, so wrk stays cheap).
-- Environment: BENCH_TOKEN, BENCH_OUT (JSON report path), BENCH_DELAY_MS (optional pacing).
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

local report = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
function done(summary, latency, requests)
  report.write(os.getenv("BENCH_OUT"), summary, latency, {}, 0)
end

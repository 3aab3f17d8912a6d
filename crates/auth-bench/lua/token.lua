-- auth-bench: POST /token with a bearer session (static request: no per-request Lua).
-- Environment: BENCH_TOKEN (the session), BENCH_OUT (JSON report path).
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")

local report = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
function done(summary, latency, requests)
  report.write(os.getenv("BENCH_OUT"), summary, latency, {}, 0)
end

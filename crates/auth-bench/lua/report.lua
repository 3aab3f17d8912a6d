-- Shared by the auth-bench scripts: writes wrk's summary as one JSON object.
local M = {}

function M.write(path, summary, latency, codes, missing_retry_after)
  local parts = {}
  for k, v in pairs(codes) do
    table.insert(parts, string.format('"%s":%d', tostring(k), v))
  end
  local e = summary.errors
  local f = assert(io.open(path, "w"))
  f:write(string.format(
    '{"duration_us":%.0f,"requests":%.0f,"bytes":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"latency_us":{"p50":%.0f,"p90":%.0f,"p99":%.0f,"max":%.0f,"mean":%.1f},' ..
    '"statuses":{%s},"missing_retry_after":%.0f}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    table.concat(parts, ","), missing_retry_after))
  f:close()
end

return M

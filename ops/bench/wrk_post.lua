-- wrk script for compare.py: POST one JSON body (read from the file named
-- after `--`) with a bearer key, then print one JSON line of results that
-- compare.py parses (wrk's own text report is for people, not programs).
--   wrk -t1 -c16 -d5s --latency -s ops/bench/wrk_post.lua URL -- BODY_FILE [KEY]

local request_bytes

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local body = file:read("*a")
  file:close()
  local headers = {["Content-Type"] = "application/json"}
  if args[2] and args[2] ~= "" then
    headers["Authorization"] = "Bearer " .. args[2]
  end
  -- Built once per thread: formatting per request would cost wrk, not the server.
  request_bytes = wrk.format("POST", nil, headers, body)
end

function request()
  return request_bytes
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\n{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end

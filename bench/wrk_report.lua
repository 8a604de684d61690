-- wrk script for bench/bench_pages.py: signed-in sessions in rotation, non-200 replies
-- counted, and a machine-readable report (wrk itself prints no p95).
--
--   wrk -t 2 -c 50 -d 20s -s bench/wrk_report.lua http://127.0.0.1:PORT/path -- COOKIE...
--
-- Each argument after "--" is one Cookie header value (one signed-in session); the
-- requests cycle through them, one session per request, each wrk thread starting at a
-- different place in the list. No argument: no Cookie header (the minimal page).
-- done() prints lines starting with "bench_pages:" that bench_pages.py parses; latencies
-- are in milliseconds, the duration in seconds.

local threads = {}

function setup(thread)
  thread:set("thread_number", #threads)
  table.insert(threads, thread)
end

function init(args)
  non_200 = 0
  requests_built = {}
  for _, cookie in ipairs(args) do
    -- wrk.format uses the table given instead of wrk.headers (the -H options): merge them.
    local headers = { Cookie = cookie }
    for name, value in pairs(wrk.headers) do
      headers[name] = value
    end
    table.insert(requests_built, wrk.format(nil, nil, headers))
  end
  if #requests_built == 0 then
    table.insert(requests_built, wrk.format())
  end
  -- Pre-built requests (wrk's advice: building one per request costs the client CPU).
  -- Each thread starts at a different session so that the threads are not in step.
  next_request = (thread_number * 7) % #requests_built
end

function request()
  next_request = next_request % #requests_built + 1
  return requests_built[next_request]
end

-- Defined, so wrk hands every reply here: a redirect to the sign-in page (302) is not a
-- 4xx/5xx and wrk would not count it as an error on its own.
function response(status, headers, body)
  if status ~= 200 then
    non_200 = non_200 + 1
  end
end

function done(summary, latency, requests)
  local not_ok = 0
  for _, thread in ipairs(threads) do
    not_ok = not_ok + (thread:get("non_200") or 0)
  end
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  io.write(string.format("bench_pages: requests %d\n", summary.requests))
  io.write(string.format("bench_pages: duration_s %.6f\n", summary.duration / 1e6))
  io.write(string.format("bench_pages: p50_ms %.3f\n", latency:percentile(50) / 1000))
  io.write(string.format("bench_pages: p95_ms %.3f\n", latency:percentile(95) / 1000))
  io.write(string.format("bench_pages: non_200 %d\n", not_ok))
  io.write(string.format("bench_pages: socket_errors %d\n", socket_errors))
  io.write(string.format(
    "bench_pages: socket_detail connect=%d read=%d write=%d timeout=%d\n",
    e.connect, e.read, e.write, e.timeout
  ))
  io.write(string.format("bench_pages: errors %d\n", not_ok + socket_errors))
end

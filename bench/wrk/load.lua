-- wrk script for ./bench/run ruleset (bench/ruleset_bench.py sets these variables):
--   BENCH_METHOD   GET or POST
--   BENCH_AUTH     value of the Authorization header (an SDK key / API token)
--   BENCH_INM      If-None-Match value, or empty (to get 304s)
--   BENCH_BODIES   file with one JSON request body per line, sent in turn; or empty
-- Counts responses by status code in every thread and prints, at the end, one line
-- "BENCH_JSON {...}" with the counts, errors and latency percentiles (microseconds).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local bodies = {}
local fixed = nil
local n = 0
statuses = {}

function init(args)
  wrk.method = os.getenv("BENCH_METHOD") or "GET"
  wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
  wrk.headers["Accept"] = "application/json"
  local inm = os.getenv("BENCH_INM") or ""
  if inm ~= "" then
    wrk.headers["If-None-Match"] = inm
  end
  local file = os.getenv("BENCH_BODIES") or ""
  if file ~= "" then
    wrk.headers["Content-Type"] = "application/json"
    for line in io.lines(file) do
      bodies[#bodies + 1] = wrk.format(nil, nil, nil, line)
    end
  else
    fixed = wrk.format()
  end
end

function request()
  if fixed then
    return fixed
  end
  n = n + 1
  return bodies[(n % #bodies) + 1]
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    local t = thread:get("statuses")
    for k, v in pairs(t) do
      counts[k] = (counts[k] or 0) + v
    end
  end
  local parts = {}
  for k, v in pairs(counts) do
    parts[#parts + 1] = string.format('"%s": %d', k, v)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p95": %d, "p99": %d, "max": %d, "mean": %.1f}, ' ..
    '"statuses": {%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max,
    latency.mean, table.concat(parts, ", ")))
end

-- wrk script for bench/api.py: the method, the body and a bearer token per request, and the
-- figures as one JSON line at the end.
--
--   wrk ... -s bench/api.lua URL -- <method> <tokens file> [body]
--
-- Tokens are used in turn (each wrk thread starts at its own offset), so a POST load spreads
-- over many owners: one owner's submit rate and cap on active jobs are not what is measured.

local method, tokens, body = "GET", {}, nil
local next_token = 1

function setup(thread)
  thread:set("thread_offset", thread_count or 0)
  thread_count = (thread_count or 0) + 1
end

function init(args)
  method = args[1] or "GET"
  if args[2] and args[2] ~= "-" then
    for line in io.lines(args[2]) do
      if #line > 0 then tokens[#tokens + 1] = line end
    end
  end
  body = args[3]
  next_token = ((thread_offset or 0) * 37) % math.max(#tokens, 1) + 1
end

function request()
  local headers = {}
  if #tokens > 0 then
    headers["Authorization"] = "Bearer " .. tokens[next_token]
    next_token = next_token % #tokens + 1
  end
  if body then headers["Content-Type"] = "text/plain" end
  return wrk.format(method, nil, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f, '
      .. '"status_errors": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end

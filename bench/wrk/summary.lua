-- Shared setup() and done(): one line for bench/load.sh,
--   "requests duration_us non2xx socket_errors p50_us p99_us units unexpected"
-- A script may count, in globals of its thread's Lua state, `bench_units` (completed
-- units of work: status-201 answers, finished sign-ins) and `bench_unexpected` (answers
-- that are not the expected next step, whatever their status). done() runs in wrk's main
-- Lua state, after the threads have stopped, and reads them with thread:get(); -1 means
-- "not counted". When a script counts `bench_unexpected`, that count replaces wrk's own
-- error count (status >= 400) in the non2xx field: it includes those answers already, and
-- also the 2xx/3xx ones that were not the expected step.
-- dofile() this last: it wraps the script's own setup(), if any.
local script_setup = setup
local bench_threads = {}

function setup(thread)
  table.insert(bench_threads, thread)
  if script_setup then script_setup(thread) end
end

local function sum(name)
  local total, seen = 0, false
  for _, thread in ipairs(bench_threads) do
    local value = thread:get(name)
    if value ~= nil then total, seen = total + value, true end
  end
  if seen then return total end
  return -1
end

function done(summary, latency, requests)
  local e = summary.errors
  local units, unexpected = sum("bench_units"), sum("bench_unexpected")
  local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  out:write(string.format("%d %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration, (unexpected >= 0 and unexpected or e.status),
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), units, unexpected))
  out:close()
end

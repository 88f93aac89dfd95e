-- One fixed request, described by environment variables, and a machine-readable summary.
--   BENCH_METHOD, BENCH_BODY, BENCH_CONTENT_TYPE, BENCH_AUTHORIZATION (the path is the URL's)
--   BENCH_COUNT_STATUS: optional; count the answers with this status (e.g. 201, the posts
--     the server acknowledged) into `bench_units` (see summary.lua). Only then is there a
--     response() callback: without one wrk does not hand answers to Lua at all.
--   BENCH_OUT: file that receives the summary line (summary.lua)
wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.body = os.getenv("BENCH_BODY")
local content_type = os.getenv("BENCH_CONTENT_TYPE")
if content_type and content_type ~= "" then wrk.headers["Content-Type"] = content_type end
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization and authorization ~= "" then wrk.headers["Authorization"] = authorization end

local count_status = tonumber(os.getenv("BENCH_COUNT_STATUS") or "")
if count_status then
  function init(args)
    bench_units = 0
  end

  function response(status, headers, body)
    if status == count_status then bench_units = bench_units + 1 end
  end
end

dofile(os.getenv("BENCH_LUA_DIR") .. "/summary.lua")

-- One fixed request, described by environment variables, and a machine-readable summary.
--   BENCH_METHOD, BENCH_BODY, BENCH_CONTENT_TYPE, BENCH_AUTHORIZATION (the path is the URL's)
--   BENCH_OUT: file that receives "requests duration_us non2xx socket_errors p50_us p99_us"
wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.body = os.getenv("BENCH_BODY")
local content_type = os.getenv("BENCH_CONTENT_TYPE")
if content_type and content_type ~= "" then wrk.headers["Content-Type"] = content_type end
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization and authorization ~= "" then wrk.headers["Authorization"] = authorization end

dofile(os.getenv("BENCH_LUA_DIR") .. "/summary.lua")

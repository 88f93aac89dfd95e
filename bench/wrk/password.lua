-- The password grant under load, for many accounts. The server checks one account's
-- password one attempt at a time (so that parallel guesses cannot outrun the lockout),
-- so a load of one account would measure one core; a login storm comes from many users.
-- bench/load.sh signs up BENCH_USERS users, bench0@example.com .. bench{N-1}@example.com,
-- all with BENCH_PASSWORD, and this script takes them in turn.
--   BENCH_USERS, BENCH_PASSWORD, BENCH_AUTHORIZATION: the client's Basic credentials
local users = tonumber(os.getenv("BENCH_USERS") or "1")
local password = os.getenv("BENCH_PASSWORD")
local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = os.getenv("BENCH_AUTHORIZATION"),
}
local next_user = 0

function request()
  local body = "grant_type=password&username=bench" .. next_user .. "%40example.com&password="
    .. password
  next_user = (next_user + 1) % users
  return wrk.format("POST", "/oauth/token", headers, body)
end

dofile(os.getenv("BENCH_LUA_DIR") .. "/summary.lua")

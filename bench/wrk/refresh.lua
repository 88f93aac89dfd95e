-- The refresh grant under load. Refresh tokens rotate: each use returns a successor and
-- the used one is dead (presenting it again would revoke the whole login). So every
-- request must carry a token no other request has used, and wrk's fixed-request mode
-- cannot do it.
--
-- Each wrk thread keeps a queue of live refresh tokens: request() takes one, response()
-- puts back the successor from the answer. bench/load.sh seeds BENCH_TOKENS with two
-- logins (password grants) per connection, so a connection never waits for a token; the
-- Lua work per request is one string match.
--   BENCH_TOKENS: file, one live refresh token per line
--   BENCH_THREADS: wrk's -t, to split the file between threads
--   BENCH_AUTHORIZATION: the client's Basic credentials
local counter = 0

function setup(thread)
  thread:set("thread_id", counter)
  counter = counter + 1
end

function init(args)
  queue = {}
  local threads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local i = 0
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    if line ~= "" then
      if i % threads == thread_id then table.insert(queue, line) end
      i = i + 1
    end
  end
  headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = os.getenv("BENCH_AUTHORIZATION"),
  }
end

function request()
  -- An empty queue means answers were lost (non-2xx); the request then fails visibly
  -- with invalid_grant and shows up in the non-2xx count.
  local token = table.remove(queue, 1) or "exhausted"
  return wrk.format("POST", "/oauth/token", headers,
    "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then table.insert(queue, token) end
end

dofile(os.getenv("BENCH_LUA_DIR") .. "/summary.lua")

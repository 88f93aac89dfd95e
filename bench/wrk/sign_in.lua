-- A whole browser sign-in per flow, through the real pages (authorization code + PKCE):
--
--   1. GET  /oauth/authorize?...        -> 303 Location: /login?request=ID, Set-Cookie: auth_browser=B
--   2. GET  /login?request=ID (cookie B) -> 200 the form: hidden csrf and request=ID
--   3. POST /login (cookie B; csrf, request, username, password)
--                                        -> 303 Location: REDIRECT_URI?code=C&state=..&iss=..
--   4. POST /oauth/token grant_type=authorization_code, code=C, redirect_uri, code_verifier
--                                        -> 200 {"access_token", ...}
--
-- The unit is the completed sign-in: a step-4 answer with status 200 and an access token.
-- This script counts them exactly (`bench_units`, summed over the threads by
-- summary.lua's done()); bench/load.sh divides that count, not wrk's request count, by
-- the duration. A flow is 4 requests, so requests = 4 x sign-ins + the steps of the flows
-- that the end of the run interrupted (at most 3 per connection).
--
-- wrk's Lua state is per thread and shared by its connections, and response() does not
-- say which connection or request it answers. So every step is derived from the answer
-- alone, and the next request goes into a per-thread queue that request() serves first
-- (like refresh.lua); with an empty queue, request() starts a new flow. A connection's
-- next request is made right after its answer has been handled, so each connection drives
-- about one flow at a time. The only piece of state that is not in the answer it is needed
-- for is the browser cookie (set in step 1, needed in step 3, not repeated in step 2's
-- answer): it is kept in `jar`, keyed by the pending request id that steps 1 and 2 both
-- carry, and dropped at step 3. Each flow is a new browser (no cookie at step 1), so every
-- flow really signs in (no single sign-on).
--
-- Any answer that is not the expected next step (a 4xx/5xx, the form shown again with an
-- error, a consent page, an error redirect, a token answer without a token) is counted in
-- `bench_unexpected`, which bench/load.sh reports in the non-2xx column, and its flow
-- ends there (the connection starts a new one).
--
--   BENCH_CLIENT_ID: a public client with the authorization_code grant, --trusted (no consent)
--   BENCH_REDIRECT_URI: one of its registered redirect URIs (nothing needs to listen there)
--   BENCH_CODE_VERIFIER, BENCH_CODE_CHALLENGE: a fixed PKCE pair (S256)
--   BENCH_SCOPE: the scopes asked for
--   BENCH_USERS, BENCH_PASSWORD: the accounts bench0..bench{N-1}@example.com, taken in turn
--   BENCH_THREADS: wrk's -t (each thread starts at another account)
local counter = 0

function setup(thread)
  thread:set("thread_id", counter)
  counter = counter + 1
end

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function urldecode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function html_unescape(s)
  return (s:gsub("&#[xX](%x+);", function(h) return string.char(tonumber(h, 16)) end)
    :gsub("&#(%d+);", function(d) return string.char(tonumber(d)) end)
    :gsub("&quot;", '"'):gsub("&lt;", "<"):gsub("&gt;", ">"):gsub("&amp;", "&"))
end

-- The path and query of a Location, which may be absolute (the issuer's origin: the
-- load balancer's, say) or relative; wrk sends every request to the URL it was given.
local function path_of(url)
  return (url:gsub("^https?://[^/]+", ""))
end

local function header(headers, name)
  for key, value in pairs(headers) do
    if key:lower() == name then return value end
  end
  return nil
end

function init(args)
  bench_units = 0
  bench_unexpected = 0
  queue = {}
  jar = {}
  users = tonumber(os.getenv("BENCH_USERS") or "1")
  next_user = thread_id % users
  password = urlencode(os.getenv("BENCH_PASSWORD"))
  client_id = os.getenv("BENCH_CLIENT_ID")
  redirect_uri = os.getenv("BENCH_REDIRECT_URI")
  verifier = os.getenv("BENCH_CODE_VERIFIER")
  authorize = wrk.format("GET", "/oauth/authorize?response_type=code&client_id="
    .. urlencode(client_id) .. "&redirect_uri=" .. urlencode(redirect_uri)
    .. "&scope=" .. urlencode(os.getenv("BENCH_SCOPE")) .. "&state=bench"
    .. "&code_challenge=" .. os.getenv("BENCH_CODE_CHALLENGE") .. "&code_challenge_method=S256")
  form = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  token_prefix = "grant_type=authorization_code&client_id=" .. urlencode(client_id)
    .. "&redirect_uri=" .. urlencode(redirect_uri) .. "&code_verifier=" .. urlencode(verifier)
    .. "&code="
end

function request()
  return table.remove(queue, 1) or authorize
end

-- Step 1 answered: follow to the login page with the new browser cookie.
local function to_login(location, set_cookie)
  local id = location:match("/login%?.*request=([^&]+)") or location:match("/login%?request=([^&]+)")
  local cookie = set_cookie and set_cookie:match("(auth_browser=[^;]+)")
  if not (id and cookie) then return false end
  jar[urldecode(id)] = cookie
  table.insert(queue, wrk.format("GET", path_of(location), { ["Cookie"] = cookie }))
  return true
end

-- Step 3 answered: exchange the code.
local function to_token(location)
  if location:sub(1, #redirect_uri + 1) ~= redirect_uri .. "?" then return false end
  local code = location:match("[?&]code=([^&]+)")
  if not code then return false end -- ?error=...
  table.insert(queue, wrk.format("POST", "/oauth/token", form, token_prefix .. code))
  return true
end

-- Step 2 answered: post the form with the browser cookie kept at step 1.
local function post_login(body)
  if body:find('id="form-error"', 1, true) then return false end -- a failed sign-in
  local csrf = body:match('name="csrf" value="([^"]*)"')
  local id = body:match('name="request" value="([^"]*)"')
  if not (csrf and id) then return false end
  id = html_unescape(id)
  local cookie = jar[id]
  if not cookie then return false end
  jar[id] = nil
  local username = "bench" .. next_user .. "%40example.com"
  next_user = (next_user + 1) % users
  table.insert(queue, wrk.format("POST", "/login",
    { ["Content-Type"] = "application/x-www-form-urlencoded", ["Cookie"] = cookie },
    "csrf=" .. urlencode(html_unescape(csrf)) .. "&request=" .. urlencode(id)
      .. "&username=" .. username .. "&password=" .. password))
  return true
end

function response(status, headers, body)
  local ok = false
  if status == 302 or status == 303 then
    local location = header(headers, "location") or ""
    ok = to_token(location) or to_login(location, header(headers, "set-cookie"))
  elseif status == 200 then
    if body:find('"access_token":"', 1, true) then
      bench_units = bench_units + 1
      ok = true
    else
      ok = post_login(body)
    end
  end
  if not ok then bench_unexpected = bench_unexpected + 1 end
end

dofile(os.getenv("BENCH_LUA_DIR") .. "/summary.lua")

#!/usr/bin/env bash
# Load benchmark of both servers, with the targets of issue 14 (see BENCHMARKS.md).
#
#   bench/load.sh                  # SQLite, 10 s per scenario, 8 connections, 1 wrk thread
#   DURATION=20 CONNECTIONS=16 bench/load.sh
#   KEEP_WORK=1 bench/load.sh      # keep the temporary directory (databases, server logs)
#   ONLY="client_credentials refresh" bench/load.sh   # some scenarios only (while profiling)
#   BENCH_DB=postgres bench/load.sh             # both servers on PostgreSQL
#   BENCH_DB=postgres BENCH_LB=1 bench/load.sh  # nginx in front of 2 replicas of each server
#   INSERT_FLOOR=4000 bench/load.sh             # the bare-SQLite insert floor, if known
#   BENCH_BIN_DIR=/tmp/old bench/load.sh        # servers built elsewhere (A/B of two builds)
#
# Builds the release binaries, starts auth-server and posts-server in a fresh temporary
# directory (new keys) on SQLite, or with BENCH_DB=postgres on two new, randomly named
# databases of the PostgreSQL server at BENCH_PG_URL (default
# postgres://postgres@127.0.0.1:5432; created with createdb, dropped at exit). BENCH_LB=1
# (PostgreSQL only: replicas share one database) starts two replicas of each server, the
# auth replicas sharing their keys through the database (AUTH_KEYS_STORE=database), and
# nginx (installed from Debian with apt-get if missing; its own generated config, pid file
# and logs in the temporary directory) in front of each pair; every request then goes
# through nginx, and the issuer is nginx's auth address.
#
# Seeds one user per connection, a confidential client, a public trusted client with a
# loopback redirect URI, and 10 posts, then measures each scenario for DURATION seconds
# with wrk: requests/s (sign-ins/s for sign_in), p50/p99 latency and server CPU seconds
# per request (utime+stime of the server processes from /proc). In the same run it
# measures what the cryptography alone allows on every core (openssl speed for RS256
# signatures, Argon2id verifications with the server's parameters), each for half of
# DURATION just before and just after the scenarios it is the ceiling of, and the
# bare-SQLite insert floor (INSERT_FLOOR, else `cargo bench -p posts-server --bench floors
# -- --insert-floor-rate`, if that bench exists), and prints the target ratios (with ONLY,
# those of the scenarios run; /healthz of posts-server is measured before and after
# GET /posts/me, the denominator of its ratio, whenever posts_me is run). At the end
# it checks that no answer was a non-2xx (except the invalid-token scenario: all 401) and
# that every post acknowledged with a 201 is in the posts database; it exits non-zero
# when a check fails.
# Needs: cargo, wrk, curl, openssl, awk; psql, createdb, dropdb for PostgreSQL; nginx (or
# root and apt-get) for BENCH_LB; sqlite3 or python3 to count posts on SQLite, else the
# posts API is paged through (BENCH_POSTS_COUNT=sqlite3|python3|api forces one way).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-8}
WRK_THREADS=${WRK_THREADS:-1}
BENCH_DB=${BENCH_DB:-sqlite}
BENCH_LB=${BENCH_LB:-}
[ "$BENCH_LB" = 0 ] && BENCH_LB=
BENCH_PG_URL=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
BENCH_PG_URL=${BENCH_PG_URL%/}
CORES=$(nproc)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CLK_TCK=$(getconf CLK_TCK)

log() { printf '%s\n' "$*" >&2; }

case $BENCH_DB in
  sqlite | postgres) ;;
  *) log "BENCH_DB must be sqlite or postgres, not '$BENCH_DB'"; exit 2 ;;
esac
if [ -n "$BENCH_LB" ] && [ "$BENCH_DB" != postgres ]; then
  log "BENCH_LB=1 needs BENCH_DB=postgres: the replicas of a server share one database," \
    "and a SQLite file is not shared between processes. Run: BENCH_DB=postgres BENCH_LB=1 $0"
  exit 2
fi

tools="cargo wrk curl openssl awk"
[ "$BENCH_DB" = postgres ] && tools="$tools psql createdb dropdb"
for tool in $tools; do
  command -v "$tool" >/dev/null || { log "bench/load.sh needs $tool"; exit 2; }
done
if [ -n "$BENCH_LB" ] && ! command -v nginx >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "== installing nginx (apt-get install -y nginx)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >&2 ||
      { log "could not install nginx"; exit 2; }
  else
    log "BENCH_LB=1 needs nginx (Debian: apt-get install nginx)"; exit 2
  fi
fi
NGINX_BIN=
[ -n "$BENCH_LB" ] && NGINX_BIN=$(command -v nginx)

if [ -n "${BENCH_BIN_DIR:-}" ]; then
  log "== the servers in $BENCH_BIN_DIR"
else
  log "== building release binaries"
  (cd "$ROOT" && cargo build --release --quiet -p auth-server -p posts-server)
fi
(cd "$ROOT" && cargo bench --quiet -p auth-server --bench crypto_rates --no-run)
# The insert floor's bench is optional: without it the POST /posts row says "not measured".
FLOORS_BENCH=
if [ -z "${ONLY:-}" ] && [ -z "${INSERT_FLOOR:-}" ]; then
  if (cd "$ROOT" && cargo bench --quiet -p posts-server --bench floors --no-run) >/dev/null 2>&1; then
    FLOORS_BENCH=1
  else
    log "   (no posts-server floors bench, or it does not build: the insert floor is not measured)"
  fi
fi
AUTH_BIN=${BENCH_BIN_DIR:-$TARGET_DIR/release}/auth-server
POSTS_BIN=${BENCH_BIN_DIR:-$TARGET_DIR/release}/posts-server

WORK=$(mktemp -d -t posts-bench.XXXXXX)
AUTH_PIDS=()
POSTS_PIDS=()
NGINX_PID=
DATABASES=()
cleanup() {
  local pid db
  for pid in "${AUTH_PIDS[@]}" "${POSTS_PIDS[@]}" $NGINX_PID; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for db in "${DATABASES[@]}"; do
    dropdb --force --if-exists --maintenance-db="$BENCH_PG_URL/postgres" "$db" 2>/dev/null ||
      log "could not drop database $db"
  done
  if [ -n "${KEEP_WORK:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# A free port from $1 on; successive calls must pass increasing starts (nothing listens
# on a port until its server starts).
free_port() {
  local port
  for port in $(seq "$1" $(($1 + 200))); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  return 1
}
# The ports of the servers (replica 1, then 2 with the load balancer) and of nginx.
port=18000
AUTH_PORTS=() POSTS_PORTS=()
REPLICAS=1
[ -n "$BENCH_LB" ] && REPLICAS=2
for _ in $(seq 1 "$REPLICAS"); do
  port=$(free_port "$port"); AUTH_PORTS+=("$port"); port=$((port + 1))
  port=$(free_port "$port"); POSTS_PORTS+=("$port"); port=$((port + 1))
done
if [ -n "$BENCH_LB" ]; then
  LB_AUTH_PORT=$(free_port "$port"); LB_POSTS_PORT=$(free_port $((LB_AUTH_PORT + 1)))
  AUTH=http://127.0.0.1:$LB_AUTH_PORT
  POSTS=http://127.0.0.1:$LB_POSTS_PORT
else
  AUTH=http://127.0.0.1:${AUTH_PORTS[0]}
  POSTS=http://127.0.0.1:${POSTS_PORTS[0]}
fi

if [ "$BENCH_DB" = postgres ]; then
  suffix=$(openssl rand -hex 6)
  AUTH_DB=bench_auth_$suffix POSTS_DB=bench_posts_$suffix
  for db in "$AUTH_DB" "$POSTS_DB"; do
    createdb --maintenance-db="$BENCH_PG_URL/postgres" "$db" || { log "createdb $db failed at $BENCH_PG_URL"; exit 2; }
    DATABASES+=("$db")
  done
  export AUTH_DATABASE_URL="$BENCH_PG_URL/$AUTH_DB" POSTS_DATABASE_URL="$BENCH_PG_URL/$POSTS_DB"
  DB_DESCRIPTION="PostgreSQL $(psql -d "$BENCH_PG_URL/postgres" -tAc 'show server_version' | awk '{ print $1 }') ($BENCH_PG_URL, databases $AUTH_DB, $POSTS_DB)"
else
  export AUTH_DATABASE_URL="sqlite://$WORK/auth.db?mode=rwc"
  export POSTS_DATABASE_URL="sqlite://$WORK/posts.db?mode=rwc"
  DB_DESCRIPTION="SQLite (files in the temporary directory)"
fi

# Production settings except the places: default Argon2 cost, info logging to a file.
export AUTH_ISSUER=$AUTH POSTS_ISSUER=$AUTH
if [ -n "$BENCH_LB" ]; then
  # Replicas must sign with the same keys: in the shared database, encrypted.
  export AUTH_KEYS_STORE=database AUTH_KEYS_ENCRYPTION_KEY
  AUTH_KEYS_ENCRYPTION_KEY=$(openssl rand -base64 32)
  unset AUTH_KEYS_DIR 2>/dev/null || true
else
  export AUTH_KEYS_DIR=$WORK/keys
  unset AUTH_KEYS_STORE AUTH_KEYS_ENCRYPTION_KEY 2>/dev/null || true
fi
unset RUST_LOG AUTH_ARGON2_MEMORY_KIB AUTH_ARGON2_ITERATIONS AUTH_ARGON2_PARALLELISM \
  POSTS_JWKS_FILE POSTS_JWKS_URL AUTH_TRUST_FORWARDED_FOR AUTH_BIND POSTS_BIND 2>/dev/null || true

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Waits for 200 from $1/readyz; prints the milliseconds since $2.
wait_ready() {
  local url=$1 since=$2
  for _ in $(seq 1 3000); do
    if curl -fs -o /dev/null "$url/readyz"; then echo $(($(now_ms) - since)); return; fi
    sleep 0.005
  done
  log "$url never became ready"; return 1
}

# start_auth N / start_posts N: replica N (0-based) on its port; sets AUTH_PIDS[N].
start_auth() {
  (cd "$WORK" && AUTH_BIND=127.0.0.1:${AUTH_PORTS[$1]} exec "$AUTH_BIN" >>"$WORK/auth$1.log" 2>&1) &
  AUTH_PIDS[$1]=$!
}
start_posts() {
  (cd "$WORK" && POSTS_BIND=127.0.0.1:${POSTS_PORTS[$1]} exec "$POSTS_BIN" >>"$WORK/posts$1.log" 2>&1) &
  POSTS_PIDS[$1]=$!
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

start_nginx() {
  local conf=$WORK/nginx/nginx.conf servers_auth='' servers_posts='' p user=''
  mkdir -p "$WORK/nginx/tmp"
  for p in "${AUTH_PORTS[@]}"; do servers_auth+="    server 127.0.0.1:$p max_fails=0;"$'\n'; done
  for p in "${POSTS_PORTS[@]}"; do servers_posts+="    server 127.0.0.1:$p max_fails=0;"$'\n'; done
  # As root, the workers would drop to nobody, who cannot enter the temporary directory.
  [ "$(id -u)" = 0 ] && user="user root root;"
  cat >"$conf" <<EOF
# Generated by bench/load.sh: round robin over the replicas, keep-alive both ways.
$user
daemon off;
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  keepalive_requests 1000000;
  upstream auth_replicas {
$servers_auth    keepalive 64;
  }
  upstream posts_replicas {
$servers_posts    keepalive 64;
  }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host \$http_host;
  proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
  # A refused request is not retried on the other replica: what the client saw is what
  # the replica answered.
  proxy_next_upstream off;
  server {
    listen 127.0.0.1:$LB_AUTH_PORT;
    location / { proxy_pass http://auth_replicas; }
  }
  server {
    listen 127.0.0.1:$LB_POSTS_PORT;
    location / { proxy_pass http://posts_replicas; }
  }
}
EOF
  "$NGINX_BIN" -t -q -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$conf" ||
    { log "nginx refuses $conf"; return 1; }
  "$NGINX_BIN" -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$conf" >>"$WORK/nginx/stdout.log" 2>&1 &
  NGINX_PID=$!
}

rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# CPU jiffies (utime+stime) of the processes $@, summed.
cpu_ticks() {
  local pid total=0
  for pid in "$@"; do total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }'))); done
  echo "$total"
}
# Busy and total jiffies of the whole machine.
machine_ticks() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat; }

log "== starting the servers in $WORK ($DB_DESCRIPTION${BENCH_LB:+, nginx in front of $REPLICAS replicas each})"
t0=$(now_ms); start_auth 0; first_start_ms=$(wait_ready "http://127.0.0.1:${AUTH_PORTS[0]}" "$t0")
stop "${AUTH_PIDS[0]}"
# Start-up with an existing key: what a restart or a new replica costs.
t0=$(now_ms); start_auth 0; AUTH_READY_MS=$(wait_ready "http://127.0.0.1:${AUTH_PORTS[0]}" "$t0")
# Further replicas one after the other (the first one has migrated and made the keys).
for i in $(seq 1 $((REPLICAS - 1))); do
  start_auth "$i"; wait_ready "http://127.0.0.1:${AUTH_PORTS[$i]}" "$(now_ms)" >/dev/null
done
if [ -n "$BENCH_LB" ]; then
  start_nginx
  wait_ready "$AUTH" "$(now_ms)" >/dev/null
fi
# posts-server fetches the JWKS from the issuer: through nginx with the load balancer.
t0=$(now_ms); start_posts 0; POSTS_READY_MS=$(wait_ready "http://127.0.0.1:${POSTS_PORTS[0]}" "$t0")
for i in $(seq 1 $((REPLICAS - 1))); do
  start_posts "$i"; wait_ready "http://127.0.0.1:${POSTS_PORTS[$i]}" "$(now_ms)" >/dev/null
done
[ -n "$BENCH_LB" ] && wait_ready "$POSTS" "$(now_ms)" >/dev/null
sleep 2
AUTH_IDLE_RSS=() POSTS_IDLE_RSS=()
for i in $(seq 0 $((REPLICAS - 1))); do
  AUTH_IDLE_RSS[i]=$(rss_mb "${AUTH_PIDS[$i]}")
  POSTS_IDLE_RSS[i]=$(rss_mb "${POSTS_PIDS[$i]}")
done
log "   auth-server ready in ${AUTH_READY_MS} ms (first start, generating the key: ${first_start_ms} ms); posts-server in ${POSTS_READY_MS} ms"

log "== seeding"
PASSWORD=bench-password-1234
# One account per connection for the password grant and the sign-in (see
# bench/wrk/password.lua); the first one also owns the posts and the logins of the refresh
# scenario.
for i in $(seq 0 $((CONNECTIONS - 1))); do
  curl -fsS -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"email\":\"bench$i@example.com\",\"password\":\"$PASSWORD\",\"full_name\":\"Bench User $i\"}" "$AUTH/users"
done
CLIENT_JSON=$(cd "$WORK" && "$AUTH_BIN" clients create bench --confidential \
  --grants client_credentials,password,refresh_token 2>/dev/null)
CLIENT_SECRET=$(sed -n 's/.*"client_secret":"\([^"]*\)".*/\1/p' <<<"$CLIENT_JSON")
[ -n "$CLIENT_SECRET" ] || { log "no client secret in: $CLIENT_JSON"; exit 1; }
BASIC="Basic $(printf 'bench:%s' "$CLIENT_SECRET" | base64 -w0)"
# The browser sign-in's client: public (PKCE only, like a single-page or native app),
# trusted (no consent page), a loopback redirect URI nothing needs to listen on.
SIGNIN_CLIENT=bench-web
SIGNIN_REDIRECT=http://127.0.0.1/cb
SIGNIN_SCOPE="openid posts:read posts:write"
WEB_JSON=$(cd "$WORK" && "$AUTH_BIN" clients create "$SIGNIN_CLIENT" --trusted \
  --grants authorization_code,refresh_token --scopes "$SIGNIN_SCOPE" \
  --redirect-uri "$SIGNIN_REDIRECT" --name "Bench Web" 2>&1) ||
  { log "clients create $SIGNIN_CLIENT failed: $WEB_JSON"; exit 1; }
CODE_VERIFIER=bench-pkce-verifier-0123456789-abcdefghijklmnopqrstuvwxyz
CODE_CHALLENGE=$(printf %s "$CODE_VERIFIER" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=\n')
PASSWORD_FORM="grant_type=password&username=bench0%40example.com&password=$PASSWORD"

password_grant() {
  curl -fsS -H "Authorization: $BASIC" -d "$PASSWORD_FORM" "$AUTH/oauth/token"
}
ACCESS=$(password_grant | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[ -n "$ACCESS" ] || { log "password grant failed"; exit 1; }
SEEDED_POSTS=10
for i in $(seq 1 $SEEDED_POSTS); do
  curl -fsS -o /dev/null -H "Authorization: Bearer $ACCESS" -H 'Content-Type: application/json' \
    -d "{\"title\":\"Post $i\",\"body\":\"Body of post $i, a few words long.\"}" "$POSTS/posts"
done
# Same header and claims, a different signature: verification runs to the RSA check.
sig=${ACCESS##*.}
if [ "${sig:0:4}" = AAAA ]; then forged_sig=BBBB${sig:4}; else forged_sig=AAAA${sig:4}; fi
FORGED=${ACCESS%.*}.$forged_sig
# Two logins per connection for the refresh scenario (see bench/wrk/refresh.lua).
: >"$WORK/refresh_tokens.txt"
for _ in $(seq 1 $((2 * CONNECTIONS))); do
  { password_grant; echo; } | sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p' >>"$WORK/refresh_tokens.txt"
done

# Whether scenario $1 is to be run (ONLY names some, or all are).
wanted() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }

# The ceilings of the ratios, each measured for half of DURATION just before and just
# after the scenarios it is the ceiling of, and averaged. On the shared machines these
# runs get, the speed moves by 10-15 % within minutes (BENCHMARKS.md, issue 14, eighth
# round): a ceiling measured minutes away from its scenarios lent their ratio that drift,
# in either direction. Bracketing cancels a steady drift and halves a step.
HALF=$(((DURATION + 1) / 2))
sign_ceiling() {
  openssl speed -seconds "$HALF" -multi "$CORES" rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ { print $6 }'
}
argon2_ceiling() {
  (cd "$ROOT" && cargo bench --quiet -p auth-server --bench crypto_rates -- --only argon2 \
    --threads "$CORES" --seconds "$HALF" 2>/dev/null) | awk '/^argon2id_verify_per_s/ { print $2 }'
}
mean() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "") printf "%.1f", (a + b) / 2 }'; }

RESULTS=$WORK/results.txt
: >"$RESULTS"
# run NAME "PID..." URL LUA [VAR=VALUE...]: one scenario; appends a line to $RESULTS:
#   name requests duration_us non2xx socket_errors p50_us p99_us units unexpected
#   server_cpu_ticks wrk_cpu_s machine_busy0 machine_total0 machine_busy1 machine_total1
# (units, unexpected: what the Lua script counted, -1 when it counts nothing; see
# bench/wrk/summary.lua).
run() {
  local name=$1 pids=$2 url=$3 script=$4; shift 4
  wanted "$name" || return 0
  local out=$WORK/$name.out cpu0 cpu1 m0 m1 wrk_cpu
  local requests duration_us non2xx sockerr p50 p99 units unexpected
  # shellcheck disable=SC2086 # $pids is a list
  cpu0=$(cpu_ticks $pids); m0=$(machine_ticks)
  # `times` after wrk reports the CPU the load tool itself used.
  wrk_cpu=$(env "$@" BENCH_OUT="$out" BENCH_LUA_DIR="$ROOT/bench/wrk" BENCH_THREADS="$WRK_THREADS" \
    bash -c 'wrk "$@" >/dev/null; times' _ -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
    -s "$ROOT/bench/wrk/$script" "$url" |
    awk 'NR==2 { gsub(/[ms]/, " "); print $1 * 60 + $2 + $3 * 60 + $4 }')
  # shellcheck disable=SC2086
  cpu1=$(cpu_ticks $pids); m1=$(machine_ticks)
  read -r requests duration_us non2xx sockerr p50 p99 units unexpected <"$out"
  echo "$name $requests $duration_us $non2xx $sockerr $p50 $p99 $units $unexpected $((cpu1 - cpu0)) $wrk_cpu $m0 $m1" >>"$RESULTS"
  if [ "$name" = sign_in ]; then
    log "   $name: $(awk -v u="$units" -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.1f sign-ins/s (%d sign-ins, %d requests)", u / (d / 1e6), u, r }'), unexpected $non2xx, socket errors $sockerr"
  else
    log "   $name: $(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.0f req/s", r / (d / 1e6) }'), non-2xx $non2xx, socket errors $sockerr"
  fi
}

AUTH_PID_LIST="${AUTH_PIDS[*]}"
POSTS_PID_LIST="${POSTS_PIDS[*]}"
log "== load: ${DURATION}s per scenario, $CONNECTIONS connections, $WRK_THREADS wrk thread(s); load average $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
run healthz_auth "$AUTH_PID_LIST" "$AUTH/healthz" fixed.lua
if wanted posts_me; then ONLY=${ONLY:+$ONLY healthz_posts healthz_posts_after}; fi
run healthz_posts "$POSTS_PID_LIST" "$POSTS/healthz" fixed.lua
run posts_me "$POSTS_PID_LIST" "$POSTS/posts/me" fixed.lua BENCH_AUTHORIZATION="Bearer $ACCESS"
# /healthz again: the ceiling of GET /posts/me is the mean of the two (see sign_ceiling).
wanted posts_me && run healthz_posts_after "$POSTS_PID_LIST" "$POSTS/healthz" fixed.lua
run invalid_token "$POSTS_PID_LIST" "$POSTS/posts/me" fixed.lua BENCH_AUTHORIZATION="Bearer $FORGED"
# Counts the 201s: each one is a post the server says is stored (checked at the end).
run posts_create "$POSTS_PID_LIST" "$POSTS/posts" fixed.lua BENCH_METHOD=POST \
  BENCH_AUTHORIZATION="Bearer $ACCESS" BENCH_CONTENT_TYPE=application/json \
  BENCH_BODY='{"title":"Load","body":"A post written by the load benchmark."}' BENCH_COUNT_STATUS=201
SIGN_BEFORE='' SIGN_AFTER='' ARGON2_BEFORE='' ARGON2_AFTER=''
SIGNING_SCENARIOS='' ARGON2_SCENARIOS=''
wanted client_credentials || wanted refresh && SIGNING_SCENARIOS=1
wanted password || wanted sign_in && ARGON2_SCENARIOS=1
[ -n "$SIGNING_SCENARIOS" ] && { log "   RS256 ceiling before (openssl speed, ${HALF}s)"; SIGN_BEFORE=$(sign_ceiling); }
run client_credentials "$AUTH_PID_LIST" "$AUTH/oauth/token" fixed.lua BENCH_METHOD=POST \
  BENCH_AUTHORIZATION="$BASIC" BENCH_CONTENT_TYPE=application/x-www-form-urlencoded \
  BENCH_BODY=grant_type=client_credentials
run refresh "$AUTH_PID_LIST" "$AUTH/oauth/token" refresh.lua \
  BENCH_AUTHORIZATION="$BASIC" BENCH_TOKENS="$WORK/refresh_tokens.txt"
[ -n "$SIGNING_SCENARIOS" ] && { log "   RS256 ceiling after"; SIGN_AFTER=$(sign_ceiling); }
[ -n "$ARGON2_SCENARIOS" ] && { log "   Argon2id ceiling before (crypto_rates, ${HALF}s)"; ARGON2_BEFORE=$(argon2_ceiling); }
run password "$AUTH_PID_LIST" "$AUTH/oauth/token" password.lua \
  BENCH_AUTHORIZATION="$BASIC" BENCH_USERS="$CONNECTIONS" BENCH_PASSWORD="$PASSWORD"
run sign_in "$AUTH_PID_LIST" "$AUTH/oauth/authorize" sign_in.lua \
  BENCH_CLIENT_ID="$SIGNIN_CLIENT" BENCH_REDIRECT_URI="$SIGNIN_REDIRECT" BENCH_SCOPE="$SIGNIN_SCOPE" \
  BENCH_CODE_VERIFIER="$CODE_VERIFIER" BENCH_CODE_CHALLENGE="$CODE_CHALLENGE" \
  BENCH_USERS="$CONNECTIONS" BENCH_PASSWORD="$PASSWORD"
[ -n "$ARGON2_SCENARIOS" ] && { log "   Argon2id ceiling after"; ARGON2_AFTER=$(argon2_ceiling); }
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
# At rest after the load: an Argon2 worker returns its 19 MiB block after 2 s idle
# (auth-server/src/passwords.rs), so reading at exactly 2 s would race it.
sleep 5
AUTH_AFTER_RSS=() POSTS_AFTER_RSS=()
for i in $(seq 0 $((REPLICAS - 1))); do
  AUTH_AFTER_RSS[i]=$(rss_mb "${AUTH_PIDS[$i]}")
  POSTS_AFTER_RSS[i]=$(rss_mb "${POSTS_PIDS[$i]}")
done

# ------------------------------------------------------------------ acknowledged posts
# The posts in the database, over the seeded ones; the server's own API is the last resort.
count_posts() {
  local how=${BENCH_POSTS_COUNT:-}
  if [ -z "$how" ]; then
    how=api
    if command -v python3 >/dev/null; then how=python3; fi
    if command -v sqlite3 >/dev/null; then how=sqlite3; fi
  fi
  if [ "$BENCH_DB" = postgres ]; then
    psql -d "$POSTS_DATABASE_URL" -tAc 'select count(*) from posts'
  elif [ "$how" = sqlite3 ]; then
    sqlite3 "$WORK/posts.db" 'select count(*) from posts'
  elif [ "$how" = python3 ]; then
    python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from posts").fetchone()[0])' "$WORK/posts.db"
  else
    # Every post is bench0's: page through GET /posts/me with a fresh token.
    local token page cursor='' total=0
    token=$(password_grant | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
    while :; do
      page=$(curl -fsS -H "Authorization: Bearer $token" "$POSTS/posts/me?limit=100${cursor:+&cursor=$cursor}")
      total=$((total + $(grep -o '"author_id"' <<<"$page" | wc -l)))
      cursor=$(sed -n 's/.*"next_cursor":"\([^"]*\)".*/\1/p' <<<"$page")
      [ -n "$cursor" ] || break
    done
    echo "$total"
  fi
}
ACKED='' STORED=''
if grep -q '^posts_create ' "$RESULTS"; then
  ACKED=$(awk '$1 == "posts_create" { print $8 }' "$RESULTS")
  STORED=$(($(count_posts) - SEEDED_POSTS))
fi

OPENSSL_SIGN=$(mean "$SIGN_BEFORE" "$SIGN_AFTER")
ARGON2_VERIFY=$(mean "$ARGON2_BEFORE" "$ARGON2_AFTER")
AWSLC_SIGN=
if [ -z "${ONLY:-}" ]; then
log "== the server's own RS256 signer on $CORES cores, for comparison (crypto_rates, ${DURATION}s)"
AWSLC_SIGN=$( (cd "$ROOT" && cargo bench --quiet -p auth-server --bench crypto_rates -- \
  --only rs256 --threads "$CORES" --seconds "$DURATION" 2>/dev/null) |
  awk '/^rs256_sign_per_s/ { print $2 }')
if [ -z "${INSERT_FLOOR:-}" ] && [ -n "$FLOORS_BENCH" ]; then
  log "== the bare-SQLite insert floor (cargo bench -p posts-server --bench floors -- --insert-floor-rate)"
  INSERT_FLOOR=$( (cd "$ROOT" && cargo bench --quiet -p posts-server --bench floors -- \
    --insert-floor-rate --seconds "$DURATION" 2>/dev/null) |
    awk '/^insert_floor_per_s/ { print $2 }' || true)
  [ -n "$INSERT_FLOOR" ] || log "   the floors bench printed no insert_floor_per_s line"
fi
fi

# ---------------------------------------------------------------------------- report
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "## Load benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "Machine: $CORES cores ($CPU_MODEL), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM;" \
  "$(uname -sr). ${DURATION} s per scenario, $CONNECTIONS connections, $WRK_THREADS wrk thread(s)," \
  "load average before/after: $LOAD_BEFORE / $LOAD_AFTER."
if [ -n "$BENCH_LB" ]; then
  echo "Database: $DB_DESCRIPTION. Load balancer: $("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //')" \
    "(round robin, keep-alive) in front of $REPLICAS replicas of each server; wrk talks to nginx only;" \
    "server CPU is the sum over the replicas, nginx's CPU is in \"other\"."
else
  echo "Database: $DB_DESCRIPTION."
fi
echo
echo "| scenario | req/s | p50 ms | p99 ms | server CPU ms/req | non-2xx | wrk CPU % | other CPU % |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
while read -r name requests duration_us non2xx sockerr p50 p99 units unexpected dcpu wrk_cpu mb0 mt0 mb1 mt1; do
  awk -v n="$name" -v r="$requests" -v d="$duration_us" -v x="$non2xx" -v se="$sockerr" \
    -v p50="$p50" -v p99="$p99" -v u="$units" -v c="$dcpu" -v hz="$CLK_TCK" -v w="$wrk_cpu" \
    -v b="$((mb1 - mb0))" -v t="$((mt1 - mt0))" -v cores="$CORES" 'BEGIN {
      s = d / 1e6
      # sign_in: per completed sign-in (4 requests), not per request; see the note below.
      if (n == "sign_in") { r = u; n = "sign_in ¹" }
      # Busy CPU of the machine not spent in this server or in wrk: other engineers.
      other = (b / hz - c / hz - w) / (s * cores) * 100; if (other < 0) other = 0
      printf "| %s | %.0f | %.2f | %.2f | %.3f | %d%s | %.0f | %.0f |\n", n, r / s, p50 / 1000,
        p99 / 1000, (r > 0 ? c / hz / r * 1000 : 0), x, (se > 0 ? " (+" se " socket errors)" : ""),
        w / (s * cores) * 100, other
    }'
done <"$RESULTS"
if grep -q '^sign_in ' "$RESULTS"; then
  echo
  awk '$1 == "sign_in" { printf "¹ sign_in: completed browser sign-ins per second (%d in %d requests: GET /oauth/authorize," \
    " GET /login, POST /login, POST /oauth/token with the code), server CPU per sign-in; latency per request;" \
    " non-2xx = answers that were not the next step of the flow.\n", $8, $2 }' "$RESULTS"
fi
rate() { awk -v n="$1" '$1 == n { printf "%.1f", (n == "sign_in" ? $8 : $2) / ($3 / 1e6) }' "$RESULTS"; }
limit_row() { # label value limit unit
  awk -v l="$1" -v v="$2" -v lim="$3" -v u="$4" 'BEGIN {
    printf "| %s | %s %s | | ≤ %s %s | %s |\n", l, v, u, lim, u, (v <= lim ? "yes" : "**no**") }'
}
rss_rows() {
  local i label
  for i in $(seq 0 $((REPLICAS - 1))); do
    label=; [ "$REPLICAS" -gt 1 ] && label=" #$((i + 1))"
    limit_row "auth-server$label idle RSS" "${AUTH_IDLE_RSS[$i]}" 30 MB
    limit_row "posts-server$label idle RSS" "${POSTS_IDLE_RSS[$i]}" 30 MB
    limit_row "auth-server$label RSS after the load" "${AUTH_AFTER_RSS[$i]}" 64 MB
    limit_row "posts-server$label RSS after the load" "${POSTS_AFTER_RSS[$i]}" 64 MB
  done
}

# -------------------------------------------------------------------------- checks
# Zero non-2xx answers (and no socket errors) except for the invalid token, which must be
# refused every time; every acknowledged post stored.
check_lines() {
  echo
  awk '{
    name = $1; requests = $2; bad = $4; sockerr = $5
    if (name == "invalid_token") {
      ok = (bad == requests && sockerr == 0)
      printf "%s: %s: %d of %d requests refused (all must be), %d socket errors\n", (ok ? "PASS" : "FAIL"), name, bad, requests, sockerr
    } else {
      ok = (bad == 0 && sockerr == 0)
      printf "%s: %s: %d non-2xx or unexpected answers, %d socket errors in %d requests\n", (ok ? "PASS" : "FAIL"), name, bad, sockerr, requests
    }
  }' "$RESULTS"
  if [ -n "$ACKED" ]; then
    if [ "$STORED" -ge "$ACKED" ]; then
      echo "PASS: acknowledged posts: $ACKED answered 201, $STORED stored (over the $SEEDED_POSTS seeded;" \
        "$((STORED - ACKED)) more were in flight when wrk stopped)"
    else
      echo "FAIL: acknowledged posts: $ACKED answered 201, only $STORED stored: $((ACKED - STORED)) acknowledged posts are missing"
    fi
    if [ "$STORED" -gt $((ACKED + CONNECTIONS)) ]; then
      echo "WARNING: $STORED stored is more than the $ACKED acknowledged plus one in flight per connection"
    fi
  fi
}
CHECKS=$(check_lines)

CC=$(rate client_credentials); PW=$(rate password); RF=$(rate refresh); SI=$(rate sign_in)
ME=$(rate posts_me); PC=$(rate posts_create)
HZ=$(mean "$(rate healthz_posts)" "$(rate healthz_posts_after)")
# "a/s (how: b before, c after)", or nothing when not measured.
bracketed() { [ -n "$1" ] && echo "$1/s ($4: $2 before, $3 after)"; }
if [ -n "${ONLY:-}" ]; then
  echo
  rss=
  for i in $(seq 0 $((REPLICAS - 1))); do
    rss+="auth-server${BENCH_LB:+ #$((i + 1))} ${AUTH_IDLE_RSS[$i]}/${AUTH_AFTER_RSS[$i]} MB, "
    rss+="posts-server${BENCH_LB:+ #$((i + 1))} ${POSTS_IDLE_RSS[$i]}/${POSTS_AFTER_RSS[$i]} MB, "
  done
  echo "RSS idle/after the load: ${rss%, }."
fi
echo
echo "Ceilings measured in this run on $CORES cores, each the mean of ${HALF} s just before and" \
  "${HALF} s just after its scenarios: RS256 signatures" \
  "$(bracketed "$OPENSSL_SIGN" "$SIGN_BEFORE" "$SIGN_AFTER" "openssl speed" || echo "not measured");" \
  "Argon2id verifications $(bracketed "$ARGON2_VERIFY" "$ARGON2_BEFORE" "$ARGON2_AFTER" \
    "argon2 crate, m=19456, t=2, p=1" || echo "not measured");" \
  "posts-server /healthz $(bracketed "$HZ" "$(rate healthz_posts)" "$(rate healthz_posts_after)" \
    "requests" || echo "not measured")."
if [ -z "${ONLY:-}" ]; then
  echo "Also measured: $AWSLC_SIGN RS256 signatures/s with the server's own signer (aws-lc, the" \
    "cached key pair; ${DURATION} s after the load); bare-SQLite insert floor (WAL," \
    "synchronous=FULL, groups of 16) ${INSERT_FLOOR:-not measured}${INSERT_FLOOR:+/s}."
fi
if [ "$BENCH_DB" = postgres ]; then
  echo
  echo "The targets are set for SQLite; on PostgreSQL${BENCH_LB:+ behind the load balancer} the table is for" \
    "comparison (the insert floor is SQLite's)."
fi
echo
echo "| target | measured | ratio | goal | met |"
echo "|---|---:|---:|---:|:-:|"
ratio_row() { # label measured ceiling goal
  # With ONLY, the rows of the scenarios that were run.
  [ -z "${ONLY:-}" ] || [ -n "$2" ] || return 0
  if [ -z "$2" ] || [ -z "$3" ] || [ "$3" = 0 ]; then
    awk -v l="$1" -v m="$2" -v g="$4" 'BEGIN {
      printf "| %s | %s / not measured | | ≥ %.0f %% | not measured |\n", l, (m == "" ? "—" : sprintf("%.0f", m)), g * 100 }'
    return
  fi
  awk -v l="$1" -v m="$2" -v c="$3" -v g="$4" 'BEGIN {
    # The percentage is truncated, so that a miss never shows as the goal itself.
    r = m / c; printf "| %s | %.0f / %.0f | %d %% | ≥ %.0f %% | %s |\n", l, m, c, int(r * 100), g * 100, (r >= g ? "yes" : "**no**") }'
}
ratio_row "GET /posts/me (10 posts) vs posts /healthz" "$ME" "$HZ" 0.50
ratio_row "POST /posts vs the bare-SQLite insert floor" "$PC" "${INSERT_FLOOR:-}" 0.50
ratio_row "client credentials vs RS256 signing (openssl)" "$CC" "$OPENSSL_SIGN" 0.80
ratio_row "refresh grant vs RS256 signing (openssl)" "$RF" "$OPENSSL_SIGN" 0.60
ratio_row "password grant ($CONNECTIONS accounts) vs Argon2id verification" "$PW" "$ARGON2_VERIFY" 0.90
ratio_row "authorization-code sign-in ($CONNECTIONS accounts) vs Argon2id verification" "$SI" "$ARGON2_VERIFY" 0.85
if [ -z "${ONLY:-}" ]; then
rss_rows
limit_row "auth-server start-up to ready, existing key" "$AUTH_READY_MS" 1000 ms
limit_row "posts-server start-up to ready (fetches the JWKS)" "$POSTS_READY_MS" 1000 ms
fi
echo "$CHECKS"
if grep -q '^FAIL' <<<"$CHECKS"; then exit 1; fi

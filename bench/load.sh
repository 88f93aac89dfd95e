#!/usr/bin/env bash
# Load benchmark of both servers, with the targets of issue 7 (see BENCHMARKS.md).
#
#   bench/load.sh                  # 10 s per scenario, 8 connections, 1 wrk thread
#   DURATION=20 CONNECTIONS=16 bench/load.sh
#   KEEP_WORK=1 bench/load.sh      # keep the temporary directory (databases, server logs)
#   ONLY="client_credentials refresh" bench/load.sh   # some scenarios only (while profiling)
#
# Builds the release binaries, starts auth-server and posts-server on SQLite in a fresh
# temporary directory (new keys), seeds a user, a confidential client and 10 posts, then
# measures each scenario for DURATION seconds with wrk: requests/s, p50/p99 latency and
# server CPU seconds per request (utime+stime of the server process from /proc). In the
# same run it measures what the cryptography alone allows on every core (openssl speed
# for RS256 signatures, Argon2id verifications with the server's parameters), and prints
# the target ratios. Needs: cargo, wrk, curl, openssl, awk.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-8}
WRK_THREADS=${WRK_THREADS:-1}
CORES=$(nproc)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CLK_TCK=$(getconf CLK_TCK)

for tool in cargo wrk curl openssl awk; do
  command -v "$tool" >/dev/null || { echo "bench/load.sh needs $tool" >&2; exit 2; }
done

log() { printf '%s\n' "$*" >&2; }

log "== building release binaries"
(cd "$ROOT" && cargo build --release --quiet -p auth-server -p posts-server)
(cd "$ROOT" && cargo bench --quiet -p auth-server --bench crypto_rates --no-run)
AUTH_BIN=$TARGET_DIR/release/auth-server
POSTS_BIN=$TARGET_DIR/release/posts-server

WORK=$(mktemp -d -t posts-bench.XXXXXX)
AUTH_PID=
POSTS_PID=
cleanup() {
  for pid in $AUTH_PID $POSTS_PID; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
  local port
  for port in $(seq "$1" $(($1 + 200))); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  return 1
}
AUTH_PORT=$(free_port 18000)
POSTS_PORT=$(free_port $((AUTH_PORT + 1)))
AUTH=http://127.0.0.1:$AUTH_PORT
POSTS=http://127.0.0.1:$POSTS_PORT

# Production settings except the places: default Argon2 cost, info logging to a file.
export AUTH_BIND=127.0.0.1:$AUTH_PORT AUTH_ISSUER=$AUTH AUTH_KEYS_DIR=$WORK/keys
export AUTH_DATABASE_URL="sqlite://$WORK/auth.db?mode=rwc"
export POSTS_BIND=127.0.0.1:$POSTS_PORT POSTS_ISSUER=$AUTH
export POSTS_DATABASE_URL="sqlite://$WORK/posts.db?mode=rwc"
unset RUST_LOG AUTH_ARGON2_MEMORY_KIB AUTH_ARGON2_ITERATIONS AUTH_ARGON2_PARALLELISM \
  POSTS_JWKS_FILE POSTS_JWKS_URL AUTH_TRUST_FORWARDED_FOR 2>/dev/null || true

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

start_auth() { (cd "$WORK" && exec "$AUTH_BIN" >>"$WORK/auth.log" 2>&1) & AUTH_PID=$!; }
start_posts() { (cd "$WORK" && exec "$POSTS_BIN" >>"$WORK/posts.log" 2>&1) & POSTS_PID=$!; }
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }

rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# Busy and total jiffies of the whole machine.
machine_ticks() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat; }

log "== starting the servers in $WORK"
t0=$(now_ms); start_auth; first_start_ms=$(wait_ready "$AUTH" "$t0")
stop "$AUTH_PID"
# Start-up with an existing key: what a restart or a new replica costs.
t0=$(now_ms); start_auth; AUTH_READY_MS=$(wait_ready "$AUTH" "$t0")
t0=$(now_ms); start_posts; POSTS_READY_MS=$(wait_ready "$POSTS" "$t0")
sleep 2
AUTH_IDLE_RSS=$(rss_mb "$AUTH_PID")
POSTS_IDLE_RSS=$(rss_mb "$POSTS_PID")
log "   auth-server ready in ${AUTH_READY_MS} ms (first start, generating the key: ${first_start_ms} ms); posts-server in ${POSTS_READY_MS} ms"

log "== seeding"
PASSWORD=bench-password-1234
# One account per connection for the password grant (see bench/wrk/password.lua); the
# first one also owns the posts and the logins of the refresh scenario.
for i in $(seq 0 $((CONNECTIONS - 1))); do
  curl -fsS -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"email\":\"bench$i@example.com\",\"password\":\"$PASSWORD\",\"full_name\":\"Bench User $i\"}" "$AUTH/users"
done
CLIENT_JSON=$(cd "$WORK" && "$AUTH_BIN" clients create bench --confidential \
  --grants client_credentials,password,refresh_token 2>/dev/null)
CLIENT_SECRET=$(sed -n 's/.*"client_secret":"\([^"]*\)".*/\1/p' <<<"$CLIENT_JSON")
[ -n "$CLIENT_SECRET" ] || { log "no client secret in: $CLIENT_JSON"; exit 1; }
BASIC="Basic $(printf 'bench:%s' "$CLIENT_SECRET" | base64 -w0)"
PASSWORD_FORM="grant_type=password&username=bench0%40example.com&password=$PASSWORD"

password_grant() {
  curl -fsS -H "Authorization: $BASIC" -d "$PASSWORD_FORM" "$AUTH/oauth/token"
}
ACCESS=$(password_grant | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[ -n "$ACCESS" ] || { log "password grant failed"; exit 1; }
for i in $(seq 1 10); do
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

RESULTS=$WORK/results.txt
: >"$RESULTS"
# run NAME PID URL LUA [VAR=VALUE...]: one scenario; appends a line to $RESULTS.
run() {
  local name=$1 pid=$2 url=$3 script=$4; shift 4
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
  local out=$WORK/$name.out cpu0 cpu1 m0 m1 wrk_cpu
  cpu0=$(cpu_ticks "$pid"); m0=$(machine_ticks)
  # `times` after wrk reports the CPU the load tool itself used.
  wrk_cpu=$(env "$@" BENCH_OUT="$out" BENCH_LUA_DIR="$ROOT/bench/wrk" BENCH_THREADS="$WRK_THREADS" \
    bash -c 'wrk "$@" >/dev/null; times' _ -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
    -s "$ROOT/bench/wrk/$script" "$url" |
    awk 'NR==2 { gsub(/[ms]/, " "); print $1 * 60 + $2 + $3 * 60 + $4 }')
  cpu1=$(cpu_ticks "$pid"); m1=$(machine_ticks)
  read -r requests duration_us non2xx sockerr p50 p99 <"$out"
  echo "$name $requests $duration_us $non2xx $sockerr $p50 $p99 $((cpu1 - cpu0)) $wrk_cpu $m0 $m1" >>"$RESULTS"
  log "   $name: $(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.0f req/s", r / (d / 1e6) }'), non-2xx $non2xx"
}

log "== load: ${DURATION}s per scenario, $CONNECTIONS connections, $WRK_THREADS wrk thread(s); load average $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
run healthz_auth "$AUTH_PID" "$AUTH/healthz" fixed.lua
run healthz_posts "$POSTS_PID" "$POSTS/healthz" fixed.lua
run posts_me "$POSTS_PID" "$POSTS/posts/me" fixed.lua BENCH_AUTHORIZATION="Bearer $ACCESS"
run invalid_token "$POSTS_PID" "$POSTS/posts/me" fixed.lua BENCH_AUTHORIZATION="Bearer $FORGED"
run posts_create "$POSTS_PID" "$POSTS/posts" fixed.lua BENCH_METHOD=POST \
  BENCH_AUTHORIZATION="Bearer $ACCESS" BENCH_CONTENT_TYPE=application/json \
  BENCH_BODY='{"title":"Load","body":"A post written by the load benchmark."}'
run client_credentials "$AUTH_PID" "$AUTH/oauth/token" fixed.lua BENCH_METHOD=POST \
  BENCH_AUTHORIZATION="$BASIC" BENCH_CONTENT_TYPE=application/x-www-form-urlencoded \
  BENCH_BODY=grant_type=client_credentials
run password "$AUTH_PID" "$AUTH/oauth/token" password.lua \
  BENCH_AUTHORIZATION="$BASIC" BENCH_USERS="$CONNECTIONS" BENCH_PASSWORD="$PASSWORD"
run refresh "$AUTH_PID" "$AUTH/oauth/token" refresh.lua \
  BENCH_AUTHORIZATION="$BASIC" BENCH_TOKENS="$WORK/refresh_tokens.txt"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
sleep 2
AUTH_AFTER_RSS=$(rss_mb "$AUTH_PID")
POSTS_AFTER_RSS=$(rss_mb "$POSTS_PID")

if [ -n "${ONLY:-}" ]; then OPENSSL_SIGN=0 RATES=; else
log "== what the cryptography allows on $CORES cores"
OPENSSL_SIGN=$(openssl speed -seconds "$DURATION" -multi "$CORES" rsa2048 2>/dev/null |
  awk '/^rsa 2048 bits/ { print $6 }')
RATES=$(cd "$ROOT" && cargo bench --quiet -p auth-server --bench crypto_rates -- \
  --threads "$CORES" --seconds "$DURATION" 2>/dev/null)
ARGON2_VERIFY=$(awk '/^argon2id_verify_per_s/ { print $2 }' <<<"$RATES")
AWSLC_SIGN=$(awk '/^rs256_sign_per_s/ { print $2 }' <<<"$RATES")
fi

# ---------------------------------------------------------------------------- report
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "## Load benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "Machine: $CORES cores ($CPU_MODEL), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM;" \
  "$(uname -sr). ${DURATION} s per scenario, $CONNECTIONS connections, $WRK_THREADS wrk thread(s)," \
  "load average before/after: $LOAD_BEFORE / $LOAD_AFTER."
echo
echo "| scenario | req/s | p50 ms | p99 ms | server CPU ms/req | non-2xx | wrk CPU % | other CPU % |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
while read -r name requests duration_us non2xx sockerr p50 p99 dcpu wrk_cpu mb0 mt0 mb1 mt1; do
  awk -v n="$name" -v r="$requests" -v d="$duration_us" -v x="$non2xx" -v se="$sockerr" \
    -v p50="$p50" -v p99="$p99" -v c="$dcpu" -v hz="$CLK_TCK" -v w="$wrk_cpu" \
    -v b="$((mb1 - mb0))" -v t="$((mt1 - mt0))" -v cores="$CORES" 'BEGIN {
      s = d / 1e6
      # Busy CPU of the machine not spent in this server or in wrk: other engineers.
      other = (b / hz - c / hz - w) / (s * cores) * 100; if (other < 0) other = 0
      printf "| %s | %.0f | %.2f | %.2f | %.3f | %d%s | %.0f | %.0f |\n", n, r / s, p50 / 1000,
        p99 / 1000, c / hz / r * 1000, x, (se > 0 ? " (+" se " socket errors)" : ""),
        w / (s * cores) * 100, other
    }'
done <"$RESULTS"
rate() { awk -v n="$1" '$1 == n { printf "%.1f", $2 / ($3 / 1e6) }' "$RESULTS"; }
if [ -n "${ONLY:-}" ]; then
  echo
  echo "RSS idle/after the load: auth-server $AUTH_IDLE_RSS/$AUTH_AFTER_RSS MB, posts-server $POSTS_IDLE_RSS/$POSTS_AFTER_RSS MB."
  exit 0
fi
CC=$(rate client_credentials); PW=$(rate password); RF=$(rate refresh)
ME=$(rate posts_me); HZ=$(rate healthz_posts)
echo
echo "Ceilings measured in this run on $CORES cores: RS256 signatures $OPENSSL_SIGN/s (openssl speed)," \
  "$AWSLC_SIGN/s (aws-lc with the server's cached key pair); Argon2id verifications" \
  "(m=19456, t=2, p=1) $ARGON2_VERIFY/s."
echo
echo "| target | measured | ratio | goal | met |"
echo "|---|---:|---:|---:|:-:|"
ratio_row() { # label measured ceiling goal
  awk -v l="$1" -v m="$2" -v c="$3" -v g="$4" 'BEGIN {
    r = m / c; printf "| %s | %.0f / %.0f | %.0f %% | ≥ %.0f %% | %s |\n", l, m, c, r * 100, g * 100, (r >= g ? "yes" : "**no**") }'
}
ratio_row "client credentials vs RS256 signing (openssl)" "$CC" "$OPENSSL_SIGN" 0.70
ratio_row "password grant vs Argon2id verification" "$PW" "$ARGON2_VERIFY" 0.90
ratio_row "GET /posts/me vs posts /healthz" "$ME" "$HZ" 0.60
ratio_row "refresh grant vs RS256 signing (openssl)" "$RF" "$OPENSSL_SIGN" 0.50
limit_row() { # label value limit unit
  awk -v l="$1" -v v="$2" -v lim="$3" -v u="$4" 'BEGIN {
    printf "| %s | %s %s | | ≤ %s %s | %s |\n", l, v, u, lim, u, (v <= lim ? "yes" : "**no**") }'
}
limit_row "auth-server idle RSS (after load: $AUTH_AFTER_RSS MB)" "$AUTH_IDLE_RSS" 30 MB
limit_row "posts-server idle RSS (after load: $POSTS_AFTER_RSS MB)" "$POSTS_IDLE_RSS" 30 MB
limit_row "auth-server start-up to ready, existing key" "$AUTH_READY_MS" 1000 ms
limit_row "posts-server start-up to ready (fetches the JWKS)" "$POSTS_READY_MS" 1000 ms

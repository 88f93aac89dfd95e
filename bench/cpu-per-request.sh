#!/usr/bin/env bash
# Server CPU and context switches per request of one auth-server scenario, for A/B
# comparisons of two builds: a ratio of bench/load.sh moves by several per cent from run
# to run on a shared machine (the ceilings move with it), CPU per request much less.
#
#   BENCH_BIN_DIR=/tmp/old bench/cpu-per-request.sh client_credentials /oauth/token
#   BENCH_BIN_DIR=/tmp/new bench/cpu-per-request.sh client_credentials /oauth/token
#
# Runs `ONLY=$1 bench/load.sh` with the servers of BENCH_BIN_DIR (DURATION, default 12),
# waits until requests to route $2 flow, then reads `perf stat -e task-clock,context-switches`
# of the auth server for WINDOW seconds (default 5) and the route's request count from its
# /metrics before and after. Needs perf; alternate the builds and repeat. EVENTS adds perf
# events counted per request too, e.g. EVENTS=syscalls:sys_enter_pwrite64,syscalls:sys_enter_fsync.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCENARIO=${1:?usage: $0 SCENARIO ROUTE (e.g. client_credentials /oauth/token)}
ROUTE=${2:?usage: $0 SCENARIO ROUTE}
WINDOW=${WINDOW:-5}
: "${BENCH_BIN_DIR:?set BENCH_BIN_DIR to the directory of the release binaries to measure}"
BIN_DIR=$(cd "$BENCH_BIN_DIR" && pwd)
command -v perf >/dev/null || { echo "needs perf" >&2; exit 2; }

OUT=$(mktemp -d -t cpu-per-request.XXXXXX)
LOAD_PID=
cleanup() {
  [ -n "$LOAD_PID" ] && wait "$LOAD_PID" 2>/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT

BENCH_BIN_DIR=$BIN_DIR ONLY=$SCENARIO DURATION=${DURATION:-12} "$ROOT/bench/load.sh" \
  >"$OUT/load.log" 2>&1 &
LOAD_PID=$!

# The last auth-server started from BIN_DIR (the script starts one first to make its
# key) and the port it listens on.
PID= PORT=
find_server() {
  PID=$(pgrep -xf "$BIN_DIR/auth-server( .*)?" | tail -1 || true)
  PORT=
  [ -n "$PID" ] && PORT=$(ss -ltnp | awk -v p="pid=$PID," 'index($0, p) { sub(/.*:/, "", $4); print $4; exit }')
  return 0
}
requests() {
  curl -fsS "http://127.0.0.1:$PORT/metrics" |
    awk -v r="route=\"$ROUTE\"" '/^auth_http_requests_total\{/ && index($0, r) { s += $NF } END { print s + 0 }'
}
for _ in $(seq 1 120); do find_server; [ -n "$PORT" ] && break; sleep 0.5; done
sleep 2
find_server
[ -n "$PORT" ] || { echo "the auth server did not start" >&2; cat "$OUT/load.log" >&2; exit 1; }
before=$(requests)
for _ in $(seq 1 120); do
  sleep 0.5
  now=$(requests)
  [ $((now - before)) -gt 20 ] && break
  before=$now
done
sleep 1
first=$(requests)
perf stat -x, -e "task-clock,context-switches${EVENTS:+,$EVENTS}" -p "$PID" -- sleep "$WINDOW" 2>"$OUT/stat" ||
  { echo "perf stat failed:" >&2; cat "$OUT/stat" >&2; exit 1; }
last=$(requests)
n=$((last - first))
[ "$n" -gt 0 ] || { echo "no requests to $ROUTE in the window" >&2; exit 1; }
awk -F, -v n="$n" -v w="$WINDOW" '{ v[$3] = $1; order[NR] = $3 } END {
  printf "%d requests in %d s (%.0f/s): %.1f us of server CPU and %.2f context switches per request",
    n, w, n / w, v["task-clock"] * 1000 / n, v["context-switches"] / n
  for (i = 3; i <= NR; i++) printf "; %.2f %s", v[order[i]] / n, order[i]
  printf "\n" }' "$OUT/stat"

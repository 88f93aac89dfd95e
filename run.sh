#!/usr/bin/env bash
# Starts auth-server and posts-server with working defaults (SQLite under data/, a key
# generated under keys/ on first start), prints their URLs, and stops both on Ctrl-C.
# Every setting can be overridden with the AUTH_* / POSTS_* variables (see README.md) or
# a .env file in this directory.
set -euo pipefail
cd "$(dirname "$0")"

cargo build --release --bin auth-server --bin posts-server

auth_bind="${AUTH_BIND:-127.0.0.1:8000}"
posts_bind="${POSTS_BIND:-127.0.0.1:8001}"

pids=()
stop() {
    trap - INT TERM EXIT
    if ((${#pids[@]})); then
        kill -TERM "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
    echo "stopped."
}
trap 'stop; exit 130' INT TERM
trap stop EXIT

target/release/auth-server &
pids+=($!)
target/release/posts-server &
pids+=($!)

# Print the URLs once both answer, so they are not lost in the start-up logs.
wait_for() {
    local host="${1%:*}" port="${1##*:}"
    [ "$host" = "0.0.0.0" ] && host=127.0.0.1
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/${host}/${port}") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
wait_for "$auth_bind" || true
wait_for "$posts_bind" || true

cat <<INFO

  auth-server   http://${auth_bind}        Swagger UI: http://${auth_bind}/docs
  posts-server  http://${posts_bind}        Swagger UI: http://${posts_bind}/docs

  Press Ctrl-C to stop both.

INFO

# Exit (and stop the other) as soon as either server exits.
wait -n "${pids[@]}" || true

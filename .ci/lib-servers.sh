# Sourced by .ci/schemathesis.sh and .ci/browser.sh: starts auth-server and posts-server
# on free loopback ports with fresh SQLite files and a fresh keys directory in a temp dir,
# waits for both /readyz, and stops them (and removes the temp dir) on exit.
#
# Uses the debug binaries that `cargo test` already built; builds them when missing.
# Set E2E_BIN_DIR to use other binaries (e.g. target/release).
#
# After `start_servers`:
#   WORK_DIR      the temp dir (logs: $WORK_DIR/auth.log, $WORK_DIR/posts.log)
#   AUTH_URL      http://127.0.0.1:<port>
#   POSTS_URL     http://127.0.0.1:<port>
# E2E_DATABASE=postgres runs both servers on fresh PostgreSQL databases instead (created
# on $TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432, dropped at the end).
#
# `auth_admin ARGS...` runs an auth-server admin command (e.g. `clients create`) against
# the same database and keys.

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVER_PIDS=()
PG_DATABASES=()
PG_ADMIN_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
PG_ADMIN_URL="${PG_ADMIN_URL%/}"
WORK_DIR=""
KEEP_WORK_DIR="${KEEP_WORK_DIR:-}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

ensure_binaries() {
    BIN_DIR="${E2E_BIN_DIR:-$ROOT_DIR/target/debug}"
    if [[ ! -x "$BIN_DIR/auth-server" || ! -x "$BIN_DIR/posts-server" ]]; then
        if [[ -n "${E2E_BIN_DIR:-}" ]]; then
            log "E2E_BIN_DIR=$E2E_BIN_DIR has no auth-server/posts-server binaries"
            return 1
        fi
        log "building auth-server and posts-server (debug)"
        (cd "$ROOT_DIR" && cargo build --bin auth-server --bin posts-server)
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

stop_servers() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        # Give each a few seconds to drain, then make sure it is gone.
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    SERVER_PIDS=()
    local db
    for db in "${PG_DATABASES[@]}"; do
        psql "$PG_ADMIN_URL/postgres" -qAtc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
    PG_DATABASES=()
    if [[ -n "$WORK_DIR" && -d "$WORK_DIR" && -z "$KEEP_WORK_DIR" ]]; then
        rm -rf "$WORK_DIR"
    fi
}

wait_ready() { # name url pid logfile
    local name="$1" url="$2" pid="$3" logfile="$4"
    for _ in $(seq 1 600); do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited before it was ready; its log:"
            tail -n 50 "$logfile" >&2 || true
            return 1
        fi
        if curl -fs -o /dev/null --max-time 2 "$url/readyz"; then
            return 0
        fi
        sleep 0.1
    done
    log "$name was not ready after 60 s; its log:"
    tail -n 50 "$logfile" >&2 || true
    return 1
}

start_servers() {
    ensure_binaries
    WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/e2e-servers.XXXXXX")"
    mkdir -p "$WORK_DIR/keys"
    chmod 700 "$WORK_DIR/keys"

    local auth_port posts_port
    auth_port="$(free_port)"
    posts_port="$(free_port)"
    while [[ "$posts_port" == "$auth_port" ]]; do posts_port="$(free_port)"; done
    AUTH_URL="http://127.0.0.1:$auth_port"
    POSTS_URL="http://127.0.0.1:$posts_port"

    local auth_db="sqlite://$WORK_DIR/auth.db?mode=rwc"
    local posts_db="sqlite://$WORK_DIR/posts.db?mode=rwc"
    if [[ "${E2E_DATABASE:-sqlite}" == postgres ]]; then
        local suffix="e2e_$$_$RANDOM" db
        for db in "auth_$suffix" "posts_$suffix"; do
            psql "$PG_ADMIN_URL/postgres" -qAtc "CREATE DATABASE \"$db\"" >/dev/null
            PG_DATABASES+=("$db")
        done
        auth_db="$PG_ADMIN_URL/auth_$suffix"
        posts_db="$PG_ADMIN_URL/posts_$suffix"
        log "PostgreSQL databases auth_$suffix, posts_$suffix"
    fi

    AUTH_ENV=(
        AUTH_BIND="127.0.0.1:$auth_port"
        AUTH_DATABASE_URL="$auth_db"
        AUTH_KEYS_DIR="$WORK_DIR/keys"
        AUTH_ISSUER="$AUTH_URL"
        AUTH_ACCESS_TOKEN_TTL="${AUTH_ACCESS_TOKEN_TTL:-3600}"
        AUTH_ARGON2_MEMORY_KIB="${AUTH_ARGON2_MEMORY_KIB:-1024}"
        AUTH_ARGON2_ITERATIONS="${AUTH_ARGON2_ITERATIONS:-1}"
        AUTH_LOGIN_MAX_FAILURES="${AUTH_LOGIN_MAX_FAILURES:-1000000}"
        AUTH_LOGIN_IP_BUDGET="${AUTH_LOGIN_IP_BUDGET:-1000000}"
        AUTH_CORS_ORIGINS="${AUTH_CORS_ORIGINS:-$POSTS_URL}"
        AUTH_POSTS_WEB_REDIRECT_URIS="${AUTH_POSTS_WEB_REDIRECT_URIS:-$POSTS_URL/docs/oauth-receiver.html}"
    )
    log "auth-server  $AUTH_URL  (log $WORK_DIR/auth.log)"
    (cd "$WORK_DIR" && exec env "${AUTH_ENV[@]}" "$BIN_DIR/auth-server" >"$WORK_DIR/auth.log" 2>&1) &
    SERVER_PIDS+=($!)
    local auth_pid=$!

    log "posts-server $POSTS_URL  (log $WORK_DIR/posts.log)"
    (
        cd "$WORK_DIR"
        export POSTS_BIND="127.0.0.1:$posts_port"
        export POSTS_DATABASE_URL="$posts_db"
        export POSTS_ISSUER="$AUTH_URL"
        export POSTS_JWKS_URL="$AUTH_URL/.well-known/jwks.json"
        export POSTS_TOKEN_URL="$AUTH_URL/oauth/token"
        export POSTS_AUTHORIZE_URL="$AUTH_URL/oauth/authorize"
        exec "$BIN_DIR/posts-server" >"$WORK_DIR/posts.log" 2>&1
    ) &
    SERVER_PIDS+=($!)
    local posts_pid=$!

    wait_ready auth-server "$AUTH_URL" "$auth_pid" "$WORK_DIR/auth.log"
    wait_ready posts-server "$POSTS_URL" "$posts_pid" "$WORK_DIR/posts.log"
    log "both servers ready"
}

auth_admin() {
    (cd "$WORK_DIR" && env "${AUTH_ENV[@]}" "$BIN_DIR/auth-server" "$@" 2>>"$WORK_DIR/admin.log")
}

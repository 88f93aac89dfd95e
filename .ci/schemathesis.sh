#!/usr/bin/env bash
# Issue 5 point 6: schemathesis against both servers' /openapi.json.
#
# Starts auth-server and posts-server on free ports with fresh databases (SQLite; or
# PostgreSQL with E2E_DATABASE=postgres) and a fresh keys directory, signs up a user, gets
# an access token (password grant), and runs schemathesis on both OpenAPI documents
# (posts-server, and auth-server's /users/* with that token). Checks: no 5xx; status
# codes, content types, headers and bodies as documented; an undocumented method is 405
# with `Allow` (RFC 9110 §15.5.6). Then .ci/openapi_probes.py
# checks what schemathesis cannot reliably provoke: 401 without a token and 413 over the
# body limit (both must be documented), and a NUL in every string input (no 5xx).
# Exits non-zero on any finding; the last line is `schemathesis: N passed, M failed`.
#
# schemathesis is installed from PyPI into a virtual environment under target/ (never
# committed). Tunables: ST_MAX_EXAMPLES (per operation and phase, default 100),
# ST_SEED (default 1, so that a CI failure can be replayed; set ST_SEED=random for a new
# one), ST_CHECKS, ST_VENV (default target/schemathesis-venv), ST_REPORT_DIR (keep the
# JUnit/NDJSON reports there; by default they are in the temp dir, kept on failure).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib-servers.sh

SCHEMATHESIS_VERSION="4.32.5"
ST_VENV="${ST_VENV:-$ROOT_DIR/target/schemathesis-venv}"
ST_MAX_EXAMPLES="${ST_MAX_EXAMPLES:-100}"
ST_SEED="${ST_SEED:-1}"
# The checks that define "done" for the issue; they are listed explicitly so that a
# newer schemathesis cannot silently change the gate.
ST_CHECKS="${ST_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method}"

passed=0
failed=0
finish() {
    local rc=$?
    stop_servers
    if ((rc != 0 && failed == 0)); then failed=1; fi
    echo "schemathesis: $passed passed, $failed failed"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

# --- schemathesis in a venv -------------------------------------------------------------
if [[ ! -x "$ST_VENV/bin/schemathesis" ]] ||
    [[ "$("$ST_VENV/bin/schemathesis" --version 2>/dev/null)" != *"$SCHEMATHESIS_VERSION"* ]]; then
    log "installing schemathesis $SCHEMATHESIS_VERSION into $ST_VENV"
    rm -rf "$ST_VENV"
    python3 -m venv "$ST_VENV"
    "$ST_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
"$ST_VENV/bin/schemathesis" --version

# --- servers, a user, a token -----------------------------------------------------------
start_servers

email="schemathesis-$$@example.com"
password="correct horse battery staple"
curl -fsS -o /dev/null -X POST "$AUTH_URL/users" \
    -H 'Content-Type: application/json' \
    --data "{\"email\":\"$email\",\"password\":\"$password\",\"full_name\":\"Schemathesis\"}"
TOKEN="$(curl -fsS -X POST "$AUTH_URL/oauth/token" \
    --data-urlencode grant_type=password \
    --data-urlencode "username=$email" \
    --data-urlencode "password=$password" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
export TOKEN
# UserInfo needs `openid`, which is granted only when asked for.
USERINFO_TOKEN="$(curl -fsS -X POST "$AUTH_URL/oauth/token" \
    --data-urlencode grant_type=password \
    --data-urlencode "username=$email" \
    --data-urlencode "password=$password" \
    --data-urlencode "scope=openid profile email" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
export USERINFO_TOKEN
log "signed up $email and got access tokens"

# A confidential client, so that /oauth/introspect (RFC 7662: authenticated clients only)
# is exercised beyond its 401.
client_secret="$(auth_admin clients create schemathesis --confidential \
    --grants password,refresh_token,client_credentials |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["client_secret"])')"
BASIC_AUTH="Basic $(printf '%s' "schemathesis:$client_secret" | base64 -w0)"
export TOKEN BASIC_AUTH

# auth-server: the access token goes only to the profile operations (GET /users/me,
# GET /users/{id}), one with `openid` to UserInfo, client credentials only to
# introspection; the sign-up and token endpoints get neither. A run in which an operation only ever answers 401/403 fails
# (missing_auth): the token did not reach it, so it was not really tested.
cat >"$WORK_DIR/auth-server.toml" <<'TOML'
[warnings]
fail-on = ["missing_auth"]

[[operations]]
include-path-regex = "^/users/."
headers = { Authorization = "Bearer ${TOKEN}" }

[[operations]]
include-path = "/oauth/userinfo"
headers = { Authorization = "Bearer ${USERINFO_TOKEN}" }

[[operations]]
include-path = "/oauth/introspect"
headers = { Authorization = "${BASIC_AUTH}" }
TOML
# posts-server: every /posts operation needs the token, so it goes on every request.
cat >"$WORK_DIR/posts-server.toml" <<'TOML'
headers = { Authorization = "Bearer ${TOKEN}" }

[warnings]
fail-on = ["missing_auth"]
TOML

report_dir="${ST_REPORT_DIR:-$WORK_DIR/reports}"
mkdir -p "$report_dir"

run_schemathesis() { # name url [extra args...]
    local name="$1" url="$2"
    shift 2
    log "schemathesis: $name ($url)"
    local seed_args=()
    [[ "$ST_SEED" != random ]] && seed_args=(--seed "$ST_SEED")
    # Run from the temp dir: schemathesis keeps a .schemathesis/ cache in its working dir.
    # One worker: with several, CPython 3.11.7's ast.parse (which hypothesis calls from
    # worker threads) failed here with "AST constructor recursion depth mismatch".
    # cut: a failing case's reproduction can hold a request body of hundreds of KiB.
    if (cd "$WORK_DIR" && "$ST_VENV/bin/schemathesis" --config-file "$WORK_DIR/$name.toml" run "$url" \
        --checks "$ST_CHECKS" \
        --max-examples "$ST_MAX_EXAMPLES" \
        "${seed_args[@]}" \
        --workers 1 \
        --request-timeout 10 \
        --no-color \
        --report junit,ndjson \
        --report-junit-path "$report_dir/$name.junit.xml" \
        --report-ndjson-path "$report_dir/$name.ndjson" \
        "$@") 2>&1 | cut -c1-2000; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        log "schemathesis found problems in $name (reports: $report_dir; server logs: $WORK_DIR)"
        KEEP_WORK_DIR=1
    fi
}

run_schemathesis auth-server "$AUTH_URL/openapi.json"
run_schemathesis posts-server "$POSTS_URL/openapi.json"

# What schemathesis cannot reliably provoke: 401 without a token, 413 over the body
# limit, a NUL in each string input.
log "probes: 401, 413 and NUL inputs against the documents"
if "$ST_VENV/bin/python" .ci/openapi_probes.py "$AUTH_URL" "$POSTS_URL" "$TOKEN"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    KEEP_WORK_DIR=1
fi

((failed == 0))

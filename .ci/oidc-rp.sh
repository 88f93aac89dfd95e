#!/usr/bin/env bash
# Issue 12 point 7: OpenID Connect conformance with real relying-party libraries.
#
# Starts auth-server and posts-server on free ports with fresh databases (SQLite; or
# PostgreSQL with E2E_DATABASE=postgres) and keys, registers relying-party clients, signs up
# a user, and drives the whole sign-in with two independent libraries, each acting as an
# unmodified relying party while the test plays the browser over plain HTTP:
#   - Node openid-client 6 (e2e/oidc-rp/openid-client.test.mjs, locked in
#     e2e/oidc-rp/package-lock.json, installed with npm ci), with its non-repudiation
#     checks on: discovery, PKCE + state + nonce + max_age, login and consent pages, code
#     exchange, ID token signature and claims, UserInfo, refresh, prompt=none, logout.
#   - Python authlib (e2e/oidc-rp/authlib_rp.py): OAuth2Session with S256, the same walk,
#     the ID token verified against the JWKS and by CodeIDToken (nonce, at_hash), UserInfo,
#     refresh, logout.
# and checks the discovery document strictly (e2e/oidc-rp/discovery_check.py: idpyoidc's
# ProviderConfigurationResponse.verify() and authlib's metadata validation, on the document
# of a second auth-server whose issuer is https, since both refuse a plain-HTTP issuer).
#
# The Python libraries are installed from e2e/oidc-rp/requirements.txt (exact versions and
# hashes) into a virtual environment under target/ (OIDC_RP_VENV), never committed.
# Exits non-zero on any failure and keeps the server logs then; the last line is
# `oidc-rp: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib-servers.sh

RP_DIR="$ROOT_DIR/e2e/oidc-rp"
OIDC_RP_VENV="${OIDC_RP_VENV:-$ROOT_DIR/target/oidc-rp-venv}"
REQUIREMENTS="$RP_DIR/requirements.txt"

passed=0
failed=0
finish() {
    local rc=$?
    ((rc == 0)) || KEEP_WORK_DIR=1
    if ((rc != 0)) && [[ -n "$WORK_DIR" ]]; then
        log "server logs kept: $WORK_DIR/auth.log, $WORK_DIR/posts.log, $WORK_DIR/auth-https.log"
    fi
    stop_servers
    if ((rc != 0 && failed == 0)); then failed=1; fi
    echo "oidc-rp: $passed passed, $failed failed"
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

# --- the libraries, locked --------------------------------------------------------------------
log "npm ci (e2e/oidc-rp/)"
(cd "$RP_DIR" && npm ci --no-audit --no-fund --loglevel=error)

# Rebuilt whenever the lock changes: the venv keeps a copy of the lock it was made from.
if ! cmp -s "$REQUIREMENTS" "$OIDC_RP_VENV/requirements.txt" 2>/dev/null; then
    log "installing the Python relying-party libraries into $OIDC_RP_VENV"
    rm -rf "$OIDC_RP_VENV"
    python3 -m venv "$OIDC_RP_VENV"
    "$OIDC_RP_VENV/bin/pip" install --quiet --disable-pip-version-check \
        --require-hashes --no-deps -r "$REQUIREMENTS"
    cp "$REQUIREMENTS" "$OIDC_RP_VENV/requirements.txt"
fi
PYTHON="$OIDC_RP_VENV/bin/python"

# --- servers, clients, a user -----------------------------------------------------------------
start_servers

# A second auth-server, on its own SQLite file and keys, whose issuer is https: only its
# discovery document is read, by the strict checkers.
HTTPS_ISSUER="https://auth.oidc-rp.test"
https_port="$(free_port)"
HTTPS_AUTH_URL="http://127.0.0.1:$https_port"
mkdir -p "$WORK_DIR/keys-https"
chmod 700 "$WORK_DIR/keys-https"
log "auth-server  $HTTPS_AUTH_URL, issuer $HTTPS_ISSUER  (log $WORK_DIR/auth-https.log)"
(cd "$WORK_DIR" && exec env "${AUTH_ENV[@]}" \
    AUTH_BIND="127.0.0.1:$https_port" \
    AUTH_DATABASE_URL="sqlite://$WORK_DIR/auth-https.db?mode=rwc" \
    AUTH_KEYS_DIR="$WORK_DIR/keys-https" \
    AUTH_ISSUER="$HTTPS_ISSUER" \
    "$BIN_DIR/auth-server" >"$WORK_DIR/auth-https.log" 2>&1) &
SERVER_PIDS+=($!)
wait_ready "auth-server (https issuer)" "$HTTPS_AUTH_URL" "$!" "$WORK_DIR/auth-https.log"

# Nothing listens at these: a relying party only needs the URL the browser is sent to.
export RP_REDIRECT_URI="http://127.0.0.1:9/oidc-rp/callback"
export RP_POST_LOGOUT_REDIRECT_URI="http://127.0.0.1:9/oidc-rp/signed-out"
json_field() { "$PYTHON" -c "import json, sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
create_client() { # client_id scopes [extra args...]; prints {"client_id","client_secret"?}
    local id="$1" scopes="$2"
    shift 2
    auth_admin clients create "$id" "$@" \
        --grants authorization_code,refresh_token \
        --scopes "$scopes" \
        --redirect-uri "$RP_REDIRECT_URI" \
        --post-logout-redirect-uri "$RP_POST_LOGOUT_REDIRECT_URI"
}
# Each library gets a confidential and a public client; one of each pair is not trusted,
# so that the consent page is part of the walk. node-confidential may also ask for an API
# scope, so that consent for a scope not yet allowed is asked again.
export NODE_CONFIDENTIAL_ID=node-confidential NODE_PUBLIC_ID=node-public
export PY_CONFIDENTIAL_ID=py-confidential PY_PUBLIC_ID=py-public
oidc_scopes="openid profile email"
NODE_CONFIDENTIAL_SECRET="$(create_client node-confidential "$oidc_scopes posts:read" \
    --confidential --name "Node RP" | json_field client_secret)"
create_client node-public "$oidc_scopes" --trusted >/dev/null
PY_CONFIDENTIAL_SECRET="$(create_client py-confidential "$oidc_scopes" --confidential --trusted |
    json_field client_secret)"
create_client py-public "$oidc_scopes" --name "Python RP" >/dev/null
export NODE_CONFIDENTIAL_SECRET PY_CONFIDENTIAL_SECRET
log "registered node-confidential, node-public (trusted), py-confidential (trusted), py-public"

export RP_EMAIL="oidc-rp-$$@example.com"
export RP_PASSWORD="correct horse battery staple"
RP_USER_ID="$(curl -fsS -X POST "$AUTH_URL/users" -H 'Content-Type: application/json' \
    --data "{\"email\":\"$RP_EMAIL\",\"password\":\"$RP_PASSWORD\",\"full_name\":\"Relying Party\"}" |
    json_field id)"
export RP_USER_ID AUTH_URL POSTS_URL
log "signed up $RP_EMAIL ($RP_USER_ID)"

# --- the relying parties ----------------------------------------------------------------------
export OIDC_RP_COUNTS="$WORK_DIR/counts"
: >"$OIDC_RP_COUNTS"
run_part() { # name command...: counts its tests; one that dies without counting fails once
    local name="$1" before after
    shift
    before="$(wc -l <"$OIDC_RP_COUNTS")"
    log "$name"
    if ! "$@"; then
        after="$(wc -l <"$OIDC_RP_COUNTS")"
        ((after > before)) || echo "0 1" >>"$OIDC_RP_COUNTS"
        log "$name failed"
    fi
}
run_part "openid-client (Node)" timeout 120 node "$RP_DIR/openid-client.test.mjs"
run_part "authlib (Python)" timeout 120 "$PYTHON" "$RP_DIR/authlib_rp.py"
run_part "discovery (idpyoidc, authlib)" timeout 60 \
    "$PYTHON" "$RP_DIR/discovery_check.py" "$AUTH_URL" "$HTTPS_AUTH_URL" "$HTTPS_ISSUER"

while read -r p f; do
    passed=$((passed + p))
    failed=$((failed + f))
done <"$OIDC_RP_COUNTS"
((failed == 0 && passed > 0))

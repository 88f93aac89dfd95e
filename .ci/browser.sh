#!/usr/bin/env bash
# The browser tests, in a real headless Chromium: Swagger UI's Authorize flows on both
# servers (e2e/swagger-authorize.test.mjs) and the sign-in pages of auth-server
# (e2e/sign-in-pages.test.mjs).
#
# Installs Debian's chromium with apt when /usr/bin/chromium is missing (never a
# downloaded browser), installs e2e/'s locked dependencies (playwright-core) with npm ci,
# starts auth-server and posts-server on free ports with fresh databases and keys (the
# posts-server's Swagger flows pointed at this auth-server, whose CORS allows the
# posts-server origin), registers a client for the pages test, and runs both tests.
# Screenshots (of every page, and of failures) go to a temp dir whose path is printed (or
# E2E_ARTIFACTS).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib-servers.sh

summary_printed=""
finish() {
    local rc=$?
    stop_servers
    if [[ -z "$summary_printed" ]]; then
        # Something failed before the test could report.
        echo "browser: 0 passed, 1 failed"
        ((rc != 0)) || rc=1
    fi
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]]; then
    log "installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi
"$CHROMIUM" --version 2>/dev/null

log "npm ci (e2e/)"
(cd e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)

start_servers

# A client that is not trusted, so the pages test sees the consent page. Its redirect URI
# is a loopback one without a port: the test listens on a port of its own (RFC 8252 §7.3).
pages_redirect_uri="http://127.0.0.1/e2e-callback"
auth_admin clients create e2e-pages --grants authorization_code \
    --scopes "openid profile posts:read" --redirect-uri "$pages_redirect_uri" \
    --name "E2E Pages" >/dev/null

export E2E_ARTIFACTS="${E2E_ARTIFACTS:-$(mktemp -d "${TMPDIR:-/tmp}/e2e-artifacts.XXXXXX")}"
rc=0
AUTH_URL="$AUTH_URL" POSTS_URL="$POSTS_URL" CHROMIUM="$CHROMIUM" E2E_SUMMARY_FILE="$WORK_DIR/swagger" \
    timeout 300 node e2e/swagger-authorize.test.mjs || rc=$?
AUTH_URL="$AUTH_URL" CHROMIUM="$CHROMIUM" E2E_SUMMARY_FILE="$WORK_DIR/pages" \
    E2E_CLIENT_ID=e2e-pages E2E_REDIRECT_URI="$pages_redirect_uri" \
    timeout 300 node e2e/sign-in-pages.test.mjs || rc=$?
if ((rc != 0)); then
    log "server logs: $WORK_DIR/auth.log, $WORK_DIR/posts.log"
    KEEP_WORK_DIR=1
fi
log "screenshots: $E2E_ARTIFACTS"
# One summary line for both tests: "browser: N passed, M failed".
passed=0
failed=0
for file in "$WORK_DIR/swagger" "$WORK_DIR/pages"; do
    if [[ -s "$file" ]]; then
        read -r _ p _ f _ <"$file"
        passed=$((passed + p))
        failed=$((failed + f))
    else
        failed=$((failed + 1))
    fi
done
stop_servers
echo "browser: $passed passed, $failed failed"
summary_printed=1
if ((failed > 0 && rc == 0)); then rc=1; fi
exit "$rc"

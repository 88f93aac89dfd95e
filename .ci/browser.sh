#!/usr/bin/env bash
# Issue 6 point 5: Swagger UI's Authorize flow on both servers in a real headless Chromium.
#
# Installs Debian's chromium with apt when /usr/bin/chromium is missing (never a
# downloaded browser), installs e2e/'s locked dependencies (playwright-core) with npm ci,
# starts auth-server and posts-server on free ports with fresh databases and keys (the
# posts-server's Swagger password flow pointed at this auth-server, whose CORS allows the
# posts-server origin), and runs e2e/swagger-authorize.test.mjs.
# Screenshots of failures go to a temp dir whose path is printed (or E2E_ARTIFACTS).
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

rc=0
summary_file="$WORK_DIR/summary"
AUTH_URL="$AUTH_URL" POSTS_URL="$POSTS_URL" CHROMIUM="$CHROMIUM" E2E_SUMMARY_FILE="$summary_file" \
    timeout 300 node e2e/swagger-authorize.test.mjs || rc=$?
if ((rc != 0)); then
    log "server logs: $WORK_DIR/auth.log, $WORK_DIR/posts.log"
    KEEP_WORK_DIR=1
fi
if [[ -s "$summary_file" ]]; then
    summary="$(cat "$summary_file")"
    stop_servers
    echo "$summary"
    summary_printed=1
fi
exit "$rc"

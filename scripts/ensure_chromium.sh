#!/usr/bin/env bash
# Make sure a Chromium for the browser tests (tests/browser) is installed at /usr/bin/chromium.
#
#   bash scripts/ensure_chromium.sh
#
# Idempotent and instant when Chromium is already there. Otherwise installs Debian's `chromium` package with apt-get
# (needs root on Debian/Ubuntu). Playwright's own browser download (`playwright install`) is never used: the tests
# launch this system Chromium through executable_path. REPORTLENS_CHROMIUM overrides the path (then nothing is
# installed). Progress goes to stderr.
set -euo pipefail

CHROMIUM="${REPORTLENS_CHROMIUM:-/usr/bin/chromium}"
log() { echo "ensure_chromium: $*" >&2; }

if [[ -x "$CHROMIUM" ]]; then
    exit 0
fi
if [[ -n "${REPORTLENS_CHROMIUM:-}" ]]; then
    log "REPORTLENS_CHROMIUM=$CHROMIUM is not an executable file."
    exit 1
fi
if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    log "$CHROMIUM is missing and cannot be installed here (apt-get needs root on Debian/Ubuntu)."
    log "Install it with: sudo apt-get install chromium (or set REPORTLENS_CHROMIUM to a Chromium binary)."
    log "Without it the browser tests (tests/browser) skip, and fail when CI is set."
    exit 1
fi
log "installing chromium with apt-get (quiet) ..."
apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
if [[ ! -x "$CHROMIUM" ]]; then
    log "apt-get finished but $CHROMIUM is still missing."
    exit 1
fi
log "installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"

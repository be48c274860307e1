#!/usr/bin/env bash
# Install (once) a Label Studio server for the round-trip integration test and print the path of its executable.
#
#   export REPORTLENS_TEST_LS_BIN="$(bash scripts/ensure_labelstudio.sh)"
#
# Label Studio pins packages that conflict with the app's (pyarrow<25, older Django stack ...), so it gets its own
# virtual environment: <repo>/.venv/labelstudio (inside the git-ignored .venv; REPORTLENS_LS_VENV overrides it).
# Idempotent: when label-studio ${REPORTLENS_LS_VERSION:-1.23.2} is already installed there this takes a fraction of a
# second (it reads the installed version from the package metadata; `label-studio --version` would start a server).
# REPORTLENS_TEST_LS_BIN already set to an executable: print it and do nothing else.
# Progress goes to stderr; only the path goes to stdout.
set -euo pipefail

log() { echo "ensure_labelstudio: $*" >&2; }

if [[ -n "${REPORTLENS_TEST_LS_BIN:-}" ]]; then
    if [[ -x "$REPORTLENS_TEST_LS_BIN" ]]; then
        echo "$REPORTLENS_TEST_LS_BIN"
        exit 0
    fi
    log "REPORTLENS_TEST_LS_BIN=$REPORTLENS_TEST_LS_BIN is not an executable file; unset it to install one."
    exit 1
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REPORTLENS_LS_VENV:-$ROOT/.venv/labelstudio}"
VERSION="${REPORTLENS_LS_VERSION:-1.23.2}"
PYTHON="${PYTHON:-python3}"
BIN="$VENV/bin/label-studio"

installed_version() {
    [[ -x "$VENV/bin/python" && -x "$BIN" ]] || return 1
    "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("label-studio"))' 2>/dev/null
}

# a venv copied or moved from another folder keeps the old interpreter path in its scripts' first line: reinstall
FORCE=()
if [[ -x "$BIN" ]]; then
    interp="$(head -n 1 "$BIN")"; interp="${interp#\#!}"
    if [[ ! -x "$interp" ]]; then
        log "$BIN starts with #!$interp, which does not exist (a moved venv?): reinstalling label-studio"
        FORCE=(--force-reinstall --no-deps)
    fi
fi

if [[ ${#FORCE[@]} -eq 0 && "$(installed_version || true)" == "$VERSION" ]]; then
    echo "$BIN"
    exit 0
fi

t0=$SECONDS
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV ..."
    "$PYTHON" -m venv "$VENV"
fi
log "installing label-studio==$VERSION into $VENV (quiet; a few minutes the first time) ..."
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${FORCE[@]}" "label-studio==$VERSION" \
        >"$VENV/pip-install.log" 2>&1; then
    tail -n 30 "$VENV/pip-install.log" >&2
    log "pip could not install label-studio==$VERSION (log: $VENV/pip-install.log). It needs PyPI access and"
    log "Python 3.10-3.13."
    exit 1
fi
got="$(installed_version || true)"
if [[ "$got" != "$VERSION" ]]; then
    log "after pip install, $BIN reports version '${got:-none}', expected $VERSION."
    exit 1
fi
log "installed label-studio $VERSION in $((SECONDS - t0)) s"
echo "$BIN"

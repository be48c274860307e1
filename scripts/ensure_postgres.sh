#!/usr/bin/env bash
# Start (once) a throwaway PostgreSQL for the tests and print its SQLAlchemy URL on stdout.
#
#   export REPORTLENS_TEST_PG_URL="$(scripts/ensure_postgres.sh)"
#
# - REPORTLENS_TEST_PG_URL already set: print it and do nothing else.
# - No PostgreSQL binaries: apt-get install postgresql (Debian/Ubuntu, needs root).
# - Cluster in <repo>/.pg/data (git-ignored), owned by the `postgres` OS user when run as root (initdb refuses
#   root), listening on 127.0.0.1:${REPORTLENS_PG_PORT:-55432} only, trust auth on loopback. Idempotent: when the
#   server already runs this takes a fraction of a second. REPORTLENS_PG_DIR overrides the folder. Stop it with: pg_ctl -D .pg/data stop (as that user).
# Progress goes to stderr; only the URL goes to stdout.
set -euo pipefail

if [[ -n "${REPORTLENS_TEST_PG_URL:-}" ]]; then
    echo "$REPORTLENS_TEST_PG_URL"
    exit 0
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGROOT="${REPORTLENS_PG_DIR:-$ROOT/.pg}"
PGDATA="$PGROOT/data"
PORT="${REPORTLENS_PG_PORT:-55432}"
DB="reportlens_test"
URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"
SOCKDIR="/tmp"

log() { echo "ensure_postgres: $*" >&2; }

find_bindir() {
    local d
    if command -v pg_config >/dev/null 2>&1 && [[ -x "$(pg_config --bindir)/initdb" ]]; then
        pg_config --bindir
        return 0
    fi
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && { echo "$d"; return 0; }
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

BINDIR="$(find_bindir || true)"
if [[ -z "$BINDIR" ]]; then
    if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        log "no PostgreSQL binaries found and cannot apt-get install them (need root on Debian/Ubuntu)."
        log "Install PostgreSQL, or set REPORTLENS_TEST_PG_URL to an existing server."
        exit 1
    fi
    log "installing postgresql with apt-get (quiet) ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    BINDIR="$(find_bindir)"
fi

# Run PostgreSQL tools as the postgres OS user when we are root.
as_owner() {
    if [[ "$(id -u)" -eq 0 ]]; then
        if ! id postgres >/dev/null 2>&1; then
            useradd --system --home-dir "$PGROOT" --shell /usr/sbin/nologin postgres
        fi
        if command -v runuser >/dev/null 2>&1; then
            (cd / && runuser -u postgres -- "$@")
        else
            (cd / && su -s /bin/sh postgres -c "$(printf '%q ' "$@")")
        fi
    else
        "$@"
    fi
}

# The postgres user must be able to reach the cluster folder; a repo under /root is not reachable, so then the
# cluster lives under /tmp instead (one per repo path).
if [[ "$(id -u)" -eq 0 ]] && ! as_owner test -x "$ROOT"; then
    PGROOT="/tmp/reportlens-pg-$(printf '%s' "$ROOT" | md5sum | cut -c1-10)"
    PGDATA="$PGROOT/data"
    log "postgres user cannot enter $ROOT; using $PGROOT"
fi

mkdir -p "$PGROOT"
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    log "initdb $PGDATA ..."
    rm -rf "$PGDATA"
    mkdir -p "$PGDATA"
    [[ "$(id -u)" -eq 0 ]] && chown -R postgres: "$PGROOT"
    chmod 700 "$PGDATA"
    as_owner "$BINDIR/initdb" -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
        >"$PGROOT/initdb.log" 2>&1 || { cat "$PGROOT/initdb.log" >&2; exit 1; }
fi
[[ "$(id -u)" -eq 0 ]] && chown postgres: "$PGROOT"

PSQL=("$BINDIR/psql" -h 127.0.0.1 -p "$PORT" -U postgres -X -q -t -A)
if "${PSQL[@]}" -d postgres -c "select 1" >/dev/null 2>&1; then
    log "a PostgreSQL server already answers on 127.0.0.1:$PORT; using it"
elif ! as_owner "$BINDIR/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    log "starting PostgreSQL on 127.0.0.1:$PORT ..."
    as_owner "$BINDIR/pg_ctl" -D "$PGDATA" -w -t 60 -l "$PGROOT/log" \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCKDIR -c fsync=off -c synchronous_commit=off" start \
        >/dev/null || { tail -n 20 "$PGROOT/log" >&2; exit 1; }
fi

for _ in $(seq 1 50); do
    "${PSQL[@]}" -d postgres -c "select 1" >/dev/null 2>&1 && break
    sleep 0.2
done
if [[ "$("${PSQL[@]}" -d postgres -c "select 1 from pg_database where datname = '$DB'")" != "1" ]]; then
    "${PSQL[@]}" -d postgres -c "create database $DB" >/dev/null
fi
echo "$URL"

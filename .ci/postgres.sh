#!/usr/bin/env bash
# Install (when missing) and start a throwaway PostgreSQL server on 127.0.0.1 for the test suite, create a database
# and print the SQLAlchemy URL to use on stdout. Progress goes to stderr, so callers can do:
#   export QUOTEBOT_TEST_POSTGRES_URL="$(.ci/postgres.sh)"
# Running it again reuses the server if it is already up. `.ci/postgres.sh stop` stops it.
# Settings (env): QUOTEBOT_PG_PORT (54329), QUOTEBOT_PG_DIR (/tmp/quotebot-pg), QUOTEBOT_PG_DB (quotebot_test).
set -euo pipefail

PORT="${QUOTEBOT_PG_PORT:-54329}"
DATA="${QUOTEBOT_PG_DIR:-/tmp/quotebot-pg}"
DB="${QUOTEBOT_PG_DB:-quotebot_test}"

log() { echo "postgres.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "root (or sudo) is needed to install PostgreSQL"
        exit 1
    fi
}

bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

BIN="$(bin_dir)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
    log "installing the Debian package postgresql"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    BIN="$(bin_dir)"
fi
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
    log "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin"
    exit 1
fi

# PostgreSQL refuses to run as root: as root, run the server as the postgres user the package created.
if [ "$(id -u)" = 0 ]; then
    RUN=(runuser -u postgres --)
    mkdir -p "$DATA"
    chown postgres: "$DATA"
    chmod 700 "$DATA"
else
    RUN=()
    mkdir -p "$DATA"
    chmod 700 "$DATA"
fi

if [ "${1:-}" = "stop" ]; then
    "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA" -m fast stop >&2 || true
    exit 0
fi

if [ ! -s "$DATA/PG_VERSION" ]; then
    log "initialising a cluster in $DATA"
    "${RUN[@]}" "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
fi

if "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    log "server already running ($DATA)"
else
    log "starting the server on 127.0.0.1:$PORT"
    # A test server: durability is not needed, speed is.
    "${RUN[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c fsync=off -c synchronous_commit=off \
-c full_page_writes=off -c max_connections=200" >&2
fi

PSQL=("${RUN[@]}" "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -tAq)
if [ "$("${PSQL[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
    log "creating database $DB"
    "${PSQL[@]}" -c "CREATE DATABASE \"$DB\"" >&2
fi

echo "postgresql+asyncpg://postgres@127.0.0.1:$PORT/$DB"

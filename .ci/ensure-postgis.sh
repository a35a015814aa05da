#!/usr/bin/env bash
# Make sure a PostgreSQL server with the PostGIS extension is reachable for the tests at
#   ${RESCUEHUB_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres}
# (an admin URL: the tests CREATE DATABASE temporary databases and CREATE EXTENSION postgis).
#
# If nothing answers there (local host only): start the existing Debian cluster on that port,
# or create one (pg_createcluster 15 main --start). A cluster this script creates gets
# "host all all 127.0.0.1/32 trust" at the top of its pg_hba.conf if a password would be
# needed; an existing cluster is changed that way only with RESCUEHUB_PG_TRUST_LOCAL=1.
set -euo pipefail

say() { printf '[postgis] %s\n' "$*"; }
die() { printf '[postgis] ERROR: %s\n' "$*" >&2; exit 1; }

URL=${RESCUEHUB_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres}
# SQLAlchemy URL -> libpq URI: drop the "+driver" part.
PSQL_URL=$(printf '%s' "$URL" | sed -E 's#^postgres(ql)?\+[A-Za-z0-9_]+://#postgresql://#')
# Host and port, for deciding whether a local cluster is ours to start.
rest=${PSQL_URL#*://}
rest=${rest%%[/?]*}
rest=${rest##*@}
HOST=${rest%%:*}
PORT=5432
[[ "$rest" == *:* ]] && PORT=${rest##*:}
[ -n "$HOST" ] || HOST=localhost
SAFE_URL=$(printf '%s' "$URL" | sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#')

command -v psql >/dev/null 2>&1 || die "psql not found: run .ci/setup.sh --test (installs postgresql-15)"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        SUDO=(__no_root__)
    fi
fi
as_root() {
    if [ "${SUDO[*]-}" = "__no_root__" ]; then
        die "need root to run '$*': run as root, configure sudo, or point RESCUEHUB_TEST_DATABASE_URL at a running PostGIS server"
    fi
    "${SUDO[@]}" "$@"
}

ready() { pg_isready -q -t 3 -d "$PSQL_URL" >/dev/null 2>&1; }
is_local() { [[ "$HOST" == 127.0.0.1 || "$HOST" == localhost || "$HOST" == ::1 || "$HOST" == /* ]]; }

CREATED=""
CLUSTER=""
if ready; then
    say "server is up at $HOST:$PORT"
else
    is_local || die "no PostgreSQL server answers at $HOST:$PORT ($SAFE_URL); start it or change RESCUEHUB_TEST_DATABASE_URL"
    command -v pg_lsclusters >/dev/null 2>&1 || die "pg_lsclusters not found: run .ci/setup.sh --test (installs postgresql-15)"
    # Columns: Ver Cluster Port Status Owner Datadir Logfile
    CLUSTER=$(pg_lsclusters -h | awk -v p="$PORT" '$3 == p { print $1 " " $2; exit }')
    if [ -n "$CLUSTER" ]; then
        say "starting cluster $CLUSTER (port $PORT)"
        # shellcheck disable=SC2086  # "$CLUSTER" is "<version> <name>"
        as_root pg_ctlcluster --skip-systemctl-redirect $CLUSTER start ||
            die "could not start cluster $CLUSTER: see /var/log/postgresql/postgresql-${CLUSTER// /-}.log"
    elif pg_lsclusters -h | awk '$1 == 15 && $2 == "main" { f = 1 } END { exit !f }'; then
        die "cluster 15/main exists but not on port $PORT: start it, or set RESCUEHUB_TEST_DATABASE_URL to its port"
    else
        say "creating cluster 15/main on port $PORT"
        as_root pg_createcluster 15 main -p "$PORT" --start
        CLUSTER="15 main"
        CREATED=1
    fi
    for _ in $(seq 1 30); do
        ready && break
        sleep 1
    done
    ready || die "PostgreSQL at $HOST:$PORT did not become ready in 30 s"
    say "server is up at $HOST:$PORT"
fi

q() { psql "$PSQL_URL" -w -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

if ! err=$(q 'SELECT 1' 2>&1 >/dev/null); then
    if is_local && { [ -n "$CREATED" ] || [ "${RESCUEHUB_PG_TRUST_LOCAL:-}" = 1 ]; } &&
        [[ "$err" == *password* || "$err" == *authentication* ]]; then
        [ -n "$CLUSTER" ] ||
            CLUSTER=$(pg_lsclusters -h | awk -v p="$PORT" '$3 == p { print $1 " " $2; exit }')
        [ -n "$CLUSTER" ] || die "cannot tell which local cluster listens on port $PORT"
        hba="/etc/postgresql/${CLUSTER// //}/pg_hba.conf"
        say "adding 'host all all 127.0.0.1/32 trust' to the top of $hba"
        as_root sed -i '1i host all all 127.0.0.1/32 trust  # added by Township Rescue Hub .ci/ensure-postgis.sh (tests)' "$hba"
        # shellcheck disable=SC2086  # "$CLUSTER" is "<version> <name>"
        as_root pg_ctlcluster --skip-systemctl-redirect $CLUSTER reload
        sleep 1
        err=$(q 'SELECT 1' 2>&1 >/dev/null) || die "still cannot connect to $SAFE_URL: $err"
    else
        cat >&2 <<EOF
[postgis] ERROR: cannot connect to $SAFE_URL without a password:
[postgis]   $err
[postgis] Either set RESCUEHUB_TEST_DATABASE_URL to a superuser URL that works, e.g.
[postgis]   export RESCUEHUB_TEST_DATABASE_URL='postgresql+psycopg://postgres:PASSWORD@127.0.0.1:$PORT/postgres'
[postgis] or allow password-less local TCP access for the tests: put
[postgis]   host all all 127.0.0.1/32 trust
[postgis] at the top of the cluster's pg_hba.conf and reload it (or rerun this script as root
[postgis] with RESCUEHUB_PG_TRUST_LOCAL=1 to have it do exactly that).
EOF
        exit 1
    fi
fi

version=$(q 'SHOW server_version' | awk '{ print $1 }')
if [ "$(q "SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")" != 1 ]; then
    die "PostgreSQL $version at $HOST:$PORT has no PostGIS extension: apt-get install postgresql-${version%%.*}-postgis-3"
fi
say "PostgreSQL $version with PostGIS $(q "SELECT default_version FROM pg_available_extensions WHERE name = 'postgis'") available at $SAFE_URL"

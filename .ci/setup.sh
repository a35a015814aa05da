#!/usr/bin/env bash
# One-shot, idempotent setup of Township Rescue Hub on Debian 12.
#
#   .ci/setup.sh           Debian packages, .venv with the Python packages of requirements.txt
#                          (exact versions, hashes checked), the hub itself, npm assets
#   .ci/setup.sh --test    the same from requirements-test.txt, and PostgreSQL + PostGIS,
#                          Chromium, Redis
#
# Run as root or as a user with sudo. A second run with nothing to do takes about a second.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,8s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

TEST=0
for arg in "$@"; do
    case "$arg" in
        --test) TEST=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $arg" ;;
    esac
done

# ---------------------------------------------------------------- privileges
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
        die "need root to run '$*': run this script as root or install and configure sudo"
    fi
    "${SUDO[@]}" "$@"
}

# ---------------------------------------------------------------- python choice
# python3.11 if present, else python3; must be >= 3.11.
PY=""
for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1; then
        PY=$(command -v "$cand")
        break
    fi
done

# ---------------------------------------------------------------- Debian packages
is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# make: the Makefile's targets (`make run`, `make test`) and .ci/run need it.
want=(make libsqlite3-mod-spatialite mosquitto mosquitto-clients)
# Node and npm may come from elsewhere (e.g. NodeSource, whose nodejs bundles npm and
# conflicts with Debian's npm): only ask Debian for what is not on PATH.
command -v node >/dev/null 2>&1 || want+=(nodejs)
command -v npm >/dev/null 2>&1 || want+=(npm)
if [ -z "$PY" ]; then
    want+=(python3 python3-venv)
elif [[ "$PY" == /usr/bin/* ]] && ! "$PY" -c 'import ensurepip' >/dev/null 2>&1; then
    # Debian splits venv/ensurepip out of python3.
    want+=(python3-venv)
fi
if [ "$TEST" = 1 ]; then
    # fonts-noto-cjk: Chinese text in the browser tests and their screenshots.
    want+=(postgresql-15 postgresql-15-postgis-3 chromium redis-server fonts-noto-cjk)
fi

missing=()
for pkg in "${want[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

JUST_INSTALLED_POSTGRES=0
if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install by hand: ${missing[*]}"
    for pkg in "${missing[@]}"; do
        [ "$pkg" = postgresql-15 ] && JUST_INSTALLED_POSTGRES=1
    done
    say "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
else
    say "Debian packages: all present (${#want[@]})"
fi

# ---------------------------------------------------------------- Python venv
if [ -z "$PY" ]; then
    PY=$(command -v python3 || true)
fi
[ -n "$PY" ] || die "no python3 found (need Python >= 3.11)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$PY is Python $("$PY" -c 'import platform; print(platform.python_version())'); need >= 3.11 (install python3.11 or put it first on PATH)"

VENV=.venv
STAMP=$VENV/.setup-stamp
if [ -e "$VENV" ] && ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
    say "existing $VENV is broken or older than Python 3.11: recreating it"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $PY ($("$PY" -c 'import platform; print(platform.python_version())'))"
    "$PY" -m venv "$VENV" || die "'$PY -m venv' failed (on Debian: apt-get install python3-venv)"
fi

# Python packages come from locks with exact versions and hashes (requirements*.txt, made from
# pyproject.toml by `make lock`), so a release upstream cannot change a fresh install: pip and
# the build backend (setuptools) from requirements-build.txt, then the hub's packages. The
# project itself is installed editable on top, without dependencies and with that backend (no
# build isolation: pip would fetch the backend again, unchecked).
extras="base"
BUILD_LOCK=requirements-build.txt
LOCK=requirements.txt
if [ "$TEST" = 1 ]; then
    extras="test"
    LOCK=requirements-test.txt
fi
for lock in "$BUILD_LOCK" "$LOCK"; do
    [ -f "$lock" ] || die "$lock is missing: restore it from git, or run 'make lock' to make it"
done
# Fast path: stamp newer than the locks and pyproject.toml, and made with the test lock if we
# need it (the test lock holds every package of the base one).
if [ -f "$STAMP" ] && [ "$STAMP" -nt "$LOCK" ] && [ "$STAMP" -nt "$BUILD_LOCK" ] &&
    [ "$STAMP" -nt pyproject.toml ] &&
    { [ "$extras" = base ] || grep -qx test "$STAMP"; }; then
    say "Python packages: up to date ($STAMP)"
else
    # pip itself and the build backend at known versions too, not whatever was released today.
    say "installing pip and setuptools from $BUILD_LOCK (exact versions, hashes checked)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes \
        -r "$BUILD_LOCK" ||
        die "pip could not install $BUILD_LOCK: check the network to the package index"
    say "installing Python packages from $LOCK (exact versions, hashes checked)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes \
        -r "$LOCK" || die "pip could not install $LOCK: check the network to the package index"
    say "installing the hub itself: pip install --no-deps --no-build-isolation -e ."
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
        --no-build-isolation -e .
    echo "$extras" >"$STAMP"
fi

# ---------------------------------------------------------------- npm assets
# The app serves node_modules/leaflet/dist, node_modules/socket.io-client/dist and
# node_modules/jsqr/dist (the depot pages' QR reader).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ] ||
    [ ! -f node_modules/leaflet/dist/leaflet.js ] ||
    [ ! -f node_modules/socket.io-client/dist/socket.io.min.js ] ||
    [ ! -f node_modules/jsqr/dist/jsQR.js ]; then
    say "installing npm packages: npm ci"
    npm ci --no-audit --no-fund
    touch node_modules
else
    say "npm packages: up to date (node_modules)"
fi

# ---------------------------------------------------------------- test services
if [ "$TEST" = 1 ]; then
    if [ "$JUST_INSTALLED_POSTGRES" = 1 ]; then
        # The cluster that apt just created is ours: allow ensure-postgis.sh to give
        # 127.0.0.1 password-less access to it.
        export RESCUEHUB_PG_TRUST_LOCAL=1
    fi
    say "checking PostgreSQL + PostGIS"
    bash .ci/ensure-postgis.sh
fi

say "done"

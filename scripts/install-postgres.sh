#!/usr/bin/env bash
# A local PostgreSQL 15 server with pgvector, for the server half of the test
# suite (TEST_DATABASE_URL) and the benchmark. Debian 12 ships PostgreSQL 15
# but no pgvector binary package, so pgvector is built from Debian's own source
# package (suite trixie) with PGXS. Idempotent: skips whatever is already there.
# Also PgBouncer (Debian's package; the tests start their own, docs/scaling.md).
# Run as root. Prints the superuser URL tests use on its last line.
set -euo pipefail

PG_MAJOR=${PG_MAJOR:-15}
PG_PORT=${PG_PORT:-5432}
TEST_PASSWORD=${TEST_PG_PASSWORD:-sheratan-test-superuser}
export DEBIAN_FRONTEND=noninteractive

need_apt_update=1
apt_install() {
  if [ "$need_apt_update" = 1 ]; then apt-get update -qq; need_apt_update=0; fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
for pkg in "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" build-essential pgbouncer; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

pg_config="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
extdir=$("$pg_config" --sharedir)/extension
if [ ! -f "$extdir/vector.control" ]; then
  # deb-src for trixie on the mirror (and keyring) this machine already uses.
  src_list=/etc/apt/sources.list.d/sheratan-pgvector-src.sources
  if [ ! -f "$src_list" ]; then
    base=/etc/apt/sources.list.d/debian.sources
    uris=$(grep -m1 '^URIs:' "$base" | sed 's/^URIs:[[:space:]]*//')
    signed=$(grep -m1 '^Signed-By:' "$base" | sed 's/^Signed-By:[[:space:]]*//')
    printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: %s\n' "${uris:-http://deb.debian.org/debian}" \
      "${signed:-/usr/share/keyrings/debian-archive-keyring.gpg}" >"$src_list"
    need_apt_update=1
  fi
  [ "$need_apt_update" = 1 ] && { apt-get update -qq; need_apt_update=0; }
  dpkg-query -W -f='${Status}' dpkg-dev 2>/dev/null | grep -q 'install ok installed' || apt_install dpkg-dev
  work=$(mktemp -d)
  (
    cd "$work"
    apt-get source -qq pgvector >/dev/null 2>&1 || apt-get source pgvector
    cd pgvector-*/
    echo "building pgvector $(basename "$PWD") against PostgreSQL $PG_MAJOR"
    make -s PG_CONFIG="$pg_config" >/dev/null
    make -s PG_CONFIG="$pg_config" install >/dev/null
  )
  rm -rf "$work"
fi

if ! pg_lsclusters -h | awk '{print $1"/"$2}' | grep -qx "$PG_MAJOR/main"; then
  pg_createcluster "$PG_MAJOR" main -p "$PG_PORT" >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="$PG_MAJOR" '$1==v && $2=="main" {print $4}' | grep -q online; then
  pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main start
fi
port=$(pg_lsclusters -h | awk -v v="$PG_MAJOR" '$1==v && $2=="main" {print $3}')
# Tests connect over TCP with a password (as a deployment would), so give the
# postgres superuser one; local peer authentication stays as Debian sets it.
su postgres -c "psql -q -p $port -v ON_ERROR_STOP=1 -c \"alter role postgres password '$TEST_PASSWORD'\"" >/dev/null
echo "postgresql://postgres:$TEST_PASSWORD@127.0.0.1:$port/postgres"

#!/usr/bin/env bash
# A PostgreSQL cluster of its own for the tests that stop the database
# (test/reliability/server-faults.test.ts): the shared test server (the
# Debian cluster 15/main, scripts/install-postgres.sh) must stay up for every
# other test. It uses the same PostgreSQL installation, so it has pgvector.
# Run as root (pg_createcluster, as CI does).
#
#   fault-cluster.sh create NAME PORT PASSWORD   create and start it; prints its superuser URL
#   fault-cluster.sh stop NAME                   stop it (fast: sessions are cut, as in an outage)
#   fault-cluster.sh start NAME                  start it again
#   fault-cluster.sh drop NAME                   stop and remove it, data and configuration
#   fault-cluster.sh sweep                       drop the clusters of test processes that are gone
#
# Clusters are named sheratan_faults_<pid of the test process>_<suffix>.
set -euo pipefail

PG_MAJOR=${PG_MAJOR:-15}
action=${1:-}
name=${2:-}

case "$action" in
  create)
    port=${3:?port}
    password=${4:?password}
    # A test cluster: no durability needed, a small footprint.
    pg_createcluster "$PG_MAJOR" "$name" -p "$port" \
      -o fsync=off -o synchronous_commit=off -o full_page_writes=off -o shared_buffers=32MB -o max_connections=50 >/dev/null
    pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$name" start
    su postgres -c "psql -q -p $port -v ON_ERROR_STOP=1 -c \"alter role postgres password '$password'\"" >/dev/null
    echo "postgresql://postgres:$password@127.0.0.1:$port/postgres"
    ;;
  stop)
    pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$name" stop -m fast
    ;;
  start)
    pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$name" start
    ;;
  drop)
    pg_dropcluster --stop "$PG_MAJOR" "$name"
    ;;
  sweep)
    for cluster in $(pg_lsclusters -h | awk -v v="$PG_MAJOR" '$1==v && $2 ~ /^sheratan_faults_[0-9]+_/ {print $2}'); do
      pid=$(echo "$cluster" | cut -d_ -f3)
      if ! kill -0 "$pid" 2>/dev/null; then pg_dropcluster --stop "$PG_MAJOR" "$cluster"; fi
    done
    ;;
  *)
    echo "usage: fault-cluster.sh create NAME PORT PASSWORD | stop NAME | start NAME | drop NAME | sweep" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# A PostgreSQL cluster of its own for the tests that stop the database
# (test/reliability/server-faults.test.ts): the shared test server (the
# Debian cluster 15/main, scripts/install-postgres.sh) must stay up for every
# other test. It uses the same PostgreSQL installation, so it has pgvector.
# Run as root (pg_createcluster, as CI does).
#
#   fault-cluster.sh create NAME PORT PASSWORD   create and start it; prints its superuser URL
#   fault-cluster.sh replica NAME PRIMARY_NAME PRIMARY_PORT PORT PASSWORD
#                                                a streaming replica of PRIMARY_NAME (made by create, whose
#                                                superuser's PASSWORD it gives): pg_basebackup -R, started;
#                                                prints its superuser URL (the primary's password)
#   fault-cluster.sh tls NAME                    ssl = on with a self-signed certificate (CN localhost) made
#                                                for it in its data directory, reloaded
#   fault-cluster.sh stop NAME                   stop it (fast: sessions are cut, as in an outage)
#   fault-cluster.sh start NAME                  start it again
#   fault-cluster.sh drop NAME                   stop and remove it, data and configuration
#   fault-cluster.sh sweep                       drop the clusters of test processes that are gone
#
# Clusters (replicas too) are named sheratan_faults_<pid of the test process>_<suffix>.
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
  replica)
    primary=${3:?primary name}
    primary_port=${4:?primary port}
    port=${5:?port}
    password=${6:?password}
    # The primary: wal_level=replica and max_wal_senders are PostgreSQL's defaults; its superuser (a
    # replication-capable login) may replicate from 127.0.0.1 with its password.
    hba=/etc/postgresql/$PG_MAJOR/$primary/pg_hba.conf
    if ! grep -Eq '^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+scram-sha-256' "$hba"; then
      echo 'host replication all 127.0.0.1/32 scram-sha-256' >>"$hba"
      pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$primary" reload
    fi
    # The replica's configuration as create's (max_connections must not be below the primary's), then its
    # data directory replaced by a base backup of the primary that starts as a standby (-R: standby.signal
    # and primary_conninfo).
    pg_createcluster "$PG_MAJOR" "$name" -p "$port" \
      -o fsync=off -o synchronous_commit=off -o full_page_writes=off -o shared_buffers=32MB -o max_connections=50 >/dev/null
    data=/var/lib/postgresql/$PG_MAJOR/$name
    find "$data" -mindepth 1 -delete
    su postgres -c "PGPASSWORD='$password' pg_basebackup -h 127.0.0.1 -p $primary_port -U postgres -D '$data' -R -X stream -c fast"
    pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$name" start
    echo "postgresql://postgres:$password@127.0.0.1:$port/postgres"
    ;;
  tls)
    data=/var/lib/postgresql/$PG_MAJOR/$name
    openssl req -new -x509 -days 7 -nodes -subj /CN=localhost -keyout "$data/server.key" -out "$data/server.crt" 2>/dev/null
    chown postgres:postgres "$data/server.key" "$data/server.crt"
    chmod 600 "$data/server.key"
    pg_conftool "$PG_MAJOR" "$name" set ssl_cert_file "$data/server.crt"
    pg_conftool "$PG_MAJOR" "$name" set ssl_key_file "$data/server.key"
    pg_conftool "$PG_MAJOR" "$name" set ssl on
    pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$name" reload
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
    echo "usage: fault-cluster.sh create NAME PORT PASSWORD | replica NAME PRIMARY_NAME PRIMARY_PORT PORT PASSWORD | tls NAME | stop NAME | start NAME | drop NAME | sweep" >&2
    exit 2
    ;;
esac

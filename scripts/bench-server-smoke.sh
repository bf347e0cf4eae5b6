#!/usr/bin/env bash
# The quick benchmark on the PostgreSQL server, as CI's smoke run: a database
# bootstrapped and migrated as README "Server setup" says, the benchmark run
# twice on it, and a check that each run removed the rows it wrote (its own
# tenant) so that the second measured only its own data. $1: a superuser URL.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:?usage: scripts/bench-server-smoke.sh SUPERUSER_URL}
base=${root%/*}
hostpart=${base#*@}
export DATABASE_URL="postgresql://sheratan:sheratan-test-owner-password@${hostpart}/sheratan_ci_bench"
export AUTH_DATABASE_URL="postgresql://sheratan_authenticator:sheratan-test-authenticator-password@${hostpart}/sheratan_ci_bench"
export JWT_SECRET=sheratan-ci-bench-secret-0123456789abcdef
export LOG_LEVEL=warn
# The benchmark brings its own 384-number vectors (a store whose clients bring vectors).
export EMBEDDING_PROVIDER=none
cleanup() { psql "$root" -qXc 'drop database if exists sheratan_ci_bench with (force)' >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
ROOT_DATABASE_URL="$root" npm run -s db:bootstrap >/dev/null
npm run -s db:migrate >/dev/null
for run in 1 2; do
  npm run -s bench -- --quick
  node scripts/check-bench-result.ts server
  left=$(psql "$DATABASE_URL" -AtXc "select count(*) from sheratan.documents where tenant like 'bench%'")
  logs=$(psql "$DATABASE_URL" -AtXc "select count(*) from sheratan.search_logs where tenant like 'bench%'")
  echo "server bench run $run: $left documents and $logs search logs of benchmark tenants left"
  [ "$left" = 0 ] && [ "$logs" = 0 ] || { echo "the benchmark left its rows behind"; exit 1; }
done

#!/usr/bin/env bash
# The drivers reporting tools use, from Debian, for test/clients/reporting-drivers.test.ts:
# JDBC (Metabase, DBeaver, Tableau) with a JDK to compile the test's program,
# ODBC (Excel, Power BI) driven with unixODBC's isql, psycopg2 and psycopg 3
# (Superset, notebooks). Idempotent and quiet: installs only what is missing.
# Run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(libpostgresql-jdbc-java default-jdk-headless odbc-postgresql unixodbc python3-psycopg2 python3-psycopg)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The ODBC driver registers itself in /etc/odbcinst.ini as "PostgreSQL Unicode"; say so if it did not.
odbcinst -q -d 2>/dev/null | grep -q 'PostgreSQL Unicode' || echo "warning: no 'PostgreSQL Unicode' ODBC driver registered" >&2
exit 0

"""What a Python reporting tool (Superset, a notebook) does, with Debian's
psycopg2 or psycopg 3, as a reporting login: run by
test/clients/reporting-drivers.test.ts with Debian's own python3.

Arguments: psycopg2|psycopg conninfo other-tenant time-zone. The time zone
goes as libpq's `options` (-c TimeZone=…), as Superset's engine parameters
pass it. Prints one JSON object.
"""
import json
import sys

driver, conninfo, other, zone = sys.argv[1:5]
if driver == "psycopg2":
    import psycopg2 as db

    def connect():
        return db.connect(conninfo, options=f"-c TimeZone={zone} -c application_name=reporting-check-{driver}")

    def sqlstate(err):
        return err.pgcode
else:
    import psycopg as db

    def connect():
        return db.connect(conninfo, options=f"-c TimeZone={zone} -c application_name=reporting-check-{driver}")

    def sqlstate(err):
        return err.sqlstate

out = {"driver": f"{driver} {db.__version__}"}
conn = connect()
conn.autocommit = True
cur = conn.cursor()
cur.execute("select current_setting('TimeZone'), current_setting('application_name')")
out["timeZone"], out["applicationName"] = cur.fetchone()

# Metadata, as SQLAlchemy's inspector reads it (pg_catalog / information_schema).
cur.execute("select table_name from information_schema.views where table_schema = %s order by 1", ("sheratan_reporting",))
out["views"] = [r[0] for r in cur.fetchall()]
cur.execute("select table_name from information_schema.tables where table_schema = %s and table_type = 'BASE TABLE' order by 1", ("sheratan",))
out["tables"] = [r[0] for r in cur.fetchall()]

# A view with parameters, eight times: psycopg 3 prepares it on the server from
# the sixth run (prepare_threshold 5); psycopg2 interpolates on the client.
runs = []
query = "select coalesce(sum(searches), 0)::bigint, count(distinct tenant) from sheratan_reporting.search_daily where mode = %s and day >= %s"
for _ in range(8):
    cur.execute(query, ("vector", "2000-01-01"))
    total, tenants = cur.fetchone()
    runs.append(f"{total}/{tenants}")
out["preparedRuns"] = runs
cur.execute("select count(*) from pg_prepared_statements where statement like %s", ("%sheratan_reporting.search_daily%",))
out["serverPrepared"] = cur.fetchone()[0] > 0

# Per-day figures in the session's zone, for the test to check against its own computation.
cur.execute("select day::text, sum(searches)::bigint from sheratan_reporting.search_daily group by 1 order by 1")
out["searchesByDay"] = {d: int(n) for d, n in cur.fetchall()}

# A named (server-side) cursor, read 7 rows at a time, inside a transaction.
# Its failure is reported, not raised: the other checks still run.
try:
    conn.autocommit = False
    stream = conn.cursor(name="reporting_stream")
    stream.itersize = 7
    stream.execute("select tenant, latency_ms from sheratan_reporting.search_events order by id")
    rows = 0
    tenants = set()
    for tenant, _latency in stream:
        rows += 1
        tenants.add(tenant)
    stream.close()
    conn.commit()
    out["streamedRows"] = rows
    out["streamedTenants"] = sorted(tenants)
except db.Error as err:
    conn.rollback()
    out["streamError"] = f"{sqlstate(err)} {err}".strip()
conn.autocommit = True

# Nothing written, nothing of another tenant.
writes = []
for statement in [
    "insert into sheratan.documents (title) values ('py')",
    "update sheratan.documents set title = 'py'",
    "delete from sheratan.search_logs",
    "create table sheratan_reporting.py (x int)",
    "set role sheratan_app",
]:
    try:
        cur.execute(statement)
        writes.append("ok")
    except db.Error as err:
        writes.append(sqlstate(err))
out["writes"] = writes
cur.execute("select set_config('jwt.claims.tenant', %s, false)", (other,))
cur.execute(
    "select (select count(*) from sheratan.documents where tenant = %(t)s) + (select count(*) from sheratan_reporting.search_events where tenant = %(t)s)"
    " + (select count(*) from sheratan_reporting.search_daily where tenant = %(t)s) + (select count(*) from sheratan_reporting.job_daily where tenant = %(t)s)",
    {"t": other},
)
out["otherTenantRows"] = cur.fetchone()[0]
conn.close()
print(json.dumps(out))

// What a JDBC reporting tool (Metabase, DBeaver, Tableau) does, with Debian's
// PostgreSQL JDBC driver, as a reporting login: test/clients/reporting-drivers.test.ts
// compiles it into a temporary directory and runs it with the JVM's own time
// zone (-Duser.timezone), which the driver sends as TimeZone at start-up.
// Arguments: jdbc-url user password other-tenant. Prints one JSON object.
import java.sql.*;
import java.util.*;

public class ReportingCheck {
  static String q(String s) {
    if (s == null) return "null";
    return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
  }

  static String list(Collection<String> xs) {
    StringJoiner j = new StringJoiner(",", "[", "]");
    for (String x : xs) j.add(q(x));
    return j.toString();
  }

  /** The SQLSTATE a statement fails with, or "ok" when it does not fail. */
  static String refused(Connection c, String sql) {
    try (Statement s = c.createStatement()) {
      s.execute(sql);
      return "ok";
    } catch (SQLException e) {
      return e.getSQLState();
    }
  }

  public static void main(String[] args) throws Exception {
    String url = args[0], user = args[1], password = args[2], other = args[3];
    Properties props = new Properties();
    props.setProperty("user", user);
    props.setProperty("password", password);
    props.setProperty("ApplicationName", "reporting-check-jdbc");
    Map<String, String> out = new LinkedHashMap<>();
    try (Connection c = DriverManager.getConnection(url, props)) {
      out.put("driver", q(c.getMetaData().getDriverName() + " " + c.getMetaData().getDriverVersion()));
      out.put("jvmTimeZone", q(TimeZone.getDefault().getID()));
      try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("select current_setting('TimeZone'), current_date::text")) {
        r.next();
        out.put("timeZone", q(r.getString(1)));
        out.put("currentDate", q(r.getString(2)));
      }

      // Metadata, as a tool's schema browser lists it.
      DatabaseMetaData md = c.getMetaData();
      List<String> views = new ArrayList<>();
      try (ResultSet r = md.getTables(null, "sheratan_reporting", "%", new String[] {"VIEW"})) {
        while (r.next()) views.add(r.getString("TABLE_NAME"));
      }
      out.put("views", list(views));
      List<String> tables = new ArrayList<>();
      try (ResultSet r = md.getTables(null, "sheratan", "%", new String[] {"TABLE"})) {
        while (r.next()) tables.add(r.getString("TABLE_NAME"));
      }
      out.put("tables", list(tables));
      List<String> columns = new ArrayList<>();
      try (ResultSet r = md.getColumns(null, "sheratan_reporting", "search_daily", "%")) {
        while (r.next()) columns.add(r.getString("COLUMN_NAME") + ":" + r.getString("TYPE_NAME"));
      }
      out.put("searchDailyColumns", list(columns));

      // A view with parameters, run past prepareThreshold (5): from then on a named server-side statement.
      List<String> runs = new ArrayList<>();
      boolean serverPrepared = false;
      try (PreparedStatement p = c.prepareStatement(
          "select coalesce(sum(searches), 0)::bigint, count(distinct tenant) from sheratan_reporting.search_daily where mode = ? and day >= ?")) {
        for (int i = 0; i < 8; i++) {
          p.setString(1, "vector");
          p.setDate(2, java.sql.Date.valueOf("2000-01-01"));
          try (ResultSet r = p.executeQuery()) {
            r.next();
            runs.add(r.getLong(1) + "/" + r.getLong(2));
          }
        }
        serverPrepared = p.unwrap(org.postgresql.PGStatement.class).isUseServerPrepare();
      }
      out.put("preparedRuns", list(runs));
      out.put("serverPrepared", String.valueOf(serverPrepared));

      // A stream: a fetch size inside a transaction makes the driver read through a portal, 7 rows at a time.
      c.setAutoCommit(false);
      long rows = 0;
      Set<String> tenants = new TreeSet<>();
      try (Statement s = c.createStatement()) {
        s.setFetchSize(7);
        try (ResultSet r = s.executeQuery("select tenant, latency_ms from sheratan_reporting.search_events order by id")) {
          while (r.next()) {
            rows++;
            tenants.add(r.getString(1));
          }
        }
      }
      c.commit();
      c.setAutoCommit(true);
      out.put("streamedRows", String.valueOf(rows));
      out.put("streamedTenants", list(tenants));

      // Nothing of another tenant, whatever the session sets, and nothing written.
      List<String> writes = new ArrayList<>();
      writes.add(refused(c, "insert into sheratan.documents (title) values ('jdbc')"));
      writes.add(refused(c, "update sheratan.documents set title = 'jdbc'"));
      writes.add(refused(c, "delete from sheratan.search_logs"));
      writes.add(refused(c, "create table sheratan_reporting.jdbc (x int)"));
      writes.add(refused(c, "set role sheratan_app"));
      out.put("writes", list(writes));
      try (Statement s = c.createStatement()) {
        s.execute("set jwt.claims.tenant = '" + other.replace("'", "''") + "'");
      }
      try (PreparedStatement p = c.prepareStatement(
          "select (select count(*) from sheratan.documents where tenant = ?) + (select count(*) from sheratan_reporting.search_events where tenant = ?)"
              + " + (select count(*) from sheratan_reporting.search_daily where tenant = ?) + (select count(*) from sheratan_reporting.job_daily where tenant = ?)")) {
        for (int i = 1; i <= 4; i++) p.setString(i, other);
        try (ResultSet r = p.executeQuery()) {
          r.next();
          out.put("otherTenantRows", String.valueOf(r.getLong(1)));
        }
      }
    }
    StringJoiner j = new StringJoiner(",", "{", "}");
    for (Map.Entry<String, String> e : out.entrySet()) j.add(q(e.getKey()) + ":" + e.getValue());
    System.out.println(j);
  }
}

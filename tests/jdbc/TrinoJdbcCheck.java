// Exercises a server through Trino's own JDBC driver (io.trino:trino-jdbc)
// and prints what it saw as one JSON object; tests/python/test_trino_jdbc.py
// runs it against Trino and against Flightdeck's Trino-protocol port and
// compares the two.
//
//   java -cp trino-jdbc.jar TrinoJdbcCheck.java <jdbc-url> <user> <password> <table>
//
// An empty password sets no password property (Trino itself, without
// authentication). <table> is a scratch table, e.g. memory.default.t: it is
// dropped and created again.
import java.math.BigDecimal;
import java.sql.*;
import java.util.*;

public class TrinoJdbcCheck {
    static String q(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20 || c > 0x7e) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
            }
        }
        return b.append('"').toString();
    }

    static String list(List<String> items) {
        return "[" + String.join(",", items) + "]";
    }

    /** The named columns of every row, as strings. */
    static String rows(ResultSet rs, String... columns) throws SQLException {
        List<String> out = new ArrayList<>();
        while (rs.next()) {
            List<String> row = new ArrayList<>();
            for (String c : columns) row.add(q(rs.getString(c)));
            out.add(list(row));
        }
        rs.close();
        return list(out);
    }

    /** Every column of every row, as strings. */
    static String all(ResultSet rs) throws SQLException {
        int n = rs.getMetaData().getColumnCount();
        List<String> out = new ArrayList<>();
        while (rs.next()) {
            List<String> row = new ArrayList<>();
            for (int c = 1; c <= n; c++) row.add(q(rs.getString(c)));
            out.add(list(row));
        }
        rs.close();
        return list(out);
    }

    /** Label, type name, java.sql.Types code, precision, scale, class name and nullability of each column. */
    static String meta(ResultSetMetaData md) throws SQLException {
        List<String> out = new ArrayList<>();
        for (int c = 1; c <= md.getColumnCount(); c++) {
            out.add(list(List.of(
                q(md.getColumnLabel(c)), q(md.getColumnTypeName(c)), String.valueOf(md.getColumnType(c)),
                String.valueOf(md.getPrecision(c)), String.valueOf(md.getScale(c)), q(md.getColumnClassName(c)),
                String.valueOf(md.isNullable(c)))));
        }
        return list(out);
    }

    /** Each value as getString, the class getObject returns, and that object's text. */
    static String typed(ResultSet rs) throws SQLException {
        int n = rs.getMetaData().getColumnCount();
        List<String> out = new ArrayList<>();
        while (rs.next()) {
            List<String> row = new ArrayList<>();
            for (int c = 1; c <= n; c++) {
                Object o = rs.getObject(c);
                row.add(list(List.of(q(rs.getString(c)), q(o == null ? null : o.getClass().getName()), q(o == null ? null : o.toString()))));
            }
            out.add(list(row));
        }
        rs.close();
        return list(out);
    }

    /** An SQLException's message (query id masked), SQL state and error code. */
    static String error(SQLException e) {
        String message = e.getMessage() == null ? null : e.getMessage().replaceAll("\\(#\\d{8}_\\d{6}_\\d{5}_[a-z0-9]{5}\\)", "(#QUERY_ID)");
        return list(List.of(q(message), q(e.getSQLState()), String.valueOf(e.getErrorCode())));
    }

    interface Body {
        String run() throws Exception;
    }

    /** Where a bad prepared statement fails: at prepareStatement (Trino parses
     *  PREPARE's statement) or only when it runs, and with what error. */
    static String preparedFailure(Connection conn, String sql) {
        String step = "prepareStatement";
        try (PreparedStatement ps = conn.prepareStatement(sql)) {
            step = "executeQuery";
            ps.setLong(1, 1);
            ps.executeQuery().close();
            return q("no error");
        } catch (SQLException e) {
            return "{\"step\":" + q(step) + ",\"error\":" + error(e) + "}";
        }
    }

    static final Map<String, String> result = new LinkedHashMap<>();

    /** Runs one part of the check: its result, or {"error": [message, state, code]} if it threw. */
    static void part(String name, Body body) {
        long start = System.nanoTime();
        try {
            result.put(name, body.run());
        } catch (SQLException e) {
            result.put(name, "{\"error\":" + error(e) + "}");
        } catch (Exception e) {
            result.put(name, "{\"exception\":" + q(e.toString()) + "}");
        }
        System.err.printf("%s: %d ms%n", name, (System.nanoTime() - start) / 1_000_000);
    }

    public static void main(String[] args) throws Exception {
        String url = args[0], user = args[1], password = args[2], table = args[3];
        Properties props = new Properties();
        props.setProperty("user", user);
        if (!password.isEmpty()) props.setProperty("password", password);
        try (Connection conn = DriverManager.getConnection(url, props)) {
            DatabaseMetaData md = conn.getMetaData();
            part("product", () -> q(md.getDatabaseProductName()));
            part("version", () -> q(md.getDatabaseProductVersion()));
            part("catalogs", () -> rows(md.getCatalogs(), "TABLE_CAT"));
            part("schemas", () -> rows(md.getSchemas("tpch", null), "TABLE_CATALOG", "TABLE_SCHEM"));
            part("tables", () -> rows(md.getTables("tpch", "tiny", "%", null), "TABLE_CAT", "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE"));
            part("columns", () -> rows(md.getColumns("tpch", "tiny", "nation", null),
                "COLUMN_NAME", "TYPE_NAME", "DATA_TYPE", "COLUMN_SIZE", "DECIMAL_DIGITS", "NULLABLE", "ORDINAL_POSITION"));
            part("table_types", () -> rows(md.getTableTypes(), "TABLE_TYPE"));

            part("nation", () -> {
                try (Statement st = conn.createStatement();
                     ResultSet rs = st.executeQuery("SELECT nationkey, name, regionkey FROM tpch.tiny.nation ORDER BY nationkey")) {
                    return "{\"meta\":" + meta(rs.getMetaData()) + ",\"rows\":" + all(rs) + "}";
                }
            });
            String types = "SELECT * FROM (VALUES "
                + "(BIGINT '-9223372036854775808', CAST('h\u00e9llo' AS varchar), CAST('12.345' AS decimal(10,3)), DOUBLE '0.1', DATE '2024-02-29', TIMESTAMP '2024-01-31 12:34:56.123', true),"
                + "(BIGINT '42', CAST('' AS varchar), CAST('-0.001' AS decimal(10,3)), DOUBLE '-1.5E300', DATE '1900-01-01', TIMESTAMP '1969-07-20 20:17:40.000', false),"
                + "(NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
                + ") AS t(b, v, d, f, dt, ts, bo)";
            part("types", () -> {
                try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(types)) {
                    return "{\"meta\":" + meta(rs.getMetaData()) + ",\"rows\":" + typed(rs) + "}";
                }
            });
            // Each value's own zone, and digits below the nanosecond.
            part("zones", () -> {
                try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(
                        "SELECT * FROM (VALUES (TIMESTAMP '2024-07-01 00:00:00.123 America/New_York', TIME '01:02:03.000000000001'),"
                        + " (TIMESTAMP '2024-01-01 00:00:00 +05:30', NULL), (TIMESTAMP '2024-01-01 00:00:00 UTC', TIME '23:59:59.999999999999'))"
                        + " AS t(tz, t12)")) {
                    return "{\"meta\":" + meta(rs.getMetaData()) + ",\"rows\":" + typed(rs) + "}";
                }
            });
            part("getters", () -> {
                try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(types)) {
                    List<String> got = new ArrayList<>();
                    rs.next();
                    got.add(String.valueOf(rs.getLong("b")));
                    got.add(q(rs.getString("v")));
                    got.add(q(rs.getBigDecimal("d").toPlainString()));
                    got.add(String.valueOf(rs.getDouble("f")));
                    got.add(q(rs.getDate("dt").toString()));
                    got.add(q(rs.getTimestamp("ts").toString()));
                    got.add(String.valueOf(rs.getBoolean("bo")));
                    return list(got);
                }
            });
            part("count", () -> {
                try (Statement st = conn.createStatement()) {
                    return rows(st.executeQuery("SELECT count(*) AS n FROM tpch.tiny.nation"), "n");
                }
            });

            part("prepared", () -> {
                try (PreparedStatement ps = conn.prepareStatement("SELECT name FROM tpch.tiny.nation WHERE regionkey = ? AND nationkey > ? ORDER BY name")) {
                    Map<String, String> out = new LinkedHashMap<>();
                    ps.setLong(1, 2);
                    ps.setInt(2, 0);
                    out.put("first", rows(ps.executeQuery(), "name"));
                    ps.setLong(1, 3);
                    ps.setInt(2, 10);
                    out.put("again", rows(ps.executeQuery(), "name"));
                    return object(out);
                }
            });
            part("prepared_meta", () -> {
                try (PreparedStatement ps = conn.prepareStatement("SELECT name FROM tpch.tiny.nation WHERE regionkey = ? AND nationkey > ? ORDER BY name")) {
                    ParameterMetaData pm = ps.getParameterMetaData();
                    List<String> params = new ArrayList<>();
                    for (int i = 1; i <= pm.getParameterCount(); i++) params.add(q(pm.getParameterTypeName(i)));
                    return "{\"columns\":" + meta(ps.getMetaData()) + ",\"parameters\":" + list(params) + "}";
                }
            });
            part("prepared_typed", () -> {
                try (PreparedStatement ps = conn.prepareStatement(
                        "SELECT count(*) AS n, min(orderkey) AS first FROM tpch.tiny.orders WHERE orderdate < ? AND orderpriority = ? AND totalprice > ?")) {
                    Map<String, String> out = new LinkedHashMap<>();
                    ps.setDate(1, java.sql.Date.valueOf("1993-01-01"));
                    ps.setString(2, "1-URGENT");
                    ps.setBigDecimal(3, new BigDecimal("100000.50"));
                    out.put("first", rows(ps.executeQuery(), "n", "first"));
                    ps.setDate(1, java.sql.Date.valueOf("1995-06-30"));
                    ps.setString(2, "5-LOW");
                    ps.setBigDecimal(3, new BigDecimal("250000"));
                    out.put("again", rows(ps.executeQuery(), "n", "first"));
                    return object(out);
                }
            });

            part("drop", () -> {
                try (Statement st = conn.createStatement()) {
                    return String.valueOf(st.execute("DROP TABLE IF EXISTS " + table));
                }
            });
            part("create", () -> {
                try (Statement st = conn.createStatement()) {
                    boolean created = st.execute("CREATE TABLE " + table + " (id bigint, name varchar, amount decimal(10,2), day date)");
                    return list(List.of(String.valueOf(created), String.valueOf(st.getUpdateCount())));
                }
            });
            part("insert_count", () -> {
                try (Statement st = conn.createStatement()) {
                    return String.valueOf(st.executeUpdate(
                        "INSERT INTO " + table + " VALUES (1, 'one', 1.25, DATE '2024-01-01'), (2, 'two', NULL, NULL)"));
                }
            });
            part("inserted", () -> {
                try (Statement st = conn.createStatement()) {
                    return all(st.executeQuery("SELECT id, name, amount, day FROM " + table + " ORDER BY id"));
                }
            });
            part("prepared_insert", () -> {
                try (PreparedStatement ps = conn.prepareStatement("INSERT INTO " + table + " VALUES (?, ?, ?, ?)")) {
                    Map<String, String> out = new LinkedHashMap<>();
                    ps.setLong(1, 3);
                    ps.setString(2, "thr'ee");
                    ps.setBigDecimal(3, new BigDecimal("-3.50"));
                    ps.setDate(4, java.sql.Date.valueOf("2024-03-03"));
                    out.put("count", String.valueOf(ps.executeUpdate()));
                    ps.setLong(1, 4);
                    ps.setString(2, "four");
                    ps.setNull(3, Types.DECIMAL);
                    ps.setDate(4, java.sql.Date.valueOf("2024-04-04"));
                    ps.addBatch();
                    ps.setLong(1, 5);
                    ps.setString(2, "f\u00fcnf");
                    ps.setBigDecimal(3, new BigDecimal("5"));
                    ps.setNull(4, Types.DATE);
                    ps.addBatch();
                    List<String> counts = new ArrayList<>();
                    for (int n : ps.executeBatch()) counts.add(String.valueOf(n));
                    out.put("batch", list(counts));
                    return object(out);
                }
            });
            part("after_insert", () -> {
                try (Statement st = conn.createStatement()) {
                    return all(st.executeQuery("SELECT id, name, amount, day FROM " + table + " ORDER BY id"));
                }
            });

            part("missing_table", () -> {
                try (Statement st = conn.createStatement()) {
                    st.executeQuery("SELECT * FROM " + table + "_missing").close();
                    return q("no error");
                }
            });
            // Where a bad prepared statement fails: at prepareStatement (Trino
            // parses PREPARE's statement) or only when it runs.
            part("prepared_syntax_error", () -> preparedFailure(conn, "SELEC name FROM tpch.tiny.nation WHERE nationkey = ?"));
            part("prepared_error", () -> preparedFailure(conn, "SELECT nonexistent_column FROM tpch.tiny.nation WHERE nationkey = ?"));

            part("use", () -> {
                try (Statement st = conn.createStatement()) {
                    st.execute("USE tpch.tiny");
                    return "{\"session\":" + list(List.of(q(conn.getCatalog()), q(conn.getSchema())))
                        + ",\"unqualified\":" + rows(st.executeQuery("SELECT count(*) AS n FROM region"), "n") + "}";
                }
            });
        }
        System.out.println(object(result));
    }

    static String object(Map<String, String> fields) {
        List<String> out = new ArrayList<>();
        for (Map.Entry<String, String> e : fields.entrySet()) out.add(q(e.getKey()) + ":" + e.getValue());
        return "{" + String.join(",", out) + "}";
    }
}

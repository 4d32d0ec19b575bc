// Exercises Flightdeck through the Arrow Flight SQL JDBC driver and prints
// what it saw as one JSON object; tests/python/test_jdbc.py compares it with
// Trino's own answers.
//
//   java -cp flight-sql-jdbc-driver.jar JdbcCheck.java <jdbc-url> <user> <password> <table>
import java.sql.*;
import java.util.*;

public class JdbcCheck {
    static String q(String s) {
        if (s == null) return "null";
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n") + "\"";
    }

    static String rows(ResultSet rs, int... columns) throws SQLException {
        List<String> out = new ArrayList<>();
        while (rs.next()) {
            List<String> row = new ArrayList<>();
            for (int c : columns) row.add(q(rs.getString(c)));
            out.add("[" + String.join(",", row) + "]");
        }
        rs.close();
        return "[" + String.join(",", out) + "]";
    }

    public static void main(String[] args) throws Exception {
        String url = args[0], user = args[1], password = args[2], table = args[3];
        Properties props = new Properties();
        props.setProperty("user", user);
        props.setProperty("password", password);
        Map<String, String> result = new LinkedHashMap<>();
        try (Connection conn = DriverManager.getConnection(url, props)) {
            DatabaseMetaData md = conn.getMetaData();
            result.put("product", q(md.getDatabaseProductName()));
            result.put("catalogs", rows(md.getCatalogs(), 1));
            result.put("schemas", rows(md.getSchemas("tpch", "sf1%"), 2, 1));
            result.put("tables", rows(md.getTables("tpch", "tiny", "%", null), 3, 4));
            result.put("columns", rows(md.getColumns("tpch", "tiny", "nation", null), 4, 6));
            result.put("table_types", rows(md.getTableTypes(), 1));
            try (Statement st = conn.createStatement()) {
                result.put("query", rows(st.executeQuery("SELECT nationkey, name, regionkey FROM tpch.tiny.nation ORDER BY nationkey"), 1, 2, 3));
            }
            try (PreparedStatement ps = conn.prepareStatement("SELECT name FROM tpch.tiny.nation WHERE regionkey = ? AND nationkey > ? ORDER BY name")) {
                ps.setLong(1, 2);
                ps.setInt(2, 0);
                result.put("prepared", rows(ps.executeQuery(), 1));
                ps.setLong(1, 3);
                ps.setInt(2, 0);
                result.put("prepared_again", rows(ps.executeQuery(), 1));
            }
            try (Statement st = conn.createStatement()) {
                st.execute("DROP TABLE IF EXISTS " + table);
                st.execute("CREATE TABLE " + table + " (id bigint, name varchar)");
                result.put("insert_count", String.valueOf(st.executeUpdate("INSERT INTO " + table + " VALUES (1, 'one'), (2, 'two')")));
                result.put("inserted", rows(st.executeQuery("SELECT id, name FROM " + table + " ORDER BY id"), 1, 2));
            }
            try (PreparedStatement ps = conn.prepareStatement("INSERT INTO " + table + " VALUES (?, ?)")) {
                ps.setLong(1, 3);
                ps.setString(2, "three");
                result.put("prepared_insert_count", String.valueOf(ps.executeUpdate()));
            }
            try (Statement st = conn.createStatement()) {
                result.put("after_insert", rows(st.executeQuery("SELECT count(*) FROM " + table), 1));
            }
        }
        List<String> fields = new ArrayList<>();
        for (Map.Entry<String, String> e : result.entrySet()) fields.add(q(e.getKey()) + ":" + e.getValue());
        System.out.println("{" + String.join(",", fields) + "}");
    }
}

// Logs in to Flightdeck through the Arrow Flight SQL JDBC driver once per
// credential, in one JVM, and prints one JSON object per line; used by
// tests/python/test_credentials.py.
//
//   java -cp flight-sql-jdbc-driver.jar LoginCheck.java <jdbc-url> <credentials-file>
//
// Each line of the credentials file is `user TAB password TAB wrong-password`,
// every field base64 (standard alphabet) of its UTF-8 bytes. The password is
// passed as a connection property, never in the URL. Every string printed is
// base64 of its UTF-8 bytes too, so the output needs no escaping.
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.*;
import java.util.*;

public class LoginCheck {
    static String b64(String s) {
        return s == null ? "null" : "\"" + Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8)) + "\"";
    }

    static String unb64(String s) {
        return new String(Base64.getDecoder().decode(s), StandardCharsets.UTF_8);
    }

    static String scalar(Connection conn, String sql) throws SQLException {
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            return rs.next() ? rs.getString(1) : null;
        }
    }

    static Properties props(String user, String password) {
        Properties p = new Properties();
        p.setProperty("user", user);
        p.setProperty("password", password);
        return p;
    }

    static String error(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (sb.length() > 0) sb.append(" <- ");
            sb.append(t.getClass().getSimpleName()).append(": ").append(t.getMessage());
        }
        return sb.toString();
    }

    public static void main(String[] args) throws Exception {
        String url = args[0];
        List<String> lines = Files.readAllLines(Path.of(args[1]), StandardCharsets.UTF_8);
        for (int i = 0; i < lines.size(); i++) {
            String[] f = lines.get(i).split("\t", -1);
            String user = unb64(f[0]), password = unb64(f[1]), wrong = unb64(f[2]);
            String one = null, currentUser = null, err = null, wrongErr = null;
            try (Connection conn = DriverManager.getConnection(url, props(user, password))) {
                one = scalar(conn, "SELECT 1");
                currentUser = scalar(conn, "SELECT current_user");
            } catch (Throwable e) {
                err = error(e);
            }
            try (Connection conn = DriverManager.getConnection(url, props(user, wrong))) {
                scalar(conn, "SELECT 1");
                wrongErr = null;
            } catch (Throwable e) {
                wrongErr = error(e);
            }
            System.out.println("{\"index\":" + i + ",\"one\":" + b64(one) + ",\"current_user\":" + b64(currentUser)
                    + ",\"error\":" + b64(err) + ",\"wrong_error\":" + b64(wrongErr) + "}");
            System.out.flush();
        }
    }
}

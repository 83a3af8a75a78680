// tests/compat/java/Scenario.java - the compatibility scenario (see
// tests/compat/README.md) through JDBC and MariaDB Connector/J.
//   java -cp <classes>:mariadb-java-client.jar Scenario serverprep|clientprep HOST PORT USER PASSWORD DB BASE
// serverprep: useServerPrepStmts=true (COM_STMT_PREPARE/EXECUTE, binary rows);
// clientprep: useServerPrepStmts=false (text protocol with interpolation).

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

public class Scenario {
    static final String NAME = "O'Brien \"q\" back\\slash Zo\u00eb \u00f1 \u4e2d\u6587 \uD83D\uDE00\uD83C\uDF89";
    static final long BIG_MAX = Long.MAX_VALUE;
    static final long BIG_MIN = Long.MIN_VALUE;
    static final String AMOUNT = "12345678901234.123456";
    static final String AMOUNT2 = "-0.000001";
    static final LocalDateTime TS = LocalDateTime.of(2024, 2, 29, 23, 59, 58, 123456000);
    static final byte[] PAYLOAD = new byte[512];
    static final String BODY;
    static {
        for (int i = 0; i < 256; i++) {
            PAYLOAD[i] = (byte) i;
            PAYLOAD[511 - i] = (byte) i;
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 32000; i++)
            b.append(String.format("%06d:0123456789abcdef\u00e9\u2713\uD83D\uDE00\n", i));
        BODY = b.toString();
    }

    interface Step { void run() throws Exception; }

    static final List<String> failures = new ArrayList<>();
    static Connection conn;
    static long id;
    static String url, user, password;
    static long u1, u2, u3;

    static void step(String name, Step s) {
        try {
            s.run();
            System.out.println("ok " + name);
        } catch (Throwable e) {
            failures.add(name);
            String m = String.valueOf(e.getMessage());
            if (e instanceof SQLException) m = "errno " + ((SQLException) e).getErrorCode() + ": " + m;
            System.out.println("FAIL " + name + ": " + e.getClass().getSimpleName() + ": "
                               + m.substring(0, Math.min(m.length(), 2000)));
        }
        System.out.flush();
    }

    static String show(Object v) {
        if (v instanceof byte[]) return "byte[" + ((byte[]) v).length + "]";
        String s = v instanceof List ? v.toString() : String.valueOf(v);
        return s.length() > 300 ? "string of length " + s.length() : s;
    }

    static void expect(String what, Object got, Object want) {
        boolean same = got instanceof byte[] && want instanceof byte[]
            ? Arrays.equals((byte[]) got, (byte[]) want) : Objects.equals(got, want);
        if (!same) {
            String extra = "";
            if (got instanceof String && want instanceof String) {
                String g = (String) got, w = (String) want;
                int i = 0;
                while (i < g.length() && i < w.length() && g.charAt(i) == w.charAt(i)) i++;
                extra = " (first difference at " + i + ")";
            }
            throw new AssertionError(what + ": got " + show(got) + ", want " + show(want) + extra);
        }
    }

    static String mode;

    // With useServerPrepStmts=true Connector/J silently falls back to a
    // client-side statement when COM_STMT_PREPARE fails: catch that here.
    static PreparedStatement checked(PreparedStatement p) {
        String cls = p.getClass().getSimpleName();
        boolean server = cls.contains("ServerSide");
        if (server != mode.equals("serverprep"))
            throw new AssertionError("mode " + mode + " but the driver made a " + cls
                                     + " (server-side prepare failed and the driver fell back?)");
        return p;
    }

    static PreparedStatement ps(String sql, Object... params) throws SQLException {
        PreparedStatement p = checked(conn.prepareStatement(sql));
        for (int i = 0; i < params.length; i++) {
            Object v = params[i];
            if (v instanceof Long) p.setLong(i + 1, (Long) v);
            else p.setString(i + 1, (String) v);
        }
        return p;
    }

    static int update(String sql, Object... params) throws SQLException {
        try (PreparedStatement p = ps(sql, params)) {
            return p.executeUpdate();
        }
    }

    // Rows as lists of getString() values (null for NULL).
    static List<List<String>> rows(String sql, Object... params) throws SQLException {
        try (PreparedStatement p = ps(sql, params); ResultSet rs = p.executeQuery()) {
            return collect(rs);
        }
    }

    static List<List<String>> collect(ResultSet rs) throws SQLException {
        List<List<String>> out = new ArrayList<>();
        int n = rs.getMetaData().getColumnCount();
        while (rs.next()) {
            List<String> r = new ArrayList<>();
            for (int i = 1; i <= n; i++) r.add(rs.getString(i));
            out.add(r);
        }
        return out;
    }

    static List<List<String>> L(String... v) {
        return List.of(Arrays.asList(v));
    }

    static Connection connect() throws SQLException {
        return DriverManager.getConnection(url, user, password);
    }

    public static void main(String[] a) throws Exception {
        if (a.length != 7 || !(a[0].equals("serverprep") || a[0].equals("clientprep"))) {
            System.err.println("usage: Scenario serverprep|clientprep HOST PORT USER PASSWORD DB BASE");
            System.exit(2);
        }
        mode = a[0];
        url = "jdbc:mariadb://" + a[1] + ":" + a[2] + "/" + a[5] + "?useServerPrepStmts="
            + mode.equals("serverprep") + "&connectTimeout=10000";
        // SW_COMPAT_TLS_CA=<CA file>: over TLS (server certificate not verified)
        if (System.getenv("SW_COMPAT_TLS_CA") != null) url += "&useSsl=true&trustServerCertificate=true";
        user = a[3];
        password = a[4];
        long base = Long.parseLong(a[6]);
        u1 = base + 1; u2 = base + 2; u3 = base + 3;

        step("connect", () -> { conn = connect(); });
        if (!failures.isEmpty()) {
            System.out.println("FAILED java-connectorj-" + mode + ": connect");
            System.exit(1);
        }
        step("cleanup", () -> {
            for (long u : new long[] {u1, u2, u3}) update("DELETE FROM compat_items WHERE userid = ?", u);
        });
        step("insert_full", () -> {
            try (PreparedStatement p = conn.prepareStatement(
                     "INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body)"
                     + " VALUES (?, 'main', ?, ?, ?, ?, ?, ?)", Statement.RETURN_GENERATED_KEYS)) {
                checked(p);
                p.setLong(1, u1);
                p.setString(2, NAME);
                p.setLong(3, BIG_MAX);
                p.setBigDecimal(4, new BigDecimal(AMOUNT));
                p.setObject(5, TS);
                p.setBytes(6, PAYLOAD);
                p.setString(7, BODY);
                expect("affected rows", p.executeUpdate(), 1);
                try (ResultSet k = p.getGeneratedKeys()) {
                    if (!k.next()) throw new AssertionError("no generated key");
                    id = k.getLong(1);
                }
                if (id <= 0) throw new AssertionError("insert id " + id + ", want > 0");
            }
        });
        step("last_insert_id", () -> expect("LAST_INSERT_ID()", rows("SELECT LAST_INSERT_ID()"),
                                            L(Long.toString(id))));
        step("read_full", () -> {
            try (PreparedStatement p = ps("SELECT id, name, big, amount, ts, payload, body FROM compat_items"
                                          + " WHERE userid = ? AND k = 'main'", u1);
                 ResultSet rs = p.executeQuery()) {
                if (!rs.next()) throw new AssertionError("no row");
                expect("id", rs.getLong(1), id);
                expect("name", rs.getString(2), NAME);
                expect("big", rs.getLong(3), BIG_MAX);
                expect("big as string", rs.getString(3), Long.toString(BIG_MAX));
                expect("amount", rs.getBigDecimal(4).toPlainString(), AMOUNT);
                expect("ts", rs.getObject(5, LocalDateTime.class), TS);
                expect("payload", rs.getBytes(6), PAYLOAD);
                expect("body", rs.getString(7), BODY);
                if (rs.next()) throw new AssertionError("more than one row");
            }
        });
        step("nulls", () -> {
            try (PreparedStatement p = conn.prepareStatement(
                     "INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body)"
                     + " VALUES (?, 'nulls', ?, ?, ?, ?, ?, ?)")) {
                p.setLong(1, u2);
                p.setNull(2, Types.VARCHAR);
                p.setNull(3, Types.BIGINT);
                p.setNull(4, Types.DECIMAL);
                p.setNull(5, Types.TIMESTAMP);
                p.setNull(6, Types.BLOB);
                p.setNull(7, Types.VARCHAR);
                p.executeUpdate();
            }
            expect("rows", rows("SELECT name, big, amount, ts, payload, body FROM compat_items"
                                + " WHERE userid = ? AND k = 'nulls'", u2),
                   List.of(Arrays.asList(null, null, null, null, null, null)));
        });
        step("multi_row", () -> expect("affected rows", update(
            "INSERT INTO compat_items (userid, k, name, big) VALUES (" + u3 + ", 'a', ?, 1), ("
            + u3 + ", 'b', ?, 2), (" + u3 + ", 'c', ?, 3)", "A", "B", "C"), 3));
        step("batch", () -> {
            // JDBC batch of single-row inserts (each carries its userid), then undone
            try (PreparedStatement p = conn.prepareStatement(
                     "INSERT INTO compat_items (userid, k, name) VALUES (?, ?, ?)")) {
                for (String k : new String[] {"batch-1", "batch-2"}) {
                    p.setLong(1, u2);
                    p.setString(2, k);
                    p.setString(3, k.toUpperCase());
                    p.addBatch();
                }
                int[] n = p.executeBatch();
                expect("batch size", n.length, 2);
            }
            expect("rows", rows("SELECT k, name FROM compat_items WHERE userid = ? AND k LIKE 'batch-%' ORDER BY k", u2),
                   List.of(Arrays.asList("batch-1", "BATCH-1"), Arrays.asList("batch-2", "BATCH-2")));
            expect("deleted", update("DELETE FROM compat_items WHERE userid = ? AND k LIKE 'batch-%'", u2), 2);
        });
        step("update_delete", () -> {
            expect("update affected rows", update("UPDATE compat_items SET name = 'B2' WHERE userid = ? AND k = 'b'", u3), 1);
            expect("delete affected rows", update("DELETE FROM compat_items WHERE userid = ? AND k = 'c'", u3), 1);
            expect("rows", rows("SELECT k, name, big FROM compat_items WHERE userid = ? ORDER BY k", u3),
                   List.of(Arrays.asList("a", "A", "1"), Arrays.asList("b", "B2", "2")));
        });
        step("prepared_reuse", () -> {
            try (PreparedStatement p = checked(conn.prepareStatement(
                     "SELECT k, big FROM compat_items WHERE userid = ? AND k = ?"))) {
                Object[][] cases = {{u3, "a", L("a", "1")}, {u3, "b", L("b", "2")},
                                    {u1, "main", L("main", Long.toString(BIG_MAX))}};
                for (Object[] c : cases) {
                    p.setLong(1, (Long) c[0]);
                    p.setString(2, (String) c[1]);
                    try (ResultSet rs = p.executeQuery()) {
                        expect("userid " + c[0] + " k " + c[1], collect(rs), c[2]);
                    }
                }
            }
        });
        step("session_state", () -> {
            // Connector/J 2.7 gives a client-side statement for this SET even with
            // useServerPrepStmts=true (checked() would fail): a plain Statement, as apps use
            try (Statement st = conn.createStatement()) {
                st.execute("SET time_zone = '+05:00', SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE'");
            }
            for (Object[] c : new Object[][] {{u1, "main"}, {u3, "a"}, {u1, "main"}})
                expect("userid " + c[0], rows("SELECT @@session.time_zone, @@session.sql_mode, k FROM compat_items WHERE userid = ? AND k = ?", c[0], c[1]), L("+05:00", "STRICT_ALL_TABLES,NO_ZERO_DATE", (String) c[1]));
            expect("unrouted", rows("SELECT @@session.time_zone"), L("+05:00"));
            // what connection pools and Hibernate do through JDBC
            conn.setTransactionIsolation(Connection.TRANSACTION_READ_COMMITTED);
            for (Object[] c : new Object[][] {{u1, "main"}, {u3, "a"}})
                expect("isolation, userid " + c[0], rows("SELECT @@session.tx_isolation FROM compat_items"
                    + " WHERE userid = ? AND k = ?", c[0], c[1]), L("READ-COMMITTED"));
            expect("getTransactionIsolation", conn.getTransactionIsolation(), Connection.TRANSACTION_READ_COMMITTED);
        });
        step("warnings", () -> {
            expect("CAST", rows("SELECT CAST('12abc' AS SIGNED) FROM compat_items WHERE userid = ? AND k = 'a'", u3), L("12"));
            // (Connector/J never server-prepares SHOW, even against MariaDB itself)
            List<List<String>> w;
            try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SHOW WARNINGS")) {
                w = collect(rs);
            }
            expect("SHOW WARNINGS", w, L("Warning", "1292", "Truncated incorrect INTEGER value: '12abc'"));
        });
        step("tx_commit", () -> {
            conn.setAutoCommit(false);
            try (PreparedStatement p = conn.prepareStatement(
                     "INSERT INTO compat_items (userid, k, big, amount) VALUES (?, 'tx-commit', ?, ?)")) {
                p.setLong(1, u1);
                p.setLong(2, BIG_MIN);
                p.setBigDecimal(3, new BigDecimal(AMOUNT2));
                p.executeUpdate();
            }
            expect("update affected rows",
                   update("UPDATE compat_items SET name = 'committed' WHERE userid = ? AND k = 'tx-commit'", u1), 1);
            conn.commit();
            conn.setAutoCommit(true);
            expect("rows", rows("SELECT name, big, amount FROM compat_items WHERE userid = ? AND k = 'tx-commit'", u1),
                   L("committed", Long.toString(BIG_MIN), AMOUNT2));
        });
        step("tx_rollback", () -> {
            String count = "SELECT COUNT(*) FROM compat_items WHERE userid = ? AND k = 'tx-rollback'";
            conn.setAutoCommit(false);
            update("INSERT INTO compat_items (userid, k, name) VALUES (?, 'tx-rollback', 'x')", u1);
            expect("count inside the transaction", rows(count, u1), L("1"));
            try {   // an error inside the transaction does not end it
                update("INSERT INTO compat_items (userid, k, name) VALUES (?, 'main', 'dup')", u1);
                throw new AssertionError("duplicate INSERT succeeded");
            } catch (SQLException e) {
                expect("errno inside the transaction", e.getErrorCode(), 1062);
            }
            expect("count after the error", rows(count, u1), L("1"));
            conn.rollback();
            conn.setAutoCommit(true);
            expect("count after rollback", rows(count, u1), L("0"));
        });
        step("duplicate_key", () -> {
            try {
                update("INSERT INTO compat_items (userid, k, name) VALUES (?, 'main', 'dup')", u1);
                throw new AssertionError("duplicate INSERT succeeded");
            } catch (SQLException e) {
                expect("errno", e.getErrorCode(), 1062);
            }
            expect("after the error", rows("SELECT name FROM compat_items WHERE userid = ? AND k = 'main'", u1), L(NAME));
        });
        step("router_error", () -> {
            // The router refuses this at COM_STMT_PREPARE already; Connector/J
            // then falls back to a client-side statement, whose COM_QUERY gets
            // the same error: no checked() here.
            try (PreparedStatement p = conn.prepareStatement("SELECT k FROM compat_items");
                 ResultSet rs = p.executeQuery()) {
                throw new AssertionError("SELECT without a userid succeeded");
            } catch (SQLException e) {
                expect("errno", e.getErrorCode(), 1235);
                // Connector/J prefixes messages with "(conn=N) "
                if (!String.valueOf(e.getMessage()).matches("(?s)(\\(conn=\\d+\\) )?shardwire:.*"))
                    throw new AssertionError("message '" + e.getMessage() + "' does not start with 'shardwire:'");
            }
            expect("after the error", rows("SELECT COUNT(*) FROM compat_items WHERE userid = ?", u3), L("2"));
        });
        step("ping", () -> expect("isValid (COM_PING)", conn.isValid(10), true));
        step("reconnect", () -> {
            conn.close();
            conn = connect();
            expect("rows", rows("SELECT name, big FROM compat_items WHERE userid = ? AND k = 'main'", u1),
                   L(NAME, Long.toString(BIG_MAX)));
            // a new session starts clean on every shard: nothing of session_state
            for (Object[] c : new Object[][] {{u1, "main"}, {u3, "a"}})
                expect("new session, userid " + c[0], rows("SELECT @@session.time_zone, @@session.tx_isolation, k FROM compat_items WHERE userid = ? AND k = ?", c[0], c[1]),
                       L("SYSTEM", "REPEATABLE-READ", (String) c[1]));
            conn.close();
        });
        if (!failures.isEmpty()) {
            System.out.println("FAILED java-connectorj-" + mode + ": " + String.join(" ", failures));
            System.exit(1);
        }
        System.out.println("PASSED java-connectorj-" + mode);
    }
}

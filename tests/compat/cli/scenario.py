#!/usr/bin/python3
"""
tests/compat/cli/scenario.py - the compatibility scenario (see
tests/compat/README.md) through the real `mariadb` command-line client
(and `mariadb-admin ping`).

  scenario.py HOST PORT USER PASSWORD DB BASE
  (with SW_COMPAT_TLS_CA=<CA file> in the environment: over TLS)

The client gets SQL on stdin (--binary-mode: raw bytes, NULs escaped) and
prints --batch output, which this program unescapes. Statements that must
share a session (LAST_INSERT_ID, transactions, an error then a query) run
in one client invocation; affected-row counts come from `-vvv`'s
"Query OK, N rows affected" (the OK packet the router relayed).
"""

import os
import re
import subprocess
import sys

NAME = "O'Brien \"q\" back\\slash Zo\u00eb \u00f1 \u4e2d\u6587 \U0001F600\U0001F389"
BIG_MAX = 9223372036854775807
BIG_MIN = -9223372036854775808
AMOUNT = "12345678901234.123456"
AMOUNT2 = "-0.000001"
TS = "2024-02-29 23:59:58.123456"
PAYLOAD = bytes(range(256)) + bytes(range(255, -1, -1))
BODY = "".join("%06d:0123456789abcdef\u00e9\u2713\U0001F600\n" % i for i in range(32000))

CLI = "/usr/bin/mariadb"
ADMIN = "/usr/bin/mariadb-admin"

failures = []


def step(name, fn):
    try:
        fn()
        print("ok %s" % name, flush=True)
    except Exception as e:
        failures.append(name)
        print("FAIL %s: %s: %s" % (name, type(e).__name__, str(e)[:2000]), flush=True)


def expect(what, got, want):
    if got != want:
        g, w = repr(got), repr(want)
        if len(g) > 300 or len(w) > 300:
            i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                     min(len(got), len(want)))
            g = "length %d, first difference at %d (%r)" % (len(got), i, got[i:i + 40])
            w = "length %d (%r)" % (len(want), want[i:i + 40])
        raise AssertionError("%s: got %s, want %s" % (what, g, w))


def lit(v):
    """SQL string literal of str or bytes (bytes: _binary'...')."""
    b = v if isinstance(v, bytes) else v.encode("utf-8")
    esc = {0: b"\\0", 10: b"\\n", 13: b"\\r", 26: b"\\Z", 39: b"\\'", 92: b"\\\\"}
    out = b"".join(esc.get(x, bytes([x])) for x in b)
    return (b"_binary'" if isinstance(v, bytes) else b"'") + out + b"'"


def unescape(field):
    """A --batch output field (bytes) -> bytes; None for NULL."""
    if field == b"NULL":
        return None
    out = bytearray()
    i = 0
    while i < len(field):
        ch = field[i]
        if ch == 92 and i + 1 < len(field):
            nxt = field[i + 1]
            out += {48: b"\0", 116: b"\t", 110: b"\n", 92: b"\\"}.get(nxt, bytes([92, nxt]))
            i += 2
        else:
            out.append(ch)
            i += 1
    return bytes(out)


def main(argv):
    if len(argv) != 7:
        print("usage: scenario.py HOST PORT USER PASSWORD DB BASE", file=sys.stderr)
        return 2
    host, port, user, password, db, base = argv[1:]
    base = int(base)
    u1, u2, u3 = base + 1, base + 2, base + 3
    st = {}
    # SW_COMPAT_TLS_CA set: over TLS (server certificate not verified)
    tls = ["--ssl", "--ssl-verify-server-cert=0"] if os.environ.get("SW_COMPAT_TLS_CA") else []

    def cli(sql, extra=(), force=False):
        """Runs one client session; returns (rc, stdout bytes, stderr text)."""
        args = [CLI, "--no-defaults", "-h" + host, "-P" + port, "-u" + user, "-p" + password,
                "--protocol=TCP", "--connect-timeout=10", "--default-character-set=utf8mb4",
                "--batch", "-N", "--max-allowed-packet=64M"] + tls + list(extra)
        if force:
            args.append("--force")
        args.append(db)
        r = subprocess.run(args, input=sql if isinstance(sql, bytes) else sql.encode(),
                           capture_output=True, timeout=60)
        return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")

    def ok(sql, extra=()):
        rc, out, err = cli(sql, extra)
        if rc != 0:
            raise AssertionError("mariadb rc=%d: %s" % (rc, err.strip()))
        return out

    def rows(out):
        return [[unescape(f) for f in line.split(b"\t")] for line in out.split(b"\n") if line]

    def affected(out):
        return [int(n) for n in re.findall(rb"Query OK, (\d+) rows? affected", out)]

    def s_connect():
        expect("SELECT 1", rows(ok("SELECT 1")), [[b"1"]])

    def s_cleanup():
        ok("".join("DELETE FROM compat_items WHERE userid = %d;\n" % u for u in (u1, u2, u3)))

    def s_insert_full():
        sql = (b"INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body) VALUES ("
               + b"%d, 'main', " % u1 + lit(NAME) + b", %d, " % BIG_MAX
               + AMOUNT.encode() + b", '" + TS.encode() + b"', " + lit(PAYLOAD) + b", "
               + lit(BODY) + b");\nSELECT LAST_INSERT_ID();\n")
        out = ok(sql, ["--binary-mode", "-vvv"])
        expect("affected rows", affected(out), [1])
        m = re.search(rb"^\| *(\d+) *\|$", out, re.M)     # -vvv prints a table
        if not m or int(m.group(1)) <= 0:
            raise AssertionError("no positive LAST_INSERT_ID() in %r" % out[-300:])
        st["id"] = int(m.group(1))

    def s_read_full():
        r = rows(ok("SELECT id, name, big, amount, ts, HEX(payload), payload, body FROM compat_items"
                    " WHERE userid = %d AND k = 'main'" % u1))
        expect("row count", len(r), 1)
        r = r[0]
        expect("id = LAST_INSERT_ID()", int(r[0]), st.get("id"))
        expect("name", r[1].decode("utf-8"), NAME)
        expect("big", int(r[2]), BIG_MAX)
        expect("amount", r[3].decode(), AMOUNT)
        expect("ts", r[4].decode(), TS)
        expect("HEX(payload)", r[5].decode(), PAYLOAD.hex().upper())
        expect("payload", r[6], PAYLOAD)
        expect("body", r[7].decode("utf-8"), BODY)

    def s_nulls():
        r = rows(ok("INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body)"
                    " VALUES (%d, 'nulls', NULL, NULL, NULL, NULL, NULL, NULL);\n"
                    "SELECT name, big, amount, ts, payload, body FROM compat_items"
                    " WHERE userid = %d AND k = 'nulls';\n" % (u2, u2)))
        expect("rows", r, [[None] * 6])

    def s_multi_row():
        out = ok("INSERT INTO compat_items (userid, k, name, big) VALUES"
                 " (%d, 'a', 'A', 1), (%d, 'b', 'B', 2), (%d, 'c', 'C', 3);\n" % (u3, u3, u3),
                 ["-vvv"])
        expect("affected rows", affected(out), [3])

    def s_update_delete():
        out = ok("UPDATE compat_items SET name = 'B2' WHERE userid = %d AND k = 'b';\n"
                 "DELETE FROM compat_items WHERE userid = %d AND k = 'c';\n" % (u3, u3), ["-vvv"])
        expect("affected rows", affected(out), [1, 1])
        r = rows(ok("SELECT k, name, big FROM compat_items WHERE userid = %d ORDER BY k" % u3))
        expect("rows", r, [[b"a", b"A", b"1"], [b"b", b"B2", b"2"]])

    def s_prepared_reuse():
        # SQL-level PREPARE/EXECUTE: the router either runs it correctly or
        # refuses it cleanly (errno 1235, 'shardwire: ...').
        sql = ("PREPARE s FROM 'SELECT k, big FROM compat_items WHERE userid = ? AND k = ?';\n"
               "SET @u = %d, @k = 'a';\nEXECUTE s USING @u, @k;\n"
               "SET @k = 'b';\nEXECUTE s USING @u, @k;\n" % u3)
        rc, out, err = cli(sql)
        if rc != 0:
            if not re.search(r"^ERROR 1235 \(42000\) at line 1: shardwire:", err, re.M):
                raise AssertionError("PREPARE neither worked nor was refused cleanly: %s" % err)
            print("   (SQL PREPARE refused: %s)" % re.search(r"^ERROR.*", err, re.M).group(0),
                  flush=True)
            r = rows(ok("SELECT k, big FROM compat_items WHERE userid = %d AND k = 'a';\n"
                        "SELECT k, big FROM compat_items WHERE userid = %d AND k = 'b';\n"
                        % (u3, u3)))
        else:
            r = rows(out)
        expect("rows", r, [[b"a", b"1"], [b"b", b"2"]])
        r = rows(ok("SELECT k, big FROM compat_items WHERE userid = %d AND k = 'main'" % u1))
        expect("rows", r, [[b"main", str(BIG_MAX).encode()]])

    def s_session_state():
        mode = b"STRICT_ALL_TABLES,NO_ZERO_DATE"
        sql = "SET time_zone = '+05:00', SESSION sql_mode = '%s';\n" % mode.decode()
        for u, k in ((u1, "main"), (u3, "a"), (u1, "main")):
            sql += ("SELECT @@session.time_zone, @@session.sql_mode, k FROM compat_items"
                    " WHERE userid = %d AND k = '%s';\n" % (u, k))
        sql += "SELECT @@session.time_zone;\n"
        expect("rows", rows(ok(sql)), [[b"+05:00", mode, b"main"], [b"+05:00", mode, b"a"],
                                       [b"+05:00", mode, b"main"], [b"+05:00"]])

    def s_warnings():
        r = rows(ok("SELECT CAST('12abc' AS SIGNED) FROM compat_items WHERE userid = %d AND k = 'a';\nSHOW WARNINGS;\n" % u3))
        expect("rows", r, [[b"12"], [b"Warning", b"1292", b"Truncated incorrect INTEGER value: '12abc'"]])

    def s_tx_commit():
        out = ok("START TRANSACTION;\n"
                 "INSERT INTO compat_items (userid, k, big, amount) VALUES (%d, 'tx-commit', %d, %s);\n"
                 "UPDATE compat_items SET name = 'committed' WHERE userid = %d AND k = 'tx-commit';\n"
                 "COMMIT;\n" % (u1, BIG_MIN, AMOUNT2, u1), ["-vvv"])
        expect("affected rows (begin, insert, update, commit)", affected(out), [0, 1, 1, 0])
        r = rows(ok("SELECT name, big, amount FROM compat_items WHERE userid = %d AND k = 'tx-commit'"
                    % u1))
        expect("rows", r, [[b"committed", str(BIG_MIN).encode(), AMOUNT2.encode()]])

    def s_tx_rollback():
        q = "SELECT COUNT(*) FROM compat_items WHERE userid = %d AND k = 'tx-rollback';\n" % u1
        # an error inside the transaction (--force goes on) does not end it
        dup = "INSERT INTO compat_items (userid, k, name) VALUES (%d, 'main', 'dup');\n" % u1
        rc, out, err = cli("START TRANSACTION;\n"
                           "INSERT INTO compat_items (userid, k, name) VALUES (%d, 'tx-rollback', 'x');\n"
                           % u1 + q + dup + q + "ROLLBACK;\n" + q, force=True)
        if not re.search(r"^ERROR 1062 \(23000\) at line 4", err, re.M):
            raise AssertionError("want ERROR 1062 at line 4, stderr: %r" % err)
        expect("count inside, after the error, after rollback", rows(out), [[b"1"], [b"1"], [b"0"]])

    def s_duplicate_key():
        rc, out, err = cli("INSERT INTO compat_items (userid, k, name) VALUES (%d, 'main', 'dup');\n"
                           "SELECT name FROM compat_items WHERE userid = %d AND k = 'main';\n"
                           % (u1, u1), force=True)
        if not re.search(r"^ERROR 1062 \(23000\) at line 1", err, re.M):
            raise AssertionError("want ERROR 1062, stderr: %r" % err)
        expect("after the error", rows(out), [[NAME.encode()]])

    def s_router_error():
        rc, out, err = cli("SELECT k FROM compat_items;\n"
                           "SELECT COUNT(*) FROM compat_items WHERE userid = %d;\n" % u3, force=True)
        if not re.search(r"^ERROR 1235 \(42000\) at line 1: shardwire:", err, re.M):
            raise AssertionError("want ERROR 1235 ... shardwire:, stderr: %r" % err)
        expect("after the error", rows(out), [[b"2"]])

    def s_ping():
        r = subprocess.run([ADMIN, "--no-defaults", "-h" + host, "-P" + port, "-u" + user,
                            "-p" + password, "--protocol=TCP", "--connect-timeout=10"] + tls + ["ping"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or "mysqld is alive" not in r.stdout:
            raise AssertionError("mariadb-admin ping rc=%d: %s %s" % (r.returncode, r.stdout,
                                                                      r.stderr))

    def s_reconnect():
        r = rows(ok("SELECT COUNT(*) FROM compat_items WHERE userid = %d;\nconnect;\n"
                    "SELECT name, big FROM compat_items WHERE userid = %d AND k = 'main';\n"
                    % (u3, u1)))
        expect("rows", r, [[b"2"], [NAME.encode(), str(BIG_MAX).encode()]])
        # a new session starts clean on every shard: nothing of session_state
        r = rows(ok("".join("SELECT @@session.time_zone, @@session.tx_isolation, k FROM compat_items WHERE userid = ? AND k = ?;\n".replace("?", "%d", 1).replace("?", "'%s'") % (u, k)
                            for u, k in ((u1, "main"), (u3, "a")))))
        expect("new session", r, [[b"SYSTEM", b"REPEATABLE-READ", b"main"],
                                  [b"SYSTEM", b"REPEATABLE-READ", b"a"]])

    step("connect", s_connect)
    if failures:
        return 1
    for name, fn in [("cleanup", s_cleanup), ("insert_full", s_insert_full),
                     ("read_full", s_read_full), ("nulls", s_nulls), ("multi_row", s_multi_row),
                     ("update_delete", s_update_delete), ("prepared_reuse", s_prepared_reuse),
                     ("session_state", s_session_state), ("warnings", s_warnings),
                     ("tx_commit", s_tx_commit), ("tx_rollback", s_tx_rollback),
                     ("duplicate_key", s_duplicate_key), ("router_error", s_router_error),
                     ("ping", s_ping), ("reconnect", s_reconnect)]:
        step(name, fn)
    if failures:
        print("FAILED mariadb-cli: %s" % " ".join(failures), flush=True)
        return 1
    print("PASSED mariadb-cli", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

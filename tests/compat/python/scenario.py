#!/usr/bin/python3
"""
tests/compat/python/scenario.py - the compatibility scenario (see
tests/compat/README.md) through a Python DB-API driver.

  scenario.py pymysql|mysqldb HOST PORT USER PASSWORD DB BASE
  (with SW_COMPAT_TLS_CA=<CA file> in the environment: over TLS)

Both drivers interpolate parameters on the client (paramstyle 'format') and
send COM_QUERY; the "prepared" steps use that, as Python apps do.
"""

import datetime
import decimal
import os
import sys

NAME = "O'Brien \"q\" back\\slash Zo\u00eb \u00f1 \u4e2d\u6587 \U0001F600\U0001F389"
BIG_MAX = 9223372036854775807
BIG_MIN = -9223372036854775808
AMOUNT = "12345678901234.123456"
AMOUNT2 = "-0.000001"
TS = "2024-02-29 23:59:58.123456"
PAYLOAD = bytes(range(256)) + bytes(range(255, -1, -1))
BODY = "".join("%06d:0123456789abcdef\u00e9\u2713\U0001F600\n" % i for i in range(32000))

failures = []


def step(name, fn):
    try:
        fn()
        print("ok %s" % name, flush=True)
    except Exception as e:      # report and go on with the next step
        failures.append(name)
        print("FAIL %s: %s: %s" % (name, type(e).__name__, str(e)[:2000]), flush=True)


def expect(what, got, want):
    if got != want:
        g, w = repr(got), repr(want)
        if len(g) > 300 or len(w) > 300:
            g = "%s of length %s" % (type(got).__name__, len(got) if hasattr(got, "__len__") else "?")
            w = "%s of length %s" % (type(want).__name__, len(want) if hasattr(want, "__len__") else "?")
            if isinstance(got, (str, bytes)) and isinstance(want, (str, bytes)):
                i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                         min(len(got), len(want)))
                g += ", first difference at %d" % i
        raise AssertionError("%s: got %s, want %s" % (what, g, w))


def main(argv):
    if len(argv) != 8 or argv[1] not in ("pymysql", "mysqldb"):
        print("usage: scenario.py pymysql|mysqldb HOST PORT USER PASSWORD DB BASE", file=sys.stderr)
        return 2
    drv, host, port, user, password, db, base = argv[1:]
    port, base = int(port), int(base)
    u1, u2, u3 = base + 1, base + 2, base + 3

    # SW_COMPAT_TLS_CA=<CA file>: connect with TLS (server certificate not verified)
    ca = os.environ.get("SW_COMPAT_TLS_CA")
    if drv == "pymysql":
        import pymysql as m
        tls = {"ssl": {"ca": ca, "check_hostname": False}} if ca else {}

        def connect():
            return m.connect(host=host, port=port, user=user, password=password, database=db,
                             charset="utf8mb4", autocommit=True, connect_timeout=10, **tls)

        def ping(conn):
            conn.ping(reconnect=False)
    else:
        import MySQLdb as m
        tls = {"ssl": {"ca": ca}} if ca else {}

        def connect():
            return m.connect(host=host, port=port, user=user, password=password, database=db,
                             charset="utf8mb4", autocommit=True, connect_timeout=10, **tls)

        def ping(conn):
            conn.ping()

    st = {}

    def q(sql, params=None):
        cur = st["conn"].cursor()
        cur.execute(sql, params)
        rows = cur.fetchall() if cur.description else None
        return cur, rows

    def errno_of(e):
        return e.args[0] if e.args else None

    def s_connect():
        st["conn"] = connect()

    def s_cleanup():
        for u in (u1, u2, u3):
            q("DELETE FROM compat_items WHERE userid = %s", (u,))

    def s_insert_full():
        cur, _ = q("INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body)"
                   " VALUES (%s, 'main', %s, %s, %s, %s, %s, %s)",
                   (u1, NAME, BIG_MAX, decimal.Decimal(AMOUNT),
                    datetime.datetime(2024, 2, 29, 23, 59, 58, 123456), PAYLOAD, BODY))
        expect("affected rows", cur.rowcount, 1)
        st["id"] = cur.lastrowid
        if not st["id"] or st["id"] <= 0:
            raise AssertionError("insert id %r, want > 0" % st["id"])

    def s_last_insert_id():
        _, rows = q("SELECT LAST_INSERT_ID()")
        expect("LAST_INSERT_ID()", rows[0][0], st.get("id"))

    def s_read_full():
        _, rows = q("SELECT id, name, big, amount, ts, payload, body FROM compat_items"
                    " WHERE userid = %s AND k = 'main'", (u1,))
        expect("row count", len(rows), 1)
        r = rows[0]
        expect("id", r[0], st.get("id"))
        expect("name", r[1], NAME)
        expect("big", r[2], BIG_MAX)
        expect("amount", str(r[3]), AMOUNT)
        expect("ts", r[4].isoformat(sep=" ", timespec="microseconds")
               if isinstance(r[4], datetime.datetime) else r[4], TS)
        expect("payload", bytes(r[5]), PAYLOAD)
        expect("body", r[6], BODY)

    def s_nulls():
        q("INSERT INTO compat_items (userid, k, name, big, amount, ts, payload, body)"
          " VALUES (%s, 'nulls', %s, %s, %s, %s, %s, %s)", (u2, None, None, None, None, None, None))
        _, rows = q("SELECT name, big, amount, ts, payload, body FROM compat_items"
                    " WHERE userid = %s AND k = 'nulls'", (u2,))
        expect("rows", [tuple(r) for r in rows], [(None,) * 6])

    def s_multi_row():
        cur, _ = q("INSERT INTO compat_items (userid, k, name, big) VALUES"
                   " (%d, 'a', %%s, 1), (%d, 'b', %%s, 2), (%d, 'c', %%s, 3)" % (u3, u3, u3),
                   ("A", "B", "C"))
        expect("affected rows", cur.rowcount, 3)

    def s_update_delete():
        cur, _ = q("UPDATE compat_items SET name = 'B2' WHERE userid = %s AND k = 'b'", (u3,))
        expect("update affected rows", cur.rowcount, 1)
        cur, _ = q("DELETE FROM compat_items WHERE userid = %s AND k = 'c'", (u3,))
        expect("delete affected rows", cur.rowcount, 1)
        _, rows = q("SELECT k, name, big FROM compat_items WHERE userid = %s ORDER BY k", (u3,))
        expect("rows", [tuple(r) for r in rows], [("a", "A", 1), ("b", "B2", 2)])

    def s_prepared_reuse():
        sql = "SELECT k, big FROM compat_items WHERE userid = %s AND k = %s"
        for u, k, want in ((u3, "a", [("a", 1)]), (u3, "b", [("b", 2)]),
                           (u1, "main", [("main", BIG_MAX)])):
            _, rows = q(sql, (u, k))
            expect("userid %d k %s" % (u, k), [tuple(r) for r in rows], want)

    def s_session_state():
        q("SET time_zone = '+05:00', SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE'")
        for u, k in ((u1, "main"), (u3, "a"), (u1, "main")):
            _, rows = q("SELECT @@session.time_zone, @@session.sql_mode, k FROM compat_items WHERE userid = %s AND k = %s", (u, k))
            expect("userid %d" % u, [tuple(r) for r in rows], [("+05:00", "STRICT_ALL_TABLES,NO_ZERO_DATE", k)])
        _, rows = q("SELECT @@session.time_zone")
        expect("unrouted", rows[0][0], "+05:00")
        # what Django's MySQL backend sends (isolation level, SQL_AUTO_IS_NULL)
        q("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        q("SET SQL_AUTO_IS_NULL = 0")
        for u, k in ((u1, "main"), (u3, "a")):
            _, rows = q("SELECT @@session.tx_isolation, @@session.sql_auto_is_null"
                        " FROM compat_items WHERE userid = %s AND k = %s", (u, k))
            expect("userid %d" % u, [tuple(r) for r in rows], [("READ-COMMITTED", 0)])

    def s_warnings():
        _, rows = q("SELECT CAST('12abc' AS SIGNED) FROM compat_items WHERE userid = %s AND k = 'a'", (u3,))
        expect("CAST", [tuple(r) for r in rows], [(12,)])
        _, rows = q("SHOW WARNINGS")
        expect("SHOW WARNINGS", [tuple(r) for r in rows], [("Warning", 1292, "Truncated incorrect INTEGER value: '12abc'")])

    def in_trans(want):
        """PyMySQL keeps the last OK packet's status flags: SERVER_STATUS_IN_TRANS
        (1) must follow the transaction, SERVER_STATUS_AUTOCOMMIT (2) stay on."""
        status = getattr(st["conn"], "server_status", None)
        if status is None:       # MySQLdb does not expose them
            return
        expect("status flag IN_TRANS", bool(status & 1), want)
        expect("status flag AUTOCOMMIT", bool(status & 2), True)

    def s_tx_commit():
        q("START TRANSACTION")
        q("INSERT INTO compat_items (userid, k, big, amount) VALUES (%s, 'tx-commit', %s, %s)",
          (u1, BIG_MIN, decimal.Decimal(AMOUNT2)))
        cur, _ = q("UPDATE compat_items SET name = 'committed' WHERE userid = %s AND k = 'tx-commit'",
                   (u1,))
        expect("update affected rows", cur.rowcount, 1)
        in_trans(True)
        st["conn"].commit()
        in_trans(False)
        _, rows = q("SELECT name, big, amount FROM compat_items WHERE userid = %s AND k = 'tx-commit'",
                    (u1,))
        expect("rows", [(r[0], r[1], str(r[2])) for r in rows], [("committed", BIG_MIN, AMOUNT2)])

    def s_tx_rollback():
        q("START TRANSACTION")
        q("INSERT INTO compat_items (userid, k, name) VALUES (%s, 'tx-rollback', 'x')", (u1,))
        _, rows = q("SELECT COUNT(*) FROM compat_items WHERE userid = %s AND k = 'tx-rollback'", (u1,))
        expect("count inside the transaction", rows[0][0], 1)
        try:      # an error inside the transaction does not end it
            q("INSERT INTO compat_items (userid, k, name) VALUES (%s, 'main', 'dup')", (u1,))
            raise AssertionError("duplicate INSERT succeeded")
        except m.MySQLError as e:
            expect("errno inside the transaction", errno_of(e), 1062)
        _, rows = q("SELECT COUNT(*) FROM compat_items WHERE userid = %s AND k = 'tx-rollback'", (u1,))
        expect("count after the error", rows[0][0], 1)
        st["conn"].rollback()
        _, rows = q("SELECT COUNT(*) FROM compat_items WHERE userid = %s AND k = 'tx-rollback'", (u1,))
        expect("count after rollback", rows[0][0], 0)

    def s_duplicate_key():
        try:
            q("INSERT INTO compat_items (userid, k, name) VALUES (%s, 'main', 'dup')", (u1,))
        except m.MySQLError as e:
            expect("errno", errno_of(e), 1062)
        else:
            raise AssertionError("duplicate INSERT succeeded")
        _, rows = q("SELECT name FROM compat_items WHERE userid = %s AND k = 'main'", (u1,))
        expect("after the error", [tuple(r) for r in rows], [(NAME,)])

    def s_router_error():
        try:
            q("SELECT k FROM compat_items")
        except m.MySQLError as e:
            expect("errno", errno_of(e), 1235)
            if not str(e.args[1]).startswith("shardwire:"):
                raise AssertionError("message %r does not start with 'shardwire:'" % e.args[1])
        else:
            raise AssertionError("SELECT without a userid succeeded")
        _, rows = q("SELECT COUNT(*) FROM compat_items WHERE userid = %s", (u3,))
        expect("after the error", rows[0][0], 2)

    def s_ping():
        ping(st["conn"])

    def s_reconnect():
        st["conn"].close()
        st["conn"] = connect()
        _, rows = q("SELECT name, big FROM compat_items WHERE userid = %s AND k = 'main'", (u1,))
        expect("rows", [tuple(r) for r in rows], [(NAME, BIG_MAX)])
        # a new session starts clean on every shard: nothing of session_state
        for u, k in ((u1, "main"), (u3, "a")):
            _, rows = q("SELECT @@session.time_zone, @@session.tx_isolation, k FROM compat_items WHERE userid = %s AND k = %s", (u, k))
            expect("new session, userid %d" % u, [tuple(r) for r in rows],
                   [("SYSTEM", "REPEATABLE-READ", k)])
        st["conn"].close()

    step("connect", s_connect)
    if failures:
        return 1
    for name, fn in [("cleanup", s_cleanup), ("insert_full", s_insert_full),
                     ("last_insert_id", s_last_insert_id), ("read_full", s_read_full),
                     ("nulls", s_nulls), ("multi_row", s_multi_row),
                     ("update_delete", s_update_delete), ("prepared_reuse", s_prepared_reuse),
                     ("session_state", s_session_state), ("warnings", s_warnings),
                     ("tx_commit", s_tx_commit), ("tx_rollback", s_tx_rollback),
                     ("duplicate_key", s_duplicate_key), ("router_error", s_router_error),
                     ("ping", s_ping), ("reconnect", s_reconnect)]:
        step(name, fn)
    if failures:
        print("FAILED %s: %s" % (drv, " ".join(failures)), flush=True)
        return 1
    print("PASSED %s" % drv, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""
tests/e2e/test_prepared.py - server-side prepared statements through the
router, spoken in the binary protocol by a raw client so that every case
real drivers produce is covered exactly: types sent only on the first
EXECUTE, the userid bound as LONGLONG, DOUBLE (Node mysql2) or string (PHP
PDO), lazy PREPARE on another shard's connection, long data, cursors, and
the errors.
"""

import cluster
from rawclient import RawClient, err_of

C = None


def setup_module():
    global C
    C = cluster.Cluster(2, start_router=False)
    C.create_schema("CREATE TABLE accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL, "
                    "name VARCHAR(100), data LONGBLOB, PRIMARY KEY (userid, id))")
    C.start_router()


def teardown_module():
    C.stop()


def client():
    rc = RawClient(C.router.port)
    assert rc.login("app", "app-pw", "app")[0] == 0
    return rc


def row_str(row):
    """The first column of a one-column binary row (NULL-bitmap of 1 byte)."""
    n = row[2]
    return row[3:3 + n].decode()


def users_on_two_shards(base):
    users = list(range(base, base + 60))
    shards = C.shards_of(users)
    a = users[0]
    b = next(u for u, s in zip(users, shards) if s != shards[0])
    return a, b


def test_insert_and_select_by_parameter_on_both_shards():
    a, b = users_on_two_shards(10000)
    rc = client()
    try:
        ins, nparams, _ = rc.prepare("INSERT INTO accounts (userid, id, name) VALUES (?, ?, ?)")
        assert nparams == 3
        sel, _, ncols = rc.prepare("SELECT name FROM accounts WHERE userid = ? AND id = ?")
        assert ncols == 1
        for u in (a, b):
            rc.execute(ins, [u, 1, "ps-%d" % u])
            kind = rc.read_binary_result()[0]
            assert kind == "ok", kind
        # Second and later EXECUTEs omit the types (as libmysqlclient does);
        # the other shard's connection never saw them.
        for i, u in enumerate((a, b, a, b)):
            rc.execute(sel, [u, 1], send_types=(i == 0))
            res = rc.read_binary_result()
            assert res[0] == "rows" and [row_str(r) for r in res[1]] == ["ps-%d" % u], res
    finally:
        rc.close()
    for u in (a, b):
        assert C.db_of(u).sql("SELECT name FROM accounts WHERE userid = %s", (u,)) == \
            (("ps-%d" % u,),)


def test_userid_bound_as_double_or_string():
    u = 10100
    rc = client()
    try:
        ins, _, _ = rc.prepare("INSERT INTO accounts (userid, id, name) VALUES (?, 2, 'd')")
        rc.execute(ins, [float(u)])                 # Node mysql2: numbers are DOUBLE
        assert rc.read_binary_result()[0] == "ok"
        sel, _, _ = rc.prepare("SELECT name FROM accounts WHERE userid = ?")
        rc.execute(sel, [str(u)])                   # PHP PDO: strings
        res = rc.read_binary_result()
        assert res[0] == "rows" and [row_str(r) for r in res[1]] == ["d"], res
        for bad in (None, 1.5, "12abc"):
            rc.execute(sel, [bad])
            kind, p = rc.read_binary_result()[:2]
            assert kind == "err" and err_of(p)[0] == 1235, (bad, kind, p)
        rc.execute(sel, [u], send_types=True)       # still usable
        assert rc.read_binary_result()[0] == "rows"
    finally:
        rc.close()
    assert C.db_of(u).sql("SELECT name FROM accounts WHERE userid = %s", (u,)) == (("d",),)


def test_unconfined_statement_refused_at_prepare():
    rc = client()
    try:
        for sql in ("SELECT * FROM accounts", "DELETE FROM accounts WHERE id = ?",
                    "CREATE TABLE x (a INT)"):
            try:
                rc.prepare(sql)
                raise AssertionError("prepared: " + sql)
            except RuntimeError as e:
                assert "shardwire" in e.args[1], e.args
        sid, _, _ = rc.prepare("SELECT 1")           # PDO prepares even this
        rc.execute(sid, [])
        assert rc.read_binary_result()[0] == "rows"
    finally:
        rc.close()


def test_close_and_unknown_statement():
    rc = client()
    try:
        sid, _, _ = rc.prepare("SELECT name FROM accounts WHERE userid = ?")
        rc.command(0x19, sid.to_bytes(4, "little"))     # COM_STMT_CLOSE: no reply
        rc.execute(sid, [1])
        kind, p = rc.read_binary_result()[:2]
        assert kind == "err" and err_of(p)[0] == 1243, (kind, p)
        rc.query("SELECT 1")
        assert rc.read_result()[0] == "rows"
    finally:
        rc.close()


def test_prepare_execute_close_per_query_like_go():
    """go-sql-driver prepares, executes and closes for every query; the
    server-side statement is reused from the connection's cache."""
    a, b = users_on_two_shards(10200)

    def counts():
        return [int(db.sql("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'")[0][1])
                for db in C.shards.values()]

    before = counts()
    rc = client()
    try:
        for i in range(30):
            u = a if i % 2 else b
            sid, _, _ = rc.prepare("SELECT COUNT(*) FROM accounts WHERE userid = ?")
            rc.execute(sid, [u])
            assert rc.read_binary_result()[0] == "rows"
            rc.command(0x19, sid.to_bytes(4, "little"))
    finally:
        rc.close()
    # One server-side statement per shard, not thirty.
    assert all(n - b <= 1 for n, b in zip(counts(), before)), (before, counts())


def test_long_data_and_reset():
    u = 10300
    blob = bytes(range(256)) * 300
    rc = client()
    try:
        ins, _, _ = rc.prepare("INSERT INTO accounts (userid, id, data) VALUES (?, 3, ?)")
        rc.send_long_data(ins, 1, blob[:40000])
        rc.send_long_data(ins, 1, blob[40000:])
        rc.execute(ins, [u, b""], long_params=(1,))
        kind = rc.read_binary_result()
        assert kind[0] == "ok", kind
        rc.command(0x1a, ins.to_bytes(4, "little"))     # COM_STMT_RESET
        assert rc.read_result()[0] == "ok"
    finally:
        rc.close()
    got = C.db_of(u).sql("SELECT data FROM accounts WHERE userid = %s AND id = 3", (u,))
    assert got == ((blob,),)


def test_cursor_fetch():
    u = 10400
    db = C.db_of(u)
    for i in range(10, 15):
        db.sql("INSERT INTO accounts (userid, id, name) VALUES (%s, %s, 'c')", (u, i))
    rc = client()
    try:
        sid, _, _ = rc.prepare("SELECT name FROM accounts WHERE userid = ? ORDER BY id")
        rc.execute(sid, [u], flags=1)       # CURSOR_TYPE_READ_ONLY
        res = rc.read_binary_result()
        assert res[0] == "cursor", res
        got = []
        while True:
            kind, rows, status = rc.fetch(sid, 2)
            assert kind == "rows"
            got += rows
            if status & 0x80:               # LAST_ROW_SENT
                break
        assert len(got) == 5, got
    finally:
        rc.close()


def test_statements_survive_a_pooled_connection_reset():
    """A connection is reset (COM_RESET_CONNECTION) when a session with other
    state takes it over; the server then forgets its prepared statements,
    and so must the router's cache of them."""
    u = 10500
    a = client()
    b = client()
    try:
        sa, _, _ = a.prepare("SELECT COUNT(*) FROM accounts WHERE userid = ?")
        a.execute(sa, [u])
        assert a.read_binary_result()[0] == "rows"
        # b changes its session state and runs on (usually) the same pooled
        # connection, which gets reset; a's statement must still work.
        for i in range(4):
            b.query("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'" if i % 2 == 0
                    else "SET SESSION sql_mode = 'STRICT_ALL_TABLES'")
            assert b.read_result()[0] == "ok"
            b.query("SELECT * FROM accounts WHERE userid = %d" % u)
            assert b.read_result()[0] == "rows"
            a.execute(sa, [u], send_types=False)
            res = a.read_binary_result()
            assert res[0] == "rows", (i, res)
    finally:
        a.close()
        b.close()


def test_prepared_set_is_tracked_like_a_plain_one():
    """Node mysql2 execute() and PDO without emulation send SET as a
    prepared statement; it must follow the session to other connections."""
    a, b = users_on_two_shards(10600)
    rc = client()
    try:
        sid, _, _ = rc.prepare("SET time_zone = '+05:00'")
        rc.execute(sid, [])
        assert rc.read_binary_result()[0] == "ok"
        tz, _, _ = rc.prepare("SELECT @@time_zone FROM accounts WHERE userid = ? LIMIT 1")
        plain, _, _ = rc.prepare("SELECT @@time_zone")
        for u in (a, b, a):
            rc.execute(plain, [])
            res = rc.read_binary_result()
            assert res[0] == "rows" and row_str(res[1][0]) == "+05:00", res
            rc.execute(tz, [u])
            assert rc.read_binary_result()[0] == "rows"
            rc.query("SELECT @@time_zone")
            kind, rows = rc.read_result()
            assert kind == "rows" and rows[0][1:] == b"+05:00", rows
    finally:
        rc.close()


def test_multi_row_insert_with_a_key_per_row():
    """ORMs (Laravel's insert([...]) with native prepares) bind the userid
    once per row; all must be the same user."""
    u = 10700
    rc = client()
    try:
        sid, n, _ = rc.prepare("INSERT INTO accounts (userid, id, name) VALUES (?, ?, ?), (?, ?, ?)")
        assert n == 6
        rc.execute(sid, [u, 1, "r1", str(u), 2, "r2"])
        kind = rc.read_binary_result()
        assert kind[0] == "ok", kind
        rc.execute(sid, [u, 3, "r3", u + 1, 4, "r4"])
        kind, p = rc.read_binary_result()[:2]
        assert kind == "err" and err_of(p)[0] == 1235 and b"different" in p, (kind, p)
    finally:
        rc.close()
    assert C.db_of(u).sql("SELECT id FROM accounts WHERE userid = %s ORDER BY id", (u,)) == \
        ((1,), (2,))

"""
tests/e2e/test_statement_kinds.py - issue 8's statement-level classes on a
live MariaDB through the real router: EXPLAIN/DESCRIBE option words and FOR
CONNECTION, DEFAULT and other values for the character set settings,
sequences, other databases' tables and routines in SHOW/DESCRIBE/calls,
functions spelled in backquotes, per-connection side effects on a pooled
backend connection (one connection, so the next client surely gets the
same one), and keys compared as the server compares them (quoted integers
above 2^53, numbers bound for a string key in the binary protocol).

Every refused statement is first run directly on the server, where it must
be valid (no syntax error): the refusal is of a statement MariaDB would run.
"""

import threading

import pymysql

import cluster
from rawclient import RawClient, err_of

C = None
SKEY = None          # a router with string keys on the same server (database sapp:
                     # a database holds key columns of one type, which the router checks)
USERS = [1, 2, 42, 9007199254740992, 9007199254740993, 9007199254740994]
SUSERS = [b"42", b"042", b"42.0", b" 42", b"alice"]


def setup_module():
    global C, SKEY
    C = cluster.Cluster(1, start_router=False)
    db = C.shards["s0"]
    C.create_schema([
        "CREATE TABLE accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL AUTO_INCREMENT, "
        "secret VARCHAR(50), n INT, PRIMARY KEY (userid, id), KEY (id))",
        "CREATE SEQUENCE seq",
        "CREATE TABLE autoinc (userid BIGINT NOT NULL, id BIGINT NOT NULL AUTO_INCREMENT, "
        "PRIMARY KEY (id), KEY (userid))",
    ])
    for u in USERS:
        db.sql("INSERT INTO accounts (userid, secret, n) VALUES (%s, %s, 1), (%s, %s, 2)",
               (u, "s%d" % u, u, "t%d" % u))
    db.sql("CREATE DATABASE sapp", database=None)
    db.sql("GRANT ALL ON sapp.* TO '%s'@'127.0.0.1'" % cluster.BACKEND_USER, database=None)
    db.sql("CREATE TABLE skeys (userid VARBINARY(64) NOT NULL, secret VARCHAR(50), "
           "PRIMARY KEY (userid))", database="sapp")
    for u in SUSERS:
        db.sql("INSERT INTO skeys (userid, secret) VALUES (%s, %s)", (u, b"s" + u),
               database="sapp")
    db.sql("CREATE DATABASE IF NOT EXISTS other", database=None)
    db.sql("CREATE TABLE IF NOT EXISTS other.t (x INT)", database=None)
    # one worker, one backend connection: consecutive clients share it
    C.start_router({"workers": 1, "pool_max_per_shard": 1, "pool_wait_timeout_ms": 20000,
                    "pool_max_pinned_per_shard": 2})   # B may wait as a pinned session
    SKEY = cluster.Router({"workers": 1, "database": "sapp"}, map_text=cluster.map_text(
        [("s0", "127.0.0.1:%d" % db.port)], key_type="string"))


def teardown_module():
    try:
        if SKEY:
            SKEY.stop()
    finally:
        C.stop()


def q(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def errno_of(conn, sql):
    """The MySQL error number <sql> gets on <conn>, or None if it runs."""
    try:
        q(conn, sql)
        return None
    except pymysql.MySQLError as e:
        return e.args[0]


REFUSED = [
    # EXPLAIN/DESCRIBE with option words: a plan over every user's rows
    "EXPLAIN FORMAT=JSON SELECT * FROM accounts WHERE secret = 's42'",
    "EXPLAIN EXTENDED SELECT * FROM accounts",
    "EXPLAIN EXTENDED ALL SELECT * FROM accounts WHERE n = 2",
    "EXPLAIN PARTITIONS SELECT * FROM accounts",
    "EXPLAIN FORMAT=TRADITIONAL SELECT * FROM accounts",
    "DESCRIBE FORMAT=JSON SELECT * FROM accounts",
    "DESC EXTENDED SELECT secret FROM accounts",
    "ANALYZE FORMAT=JSON SELECT * FROM accounts WHERE secret LIKE 's%'",
    "EXPLAIN UPDATE accounts SET secret = 'x'",
    # another session's SQL
    "EXPLAIN FOR CONNECTION 1",
    "EXPLAIN FORMAT=JSON FOR CONNECTION 1",
    "SHOW EXPLAIN FOR 1",
    "SHOW ANALYZE FOR 1",
    # DEFAULT and comparison-changing values for character set settings
    "SET NAMES DEFAULT",
    "SET CHARACTER SET DEFAULT",
    "SET character_set_client = DEFAULT",
    "SET @@character_set_client=DEFAULT",
    "SET @@session.character_set_connection = DEFAULT",
    "SET collation_connection = DEFAULT",
    "SET NAMES utf8mb4 COLLATE DEFAULT",
    "SET character_set_connection = utf16",
    "SET character_set_database = latin1",
    # sequences: shared by all users, and NEXTVAL leaves state on the connection
    "SELECT NEXTVAL(seq)",
    "SELECT NEXT VALUE FOR seq",
    "SELECT PREVIOUS VALUE FOR seq",
    "SELECT SETVAL(seq, 100)",
    "SELECT LASTVAL(seq)",
    "INSERT INTO accounts (userid, id) VALUES (42, NEXT VALUE FOR seq)",
    # other databases
    "DESCRIBE other.t",
    "DESC mysql.user",
    "SHOW COLUMNS FROM t FROM other",
    "SHOW INDEX FROM other.t",
    "SHOW TABLES FROM other",
    "SHOW TABLES IN mysql",
    "SHOW CREATE TABLE other.t",
    "SHOW GRANTS FOR root@localhost",
    # a function in backquotes is that function
    "SELECT `load_file`('/etc/passwd')",
    # case-only alias differences (one alias with lower_case_table_names=1)
    "SELECT (SELECT GROUP_CONCAT(O.secret) FROM accounts O WHERE O.userid = o.userid) "
    "FROM accounts o WHERE o.userid = 42",
]


def test_refused_statements_are_valid_on_the_server():
    """Guard against refusing only typos: each is a statement MariaDB runs
    (or at worst reports a missing object or thread, never a syntax error)."""
    conn = C.shards["s0"].connect()
    bad = []
    try:
        for sql in REFUSED:
            conn.begin()        # the INSERT must not add a row
            e = errno_of(conn, sql)
            conn.rollback()
            if e == 1064:
                bad.append(sql)
    finally:
        conn.close()
    assert not bad, "not valid MariaDB syntax:\n" + "\n".join(bad)


def test_refused_through_the_router():
    conn = C.router.connect()
    wrong = []
    try:
        for sql in REFUSED:
            try:
                q(conn, sql)
                wrong.append("%s -> ran" % sql)
            except pymysql.MySQLError as e:
                if e.args[0] != 1235 or not e.args[1].startswith("shardwire: "):
                    wrong.append("%s -> %r" % (sql, e.args))
        # the connection is still usable and its character set unchanged
        assert q(conn, "SELECT @@character_set_client, @@character_set_connection") == \
            (("utf8mb4", "utf8mb4"),)
    finally:
        conn.close()
    assert not wrong, "\n".join(wrong)


def test_accepted_forms_touch_only_the_users_rows():
    conn = C.router.connect()
    try:
        plan = q(conn, "EXPLAIN FORMAT=JSON SELECT * FROM accounts WHERE userid = 42")
        assert '"query_block"' in plan[0][0], plan
        assert len(q(conn, "EXPLAIN EXTENDED SELECT * FROM accounts WHERE userid = 42")) >= 1
        rows = q(conn, "ANALYZE FORMAT=JSON SELECT * FROM accounts WHERE userid = 42")
        assert '"r_rows": 2' in rows[0][0], rows
        cols = [r[0] for r in q(conn, "DESCRIBE app.accounts")]
        assert cols == ["userid", "id", "secret", "n"], cols
        assert [r[0] for r in q(conn, "DESC accounts 'sec%'")] == ["secret"]
        assert ("accounts",) in q(conn, "SHOW TABLES FROM app")
        assert len(q(conn, "SHOW COLUMNS FROM accounts FROM app")) == 4
        assert q(conn, "SHOW GRANTS FOR CURRENT_USER")
        # LAST_INSERT_ID(expr) in a routed UPDATE works (it pins the session)
        q(conn, "UPDATE accounts SET n = LAST_INSERT_ID(n + 100) WHERE userid = 42 AND n = 1")
        assert q(conn, "SELECT LAST_INSERT_ID()") == ((101,),)
        q(conn, "UPDATE accounts SET n = 1 WHERE userid = 42 AND n = 101")
    finally:
        conn.close()


def _next_client_sees(first_statements, probe):
    """Runs <first_statements> on client A, closes A, then <probe> on client
    B, which gets the router's only backend connection after A. Returns
    (A's connection id, B's connection id, B's probe rows)."""
    a = C.router.connect()
    try:
        for sql in first_statements:
            q(a, sql)
        cid_a = q(a, "SELECT CONNECTION_ID()")[0][0]
    finally:
        a.close()
    b = C.router.connect()
    try:
        # waits in the pool until the router has finished with A
        rows = q(b, probe)
        cid_b = q(b, "SELECT CONNECTION_ID()")[0][0]
    finally:
        b.close()
    return cid_a, cid_b, rows


def test_last_insert_id_does_not_leak_to_the_next_client():
    cid_a, cid_b, rows = _next_client_sees(["SELECT LAST_INSERT_ID(777)"],
                                           "SELECT LAST_INSERT_ID()")
    assert cid_a == cid_b, "the test needs one shared backend connection"
    assert rows == ((0,),), rows


def test_backquoted_lock_does_not_leak_to_the_next_client():
    cid_a, cid_b, rows = _next_client_sees(["SELECT `get_lock`('sw-stmt-lock', 0)"],
                                           "SELECT IS_FREE_LOCK('sw-stmt-lock')")
    assert cid_a == cid_b, "the test needs one shared backend connection"
    assert rows == ((1,),), rows


def test_insert_id_does_not_leak_to_the_next_client():
    """After A's auto-increment INSERT the connection's LAST_INSERT_ID() is
    the id of A's row; B, next on that connection, must not read it."""
    a, b = C.router.connect(), C.router.connect()
    try:
        q(a, "INSERT INTO autoinc (userid) VALUES (42)")
        assert q(a, "SELECT LAST_INSERT_ID()")[0][0] > 0     # same connection, A's id
        cid_a = q(a, "SELECT CONNECTION_ID()")[0][0]         # A lets the connection go
        rows = q(b, "SELECT LAST_INSERT_ID(), CONNECTION_ID()")
        assert rows[0][1] == cid_a, "the test needs one shared backend connection"
        assert rows[0][0] == 0, rows
    finally:
        a.close()
        b.close()


def test_previous_statement_state_does_not_leak_to_the_next_client():
    """Warnings survive statements without tables: A's warning quoting A's
    row must not be what B's SHOW WARNINGS shows on the connection A left;
    nor A's row counts B's SHOW STATUS or FOUND_ROWS()."""
    a, b = C.router.connect(), C.router.connect()
    try:
        q(a, "SELECT id FROM accounts WHERE userid = 42 AND CAST(secret AS INT) = 0")
        assert "s42" in repr(q(a, "SHOW WARNINGS"))           # A's own, same connection
        cid_a = q(a, "SELECT CONNECTION_ID()")[0][0]          # A lets the connection go
        rows = q(b, "SHOW WARNINGS")
        assert q(b, "SELECT CONNECTION_ID()")[0][0] == cid_a, "needs one shared connection"
        assert rows == (), rows
        q(a, "SELECT * FROM accounts WHERE userid = 9007199254740993")
        assert q(b, "SHOW SESSION STATUS LIKE 'Rows_sent'") == (("Rows_sent", "0"),)
        q(a, "SELECT * FROM accounts WHERE userid = 9007199254740993")
        assert q(b, "SELECT FOUND_ROWS()") == ((0,),)            # pins B: last
    finally:
        a.close()
        b.close()


def test_pinned_client_keeps_its_connection_while_another_waits():
    """A holds state (a lock): the one backend connection stays A's, so B
    waits for it, and gets it reset once A is gone."""
    a = C.router.connect()
    q(a, "SELECT GET_LOCK('sw-stmt-wait', 0)")
    out = {}

    def b_run():
        b = C.router.connect()
        try:
            out["rows"] = q(b, "SELECT IS_FREE_LOCK('sw-stmt-wait'), LAST_INSERT_ID()")
        finally:
            b.close()

    t = threading.Thread(target=b_run)
    t.start()
    try:
        # A still has its connection and its lock while B waits
        q(a, "SELECT LAST_INSERT_ID(5)")
        assert q(a, "SELECT IS_USED_LOCK('sw-stmt-wait') = CONNECTION_ID()") == ((1,),)
        assert "rows" not in out
    finally:
        a.close()
    t.join(30)
    assert out.get("rows") == ((1, 0),), out


def test_quoted_keys_above_2_53_match_exactly():
    conn = C.router.connect()
    try:
        for u in (9007199254740993, 9007199254740992, 9007199254740994):
            rows = q(conn, "SELECT DISTINCT userid FROM accounts WHERE userid = '%d'" % u)
            assert rows == ((u,),), (u, rows)
    finally:
        conn.close()
    rc = RawClient(C.router.port)
    try:
        assert rc.login("app", "app-pw", "app")[0] == 0
        sid, _, _ = rc.prepare("SELECT DISTINCT userid FROM accounts WHERE userid = ?")
        # a string, or a DOUBLE (Node mysql2) holding an integer above 2^53:
        # the server compares either with the BIGINT exactly
        for u, v in ((9007199254740993, "9007199254740993"), (9007199254740994, "9007199254740994"),
                     (9007199254740992, 9007199254740992.0), (9007199254740994, 9007199254740994.0)):
            rc.execute(sid, [v])
            kind, rows, _ = rc.read_binary_result()
            assert kind == "rows" and len(rows) == 1, (u, kind, rows)
            assert rows[0][2:] == u.to_bytes(8, "little", signed=True), rows
    finally:
        rc.close()


def test_string_key_not_named_by_numbers():
    conn = SKEY.connect(database="sapp")
    try:
        assert q(conn, "SELECT secret FROM skeys WHERE userid = '042'") == (("s042",),)
        assert errno_of(conn, "SELECT secret FROM skeys WHERE userid = 42") == 1235
        assert errno_of(conn, "SET NAMES utf8") == 1235
    finally:
        conn.close()
    # the handshake's character set too: utf8mb3 and ascii are refused
    for cs in ("utf8", "ascii"):          # pymysql: utf8 is collation 33, utf8mb3
        try:
            SKEY.connect(charset=cs, database="sapp").close()
            assert False, "%s accepted with string keys" % cs
        except pymysql.MySQLError as e:
            assert e.args[0] == 1115, e.args
    c = C.router.connect(charset="utf8")           # integer keys: allowed
    assert q(c, "SELECT @@character_set_client") == (("utf8mb3",),)
    c.close()
    # directly, a number matches several users' rows
    n = C.shards["s0"].sql("SELECT COUNT(*) FROM skeys WHERE userid = 42", database="sapp")[0][0]
    assert n >= 3, n
    rc = RawClient(SKEY.port)
    try:
        assert rc.login("app", "app-pw", "sapp")[0] == 0
        sid, _, _ = rc.prepare("SELECT secret FROM skeys WHERE userid = ?")
        for v in (42, 42.0):
            rc.execute(sid, [v])
            kind, p = rc.read_binary_result()[:2]
            assert kind == "err" and err_of(p)[0] == 1235, (v, kind, p)
        rc.execute(sid, ["042"])
        kind, rows, _ = rc.read_binary_result()
        assert kind == "rows" and [r[3:3 + r[2]] for r in rows] == [b"s042"], (kind, rows)
    finally:
        rc.close()


# Aliases that differ only by case are one alias to a server with
# lower_case_table_names=1: in a correlated subquery the inner table then
# shadows the outer one, and a "join to the outer user" compares the inner
# table with itself.
ALIAS_TEMPLATES = [
    "SELECT (SELECT GROUP_CONCAT({B}.note) FROM items {B} WHERE {B}.userid = {A}.userid) "
    "FROM orders {A} WHERE {A}.userid = 42",
    "SELECT {A}.id FROM orders {A} WHERE {A}.userid = 42 AND EXISTS (SELECT 1 FROM items {B} "
    "WHERE {B}.userid = {A}.userid AND {B}.note = 'note 1')",
    "SELECT {A}.id FROM orders {A} WHERE {A}.userid = 42 AND {A}.id IN "
    "(SELECT {B}.id FROM items {B} WHERE {A}.userid = {B}.userid)",
    "SELECT (SELECT COUNT(*) FROM items {B} WHERE {A}.userid = {B}.userid) "
    "FROM orders {A} WHERE {A}.userid = 42",
    "SELECT {A}.id, {B}.note FROM orders {A} JOIN items {B} ON {B}.userid = {A}.userid "
    "WHERE {A}.userid = 42",
    "SELECT {A}.id FROM orders {A}, items {B} WHERE {A}.userid = 42 AND {B}.userid = {A}.userid",
]
ALIAS_PAIRS = [("a", "b"), ("o", "O"), ("O", "o"), ("x", "X"), ("s", "\u017f"), ("t1", "T1"),
               ("`o`", "`O`")]


def test_case_only_aliases_on_a_lower_case_server():
    import test_confinement as tc
    lc = cluster.MariaDB("lctn1", extra_args=["--lower-case-table-names=1"])
    try:
        assert lc.sql("SELECT @@lower_case_table_names")[0][0] == 1
        for t in tc.TABLES:
            lc.sql("CREATE TABLE `%s` (%s) DEFAULT CHARSET=utf8mb4" % (t, tc.COLUMNS))
        stmts = [tpl.format(A=a, B=b) for tpl in ALIAS_TEMPLATES for a, b in ALIAS_PAIRS]
        decisions = cluster.explain(stmts)
        routed = [(s, int(d["key"]), d) for s, d in zip(stmts, decisions)
                  if d.get("decision") == "route"]
        refused = [s for s, d in zip(stmts, decisions) if d.get("decision") == "reject"]
        # the distinct pair is routed for every template; a case-only pair never
        assert len(routed) == len(ALIAS_TEMPLATES), [s for s, _, _ in routed]
        assert all(" a" in s and " b" in s for s, _, _ in routed), routed
        conn = pymysql.connect(host="127.0.0.1", port=lc.port, user=cluster.BACKEND_USER,
                               password=cluster.BACKEND_PASSWORD, database=cluster.APP_DB,
                               autocommit=True, charset="utf8mb4")
        try:
            assert not tc.check_reads(conn, routed)
            # the check is not vacuous: here the refused ones do leak
            leaks = tc.check_reads(conn, [(s, 42, {"stmt": "select"}) for s in refused])
            assert len(leaks) >= 3, leaks
        finally:
            conn.close()
    finally:
        lc.stop()

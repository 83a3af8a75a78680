"""
tests/e2e/test_basic.py - the router's first promise, end to end: real
MariaDB shards, the real shardwire, the real `mariadb` client, PyMySQL and
mysqlclient (MySQLdb). Rows must land on the shard their userid maps to (as
`shardctl explain` computes it), and 100 users must spread over both shards.
"""

import MySQLdb
import pymysql

import cluster

c = None

SCHEMA = [
    "CREATE TABLE accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL, name VARCHAR(100),"
    " PRIMARY KEY (userid, id))",
]


def setup_module():
    global c
    c = cluster.Cluster(n_shards=2, start_router=False)
    c.create_schema(SCHEMA)
    c.start_router()


def teardown_module():
    c.stop(check=True)     # SIGTERM: exit 0, no sanitizer report


def where_is(userid):
    """{shard name: rows of accounts for <userid>} read directly from the shards."""
    return {n: db.sql("SELECT userid, id, name FROM accounts WHERE userid = %s ORDER BY id",
                      (userid,))
            for n, db in c.shards.items()}


def assert_only_on_owner(userid, rows):
    owner = c.shard_of(userid)
    found = where_is(userid)
    for name, got in found.items():
        if name == owner:
            assert list(got) == list(rows), "userid %d on %s: %r, expected %r" % (
                userid, name, got, rows)
        else:
            assert not got, "userid %d (owner %s) also found on %s: %r" % (
                userid, owner, name, got)


def test_mariadb_cli_connects_and_selects():
    r = cluster.mysql_cli(c.router.port, "app", "app-pw", "SELECT 1 AS one")
    assert r.rc == 0, r
    assert r.stdout.split() == ["one", "1"], r


def test_mariadb_cli_insert_and_select():
    r = cluster.mysql_cli(c.router.port, "app", "app-pw",
                          "INSERT INTO accounts (userid, id, name) VALUES (7, 1, 'cli');"
                          "SELECT name FROM accounts WHERE userid = 7", args=("--batch", "-N"))
    assert r.rc == 0 and r.stdout == "cli\n", r
    assert_only_on_owner(7, [(7, 1, "cli")])


def test_pymysql_insert_lands_on_owner_shard():
    conn = c.router.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO accounts (userid, id, name) VALUES (42, 1, 'a')")
            assert cur.rowcount == 1
            cur.execute("SELECT userid, id, name FROM accounts WHERE userid = 42")
            assert cur.fetchall() == ((42, 1, "a"),)
    finally:
        conn.close()
    assert_only_on_owner(42, [(42, 1, "a")])


def test_mysqldb_driver():
    conn = MySQLdb.connect(host="127.0.0.1", port=c.router.port, user="app",
                           password="app-pw", database="app", autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("INSERT INTO accounts (userid, id, name) VALUES (1001, 1, 'my')")
        cur.execute("SELECT name FROM accounts WHERE userid = 1001")
        assert cur.fetchall() == (("my",),)
        cur.execute("SELECT @@version")
        assert cur.fetchone()[0]
    finally:
        conn.close()
    assert_only_on_owner(1001, [(1001, 1, "my")])


def test_100_users_spread_over_both_shards():
    users = list(range(5000, 5100))
    conn = c.router.connect()
    try:
        with conn.cursor() as cur:
            for u in users:
                cur.execute("INSERT INTO accounts (userid, id, name) VALUES (%s, 1, %s)",
                            (u, "u%d" % u))
    finally:
        conn.close()
    owners = dict(zip(users, c.shards_of(users)))
    for name, db in c.shards.items():
        got = {r[0] for r in db.sql("SELECT userid FROM accounts WHERE userid BETWEEN 5000 AND 5099")}
        want = {u for u, s in owners.items() if s == name}
        assert got == want, "shard %s: unexpected %s, missing %s" % (
            name, sorted(got - want), sorted(want - got))
        assert len(want) >= 20, "shard %s holds only %d of 100 users" % (name, len(want))


def test_update_and_delete_are_routed():
    conn = c.router.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO accounts (userid, id, name) VALUES (77, 1, 'x'), (77, 2, 'y')")
            cur.execute("UPDATE accounts SET name = 'z' WHERE userid = 77 AND id = 2")
            assert cur.rowcount == 1
            cur.execute("DELETE FROM accounts WHERE id = 1 AND userid = 77")
            assert cur.rowcount == 1
    finally:
        conn.close()
    assert_only_on_owner(77, [(77, 2, "z")])


def test_statement_without_userid_is_refused_and_connection_stays_usable():
    conn = c.router.connect()
    try:
        with conn.cursor() as cur:
            try:
                cur.execute("SELECT * FROM accounts")
                raise AssertionError("a statement without userid was not refused")
            except pymysql.MySQLError as e:
                errno, msg = e.args[0], e.args[1]
                assert errno > 0 and "userid" in msg, e.args
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        conn.close()


def test_ddl_is_refused():
    conn = c.router.connect()
    try:
        with conn.cursor() as cur:
            try:
                cur.execute("CREATE TABLE nope (userid BIGINT)")
                raise AssertionError("DDL was not refused")
            except pymysql.MySQLError as e:
                assert e.args[0] > 0, e.args
            cur.execute("SELECT 1")
    finally:
        conn.close()
    for db in c.shards.values():
        assert not db.sql("SHOW TABLES LIKE 'nope'")


def test_connect_time_statements():
    conn = c.router.connect()
    try:
        with conn.cursor() as cur:
            for stmt in ["SET NAMES utf8mb4", "SET autocommit=1", "SELECT 1",
                         "SELECT @@version", "SELECT DATABASE()",
                         "SELECT @@max_allowed_packet"]:
                cur.execute(stmt)
                cur.fetchall()
            cur.execute("SELECT DATABASE()")
            assert cur.fetchone() == ("app",)
        conn.ping()
    finally:
        conn.close()


def test_wrong_password_is_refused():
    try:
        c.router.connect(password="wrong").close()
        raise AssertionError("wrong password accepted")
    except pymysql.err.OperationalError as e:
        assert e.args[0] == 1045, e.args


def test_transaction_pins_to_first_shard():
    # Two users on different shards.
    users = list(range(9000, 9100))
    owners = c.shards_of(users)
    a = users[0]
    b = next(u for u, s in zip(users, owners) if s != owners[0])
    conn = c.router.connect(autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("INSERT INTO accounts (userid, id, name) VALUES (%s, 1, 'tx')", (a,))
            try:
                cur.execute("INSERT INTO accounts (userid, id, name) VALUES (%s, 1, 'tx')", (b,))
                raise AssertionError("a cross-shard statement in a transaction was accepted")
            except pymysql.MySQLError as e:
                assert e.args[0] > 0, e.args
            # Still in the transaction: invisible from outside until COMMIT.
            assert not c.db_of(a).sql("SELECT 1 FROM accounts WHERE userid = %s", (a,))
            cur.execute("COMMIT")
    finally:
        conn.close()
    assert_only_on_owner(a, [(a, 1, "tx")])
    assert_only_on_owner(b, [])

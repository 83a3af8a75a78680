"""
tests/e2e/test_session_features.py - TLS for clients, require_secure_transport,
COM_CHANGE_USER, COM_STATISTICS, COM_SET_OPTION, COM_FIELD_LIST, session
state across pooled backend connections, and multiplexing (many idle
clients on few backend connections).
"""

import os
import ssl
import subprocess

import MySQLdb
import pymysql

import cluster
from rawclient import RawClient, err_of

C = None
CERT = KEY = None


def setup_module():
    global C, CERT, KEY
    C = cluster.Cluster(2, start_router=False)
    C.create_schema("CREATE TABLE accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL, "
                    "name VARCHAR(100), PRIMARY KEY (userid, id))")
    d = cluster.tmp_root()
    CERT, KEY = os.path.join(d, "router.crt"), os.path.join(d, "router.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-keyout", KEY, "-out", CERT],
                   check=True, capture_output=True)
    C.start_router({"tls_cert": CERT, "tls_key": KEY, "pool_max_per_shard": 8})


def teardown_module():
    C.stop()


def q(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def test_tls_with_pymysql_and_cli():
    ctx = {"ca": CERT, "check_hostname": False}
    c = C.router.connect(ssl=ctx)
    try:
        assert isinstance(c._sock, ssl.SSLSocket) and c._sock.version().startswith("TLS")
        q(c, "INSERT INTO accounts (userid, id, name) VALUES (700, 1, 'tls')")
        assert q(c, "SELECT name FROM accounts WHERE userid = 700") == (("tls",),)
    finally:
        c.close()
    r = cluster.mysql_cli(C.router.port, "app", "app-pw", "SELECT 'over tls' AS x",
                          args=("--batch", "--ssl", "--ssl-verify-server-cert=0"))
    assert r.rc == 0 and "over tls" in r.stdout, r
    # Plain connections still work when TLS is only offered.
    c = C.router.connect()
    assert q(c, "SELECT 1") == ((1,),)
    c.close()


def test_require_secure_transport():
    r = cluster.Router({"map_file": C.map_file, "tls_cert": CERT, "tls_key": KEY,
                        "require_secure_transport": "on"})
    try:
        try:
            r.connect().close()
            raise AssertionError("plain login accepted")
        except pymysql.err.OperationalError as e:
            assert e.args[0] == 3159, e.args
        c = r.connect(ssl={"ca": CERT, "check_hostname": False})
        assert q(c, "SELECT 2") == ((2,),)
        c.close()
    finally:
        r.stop()


def test_change_user_resets_session():
    c = MySQLdb.connect(host="127.0.0.1", port=C.router.port, user="app", password="app-pw",
                        database="app")
    try:
        cur = c.cursor()
        cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES'")
        c.change_user("app", "app-pw", "app")
        cur = c.cursor()
        cur.execute("SELECT @@sql_mode")
        assert "STRICT_ALL_TABLES" not in cur.fetchone()[0]
        try:
            c.change_user("app", "wrong", "app")
            raise AssertionError("change_user with a wrong password accepted")
        except MySQLdb.OperationalError as e:
            assert e.args[0] == 1045, e.args
    finally:
        c.close()


def test_statistics_set_option_field_list():
    c = MySQLdb.connect(host="127.0.0.1", port=C.router.port, user="app", password="app-pw",
                        database="app")
    try:
        assert "Questions" in c.stat()
        c.set_server_option(1)      # MYSQL_OPTION_MULTI_STATEMENTS_OFF
        cur = c.cursor()
        cur.execute("SELECT 3")
        assert cur.fetchone() == (3,)
    finally:
        c.close()
    rc = RawClient(C.router.port)
    try:
        assert rc.login("app", "app-pw", "app")[0] == 0
        rc.command(0x04, b"accounts\0")         # COM_FIELD_LIST
        names = []
        while True:
            _, p = rc.read_packet()
            if p[0] == 0xfe and len(p) < 9:
                break
            assert p[0] != 0xff, err_of(p)
            names.append(p)
        assert len(names) == 3, names
    finally:
        rc.close()


def test_many_idle_clients_share_few_backend_connections():
    """200 clients each run a statement, then sit idle: the backend
    connections they used went back to the pool (pool_max_per_shard 8)."""
    conns = []
    try:
        for i in range(200):
            c = C.router.connect()
            q(c, "SELECT * FROM accounts WHERE userid = %d" % (800 + i))
            conns.append(c)
        for c in conns[::10]:
            q(c, "SELECT * FROM accounts WHERE userid = 1")
        for name, db in C.shards.items():
            n = db.sql("SELECT COUNT(*) FROM information_schema.processlist "
                       "WHERE user = 'shardwire'")[0][0]
            assert n <= 8, (name, n)
    finally:
        for c in conns:
            c.close()


def test_session_state_follows_the_client_across_connections():
    """Two clients with different time zones interleave on the same small
    pool; each always sees its own."""
    a, b = C.router.connect(), C.router.connect()
    try:
        q(a, "SET time_zone = '+05:00'")
        q(b, "SET time_zone = '-03:00'")
        for i in range(20):
            u = 900 + i
            q(a, "SELECT * FROM accounts WHERE userid = %d" % u)
            assert q(a, "SELECT @@time_zone") == (("+05:00",),)
            q(b, "SELECT * FROM accounts WHERE userid = %d" % u)
            assert q(b, "SELECT @@time_zone") == (("-03:00",),)
    finally:
        a.close()
        b.close()


def shardwire_conns(db):
    return db.sql("SELECT COUNT(*) FROM information_schema.processlist "
                  "WHERE user = 'shardwire'")[0][0]


def test_pool_idle_timeout_closes_backend_connections():
    """A backend connection idle for pool_idle_timeout_ms is closed. The
    router logs in with an account of its own, so the count cannot be moved
    by the module's other router (its pool fills and drains on its own
    schedule), and waits with a deadline, not a race against the sweep."""
    db = C.db_of(1)
    for stmt in ("CREATE USER IF NOT EXISTS 'sw_idle'@'127.0.0.1' IDENTIFIED BY 'idle-pw'",
                 "GRANT ALL ON %s.* TO 'sw_idle'@'127.0.0.1'" % cluster.APP_DB):
        db.sql(stmt)
    r = cluster.Router({"map_file": C.map_file, "pool_idle_timeout_ms": 300,
                        "backend_user": "sw_idle", "backend_password": "idle-pw"})

    def conns():
        return db.sql("SELECT COUNT(*) FROM information_schema.processlist "
                      "WHERE user = 'sw_idle'")[0][0]
    try:
        c = r.connect()
        q(c, "SELECT * FROM accounts WHERE userid = 1")
        # The statement needed one; it is closed once idle, however long
        # this machine takes to look.
        cluster.wait_for(lambda: conns() == 0, 10,
                         "idle backend connection closed after pool_idle_timeout_ms")
        assert q(c, "SELECT * FROM accounts WHERE userid = 1") == ()
        cluster.wait_for(lambda: conns() == 0, 10, "the second one closed too")
        c.close()
    finally:
        r.stop()


def test_dead_pooled_connection_replaced_unnoticed():
    """The shard kills the router's idle connections; the client's next
    statements run on new ones without an error."""
    db = C.db_of(5)
    c = C.router.connect()
    try:
        q(c, "SELECT * FROM accounts WHERE userid = 5")
        for _ in range(3):
            for (tid,) in db.sql("SELECT id FROM information_schema.processlist "
                                 "WHERE user = 'shardwire'"):
                db.sql("KILL %d" % tid)
            cluster.wait_for(lambda: shardwire_conns(db) == 0, 10, "connections killed")
            assert q(c, "SELECT * FROM accounts WHERE userid = 5") == ()
    finally:
        c.close()

"""
tests/e2e/test_router.py - the router core (issue 2) end to end: real
MariaDB shards, the real shardwire binary, real clients (the mariadb CLI,
PyMySQL, mysqlclient) and a raw-socket client for malformed input.
"""

import os
import signal
import socket
import struct
import subprocess
import threading
import time

import pymysql

import cluster
from rawclient import RawClient, err_of, native_token

C = None
SCHEMA = [
    "CREATE TABLE accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL, "
    "name VARCHAR(100), PRIMARY KEY (userid, id))",
    "CREATE TABLE blobs (userid BIGINT NOT NULL, id INT NOT NULL, data LONGBLOB, "
    "PRIMARY KEY (userid, id))",
]


def setup_module():
    global C
    C = cluster.Cluster(2, start_router=False)
    C.create_schema(SCHEMA)
    C.start_router({"handshake_timeout_ms": 1000})


def teardown_module():
    C.stop()


def rows_on(shard, sql, params=None):
    return C.shards[shard].sql(sql, params)


def q(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def router_alive():
    c = C.router.connect()
    try:
        assert q(c, "SELECT 1") == ((1,),)
    finally:
        c.close()


def test_session_statements():
    c = C.router.connect()
    try:
        assert q(c, "SELECT 1") == ((1,),)
        assert "MariaDB" in q(c, "SELECT @@version")[0][0]
        assert q(c, "SELECT DATABASE()") == (("app",),)
        q(c, "SET NAMES utf8mb4")
        q(c, "SET autocommit = 1")
        q(c, "USE app")
        c.ping()
        c.select_db("app")
        try:
            c.select_db("mysql")
            raise AssertionError("USE of another database accepted")
        except pymysql.err.MySQLError as e:
            assert e.args[0] == 1044, e.args
    finally:
        c.close()


def test_set_replayed_on_other_shard():
    """A session SET made while on one shard holds on the other too."""
    a, b = 2000, None
    for u in range(2001, 2100):
        if C.shard_of(u) != C.shard_of(a):
            b = u
            break
    c = C.router.connect()
    try:
        q(c, "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
        q(c, "SELECT * FROM accounts WHERE userid = %d" % a)
        assert q(c, "SELECT @@sql_mode") == (("NO_ENGINE_SUBSTITUTION",),)
        q(c, "SELECT * FROM accounts WHERE userid = %d" % b)
        assert q(c, "SELECT @@sql_mode") == (("NO_ENGINE_SUBSTITUTION",),)
    finally:
        c.close()
    # Another session does not inherit it, whichever pooled connection it gets.
    c = C.router.connect()
    try:
        for u in (a, b):
            q(c, "SELECT * FROM accounts WHERE userid = %d" % u)
            assert q(c, "SELECT @@sql_mode")[0][0] != "NO_ENGINE_SUBSTITUTION"
    finally:
        c.close()


def two_users_on_different_shards():
    a = 3000
    for b in range(3001, 3200):
        if C.shard_of(b) != C.shard_of(a):
            return a, b
    raise AssertionError("no second shard found")


def test_rollback_and_autocommit_off():
    a, b = two_users_on_different_shards()
    c = C.router.connect()
    try:
        q(c, "START TRANSACTION")
        q(c, "INSERT INTO accounts (userid, id, name) VALUES (%d, 10, 'rolled')" % a)
        q(c, "ROLLBACK")
        assert q(c, "SELECT COUNT(*) FROM accounts WHERE userid = %d AND id = 10" % a) == ((0,),)
        # autocommit=0: the first statement opens a transaction on its shard.
        q(c, "SET autocommit = 0")
        q(c, "INSERT INTO accounts (userid, id, name) VALUES (%d, 11, 'ac0')" % b)
        try:
            q(c, "SELECT * FROM accounts WHERE userid = %d" % a)
            raise AssertionError("cross-shard statement accepted with autocommit=0")
        except pymysql.err.MySQLError as e:
            assert e.args[0] == 1235, e.args
        q(c, "COMMIT")
        # After COMMIT the next transaction may start on another shard.
        q(c, "INSERT INTO accounts (userid, id, name) VALUES (%d, 11, 'ac0')" % a)
        q(c, "COMMIT")
        q(c, "SET autocommit = 1")
    finally:
        c.close()
    for u in (a, b):
        assert rows_on(C.shard_of(u), "SELECT name FROM accounts WHERE userid = %s AND id = 11",
                       (u,)) == (("ac0",),)


def test_unknown_user_refused_like_wrong_password():
    for user, pw in (("ghost", "app-pw"), ("", "")):
        try:
            C.router.connect(user=user, password=pw).close()
            raise AssertionError("login accepted for %s" % user)
        except pymysql.err.OperationalError as e:
            assert e.args[0] == 1045, e.args
    router_alive()


def test_auth_switch_from_other_plugin():
    rc = RawClient(C.router.port)
    try:
        r = rc.login("app", "app-pw", database="app", plugin=b"caching_sha2_password")
        assert r[0] == 0, r
        rc.query("SELECT 7")
        kind, rows = rc.read_result()
        assert kind == "rows" and len(rows) == 1, (kind, rows)
    finally:
        rc.close()


def test_large_packets_both_directions():
    """A 17 MB value crosses the 16 MB packet boundary both ways."""
    blob = bytes(range(256)) * (17 * 4096)
    c = C.router.connect()
    try:
        with c.cursor() as cur:
            cur.execute("INSERT INTO blobs (userid, id, data) VALUES (%s, 1, %s)", (7100, blob))
            cur.execute("SELECT data FROM blobs WHERE userid = %s AND id = 1", (7100,))
            got = cur.fetchone()[0]
        assert got == blob
    finally:
        c.close()
    got = rows_on(C.shard_of(7100), "SELECT LENGTH(data) FROM blobs WHERE userid = 7100")
    assert got == ((len(blob),),)


def test_packet_over_max_allowed_packet():
    r = Router2({"max_allowed_packet": "1M"})
    try:
        c = r.connect()
        try:
            with c.cursor() as cur:
                cur.execute("INSERT INTO blobs (userid, id, data) VALUES (%s, 2, %s)",
                            (7200, b"x" * (2 << 20)))
            raise AssertionError("oversize packet accepted")
        except pymysql.err.MySQLError as e:
            assert e.args[0] == 1153 and "max_allowed_packet" in e.args[1], e.args
        finally:
            try:
                c.close()
            except Exception:
                pass
        c = r.connect()
        assert q(c, "SELECT 3") == ((3,),)
        c.close()
    finally:
        r.stop()


def Router2(extra):
    cfg = {"map_file": C.map_file}
    cfg.update(extra)
    return cluster.Router(cfg)


def test_malformed_and_unknown_input():
    # Garbage instead of a handshake response: error or close, never a crash.
    rc = RawClient(C.router.port)
    rc.greeting()
    rc.send_raw(b"\x05\x00\x00\x01hello")
    try:
        _, p = rc.read_packet()
        assert p[0] == 0xff, p
    except (EOFError, ConnectionError):
        pass
    rc.close()
    # A truncated packet then close.
    rc = RawClient(C.router.port)
    rc.greeting()
    rc.send_raw(b"\xff\xff\x00\x01abc")
    rc.close()
    # After login: unknown command, empty packet, then a good query.
    rc = RawClient(C.router.port)
    assert rc.login("app", "app-pw", "app")[0] == 0
    rc.command(0x42)
    kind, p = rc.read_result()
    assert kind == "err" and err_of(p)[0] == 1047, (kind, p)
    rc.send_packet(b"", seq=0)
    kind, p = rc.read_result()
    assert kind == "err", (kind, p)
    rc.query("SELECT 5")
    kind, rows = rc.read_result()
    assert kind == "rows" and len(rows) == 1
    rc.query(b"SELECT \xff\xfe\x00 FROM accounts WHERE userid = 1")
    kind, p = rc.read_result()
    assert kind in ("err", "rows"), kind
    rc.query("SELECT 6")
    kind, rows = rc.read_result()
    assert kind == "rows"
    rc.close()
    router_alive()


def test_stalled_handshake_is_closed():
    s = socket.create_connection(("127.0.0.1", C.router.port), timeout=10)
    try:
        s.recv(4096)            # the greeting; then say nothing
        t0 = time.monotonic()
        data = s.recv(4096)     # the router closes us after handshake_timeout_ms
        assert data == b"" or data[4] == 0xff, data
        assert time.monotonic() - t0 < 8
    finally:
        s.close()
    router_alive()


def test_client_disconnects_mid_result():
    c = C.router.connect()
    try:
        q(c, "INSERT INTO blobs (userid, id, data) VALUES (7300, 1, REPEAT('a', 8000000))")
    finally:
        c.close()
    for _ in range(5):
        rc = RawClient(C.router.port)
        assert rc.login("app", "app-pw", "app")[0] == 0
        rc.query("SELECT data, data, data FROM blobs WHERE userid = 7300")
        rc.recv_exact(1000)
        rc.close()
    router_alive()


def test_backend_down_gives_error_then_recovers():
    victim_user = 8000
    shard = C.shard_of(victim_user)
    db = C.shards[shard]
    db.kill()
    try:
        c = C.router.connect()
        try:
            q(c, "SELECT * FROM accounts WHERE userid = %d" % victim_user)
            raise AssertionError("statement to a dead shard succeeded")
        except pymysql.err.MySQLError as e:
            assert e.args[0] in (2003, 2013), e.args
            assert "shardwire" in e.args[1], e.args
        # The session and the other shard keep working.
        other = next(u for u in range(8001, 8200) if C.shard_of(u) != shard)
        q(c, "SELECT * FROM accounts WHERE userid = %d" % other)
        c.close()
    finally:
        db.start()
    c = C.router.connect()
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                q(c, "SELECT * FROM accounts WHERE userid = %d" % victim_user)
                break
            except pymysql.err.MySQLError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        c.close()


def test_backend_refuses_auth():
    r = Router2({"backend_password": "wrong"})
    try:
        c = r.connect()
        try:
            q(c, "SELECT * FROM accounts WHERE userid = 1")
            raise AssertionError("worked with a wrong backend password")
        except pymysql.err.MySQLError as e:
            assert e.args[0] == 2003 and "Access denied" in e.args[1], e.args
        c.close()
    finally:
        r.stop()


def test_sigterm_lets_inflight_statement_finish():
    r = Router2({"shutdown_timeout_ms": 10000})
    c = r.connect()
    q(c, "INSERT IGNORE INTO accounts (userid, id, name) VALUES (42, 1, 'sig')")
    result = {}

    def run():
        try:
            result["rows"] = q(c, "SELECT SLEEP(1.5), userid FROM accounts WHERE userid = 42")
        except Exception as e:          # noqa: BLE001 - reported below
            result["err"] = e

    t = threading.Thread(target=run)
    t.start()
    db = C.db_of(42)
    cluster.wait_for(lambda: db.sql(
        "SELECT COUNT(*) FROM information_schema.processlist "
        "WHERE info LIKE 'SELECT SLEEP(1.5)%%'")[0][0] == 1, 10, "statement on the shard")
    r.proc.send(signal.SIGTERM)
    t.join(20)
    assert "rows" in result, result
    assert result["rows"] == ((0, 42),), result
    r.proc.popen.wait(20)       # it ends by itself (a second SIGTERM would cut it short)
    assert r.stop() == 0


def test_check_config_help_version():
    binary = cluster.shardwire_path()
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("shardwire "), out
    out = subprocess.run([binary, "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--check-config" in out.stdout, out
    out = subprocess.run([binary, "--check-config", "-c", C.router.config_path],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "OK" in out.stdout, out
    bad = os.path.join(C.router.dir, "bad.conf")
    with open(bad, "w") as f:
        f.write("listen = 127.0.0.1:6033\nbogus_key = 1\n")
    out = subprocess.run([binary, "--check-config", "-c", bad], capture_output=True, text=True)
    assert out.returncode != 0 and "bogus_key" in out.stderr, out


def test_operator_rules_deny_and_bad_regex():
    r = Router2({"rule": ['deny /(?i)\\bFROM\\s+accounts\\b.*\\bname\\s+LIKE\\b/ '
                          '"name searches are disabled during the incident"']})
    try:
        c = r.connect()
        try:
            q(c, "SELECT * FROM accounts WHERE userid = 1 AND name = 'x'")
            try:
                q(c, "SELECT * FROM accounts WHERE userid = 1 AND name LIKE 'x%%'")
                raise AssertionError("denied statement ran")
            except pymysql.err.MySQLError as e:
                assert e.args[0] == 1227 and "incident" in e.args[1], e.args
            assert q(c, "SELECT 1") == ((1,),)
        finally:
            c.close()
    finally:
        r.stop()
    bad = os.path.join(C.router.dir, "badrule.conf")
    with open(C.router.config_path) as f:
        text = f.read()
    with open(bad, "w") as f:
        f.write(text + "rule = deny /(unclosed/ oops\n")
    out = subprocess.run([cluster.shardwire_path(), "--check-config", "-c", bad],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "parenthes" in out.stderr, out


def test_client_charsets():
    """utf8mb4 (any collation, MySQL 8's 255 too) and the other safe sets log
    in; latin1 and multi-byte sets whose characters can hide a quote
    (docs/query-rules.md) are refused at login with a clear error."""
    for charset, ok in (("utf8mb4", True), ("utf8", True), ("ascii", True),
                        ("latin1", False), ("gbk", False)):
        try:
            c = C.router.connect(charset=charset)
        except pymysql.err.MySQLError as e:
            assert not ok, (charset, e.args)
            assert e.args[0] == 1115 and "character set" in e.args[1], e.args
            continue
        try:
            assert ok, charset
            assert q(c, "SELECT 1") == ((1,),)
        finally:
            c.close()
    rc = RawClient(C.router.port)
    try:
        scramble = rc.greeting()
        tok = native_token(scramble, "app-pw")
        caps = 0x1 | 0x4 | 0x200 | 0x8000 | 0x80000 | 0x8
        rc.send_packet(struct.pack("<IIB23x", caps, 1 << 24, 255) + b"app\0" +
                       bytes([len(tok)]) + tok + b"app\0mysql_native_password\0", seq=1)
        assert rc.read_packet()[1][0] == 0
        rc.query("SELECT @@collation_connection")
        kind, rows = rc.read_result()
        assert kind == "rows" and b"utf8mb4" in rows[0], rows
    finally:
        rc.close()

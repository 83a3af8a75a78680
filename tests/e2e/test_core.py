"""
tests/e2e/test_core.py - the daemon core under rare and hostile conditions
(issue 9): map swaps in the middle of a statement, allocation failures
(fault points, router/fault.h), oversize and pipelined commands, a shard that
misbehaves, file-descriptor exhaustion, memory budgets, pinned sessions.
Each test starts the routers it needs on the module's real MariaDB shards.
"""

import os
import signal
import socket
import struct
import threading
import time

import pymysql

import cluster
from rawclient import RawClient, err_of

C = None
SCHEMA = [
    "CREATE TABLE accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL, "
    "name VARCHAR(100), PRIMARY KEY (userid, id))",
]


def setup_module():
    global C
    C = cluster.Cluster(2, start_router=False)
    C.create_schema(SCHEMA)


def teardown_module():
    C.stop()


def start_router(config=None, fault=None, map_text=None):
    """A router on the module's shards; <fault> sets SHARDWIRE_FAULT for it."""
    cfg = {"workers": 1}
    if map_text is None:
        cfg["map_file"] = C.map_file
    cfg.update(config or {})
    old = os.environ.get("SHARDWIRE_FAULT")
    if fault:
        os.environ["SHARDWIRE_FAULT"] = fault
    try:
        return cluster.Router(cfg, map_text=map_text)
    finally:
        if old is None:
            os.environ.pop("SHARDWIRE_FAULT", None)
        else:
            os.environ["SHARDWIRE_FAULT"] = old


def q(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def login(r):
    c = RawClient(r.port)
    reply = c.login(cluster.APP_USER, cluster.APP_PASSWORD, cluster.APP_DB)
    assert reply[0] == 0, err_of(reply)
    return c


def expect_err(reply, code=None):
    assert reply[0] == 0xff, reply[:40]
    if code is not None:
        assert err_of(reply)[0] == code, err_of(reply)
    return err_of(reply)


# ------------------------------------------------------------------ issue 9.1

def test_pullup_failure_is_an_error_not_a_crash():
    """evbuffer_pullup() failing (out of memory) at login and at a command
    gives that client an error; the router lives on."""
    r = start_router(fault="pullup@1,pullup@3")
    try:
        c = RawClient(r.port)
        expect_err(c.login(cluster.APP_USER, cluster.APP_PASSWORD, cluster.APP_DB), 1041)
        c.close()
        c = login(r)                        # pullup call 2
        c.command(0x0e)                     # COM_PING: call 3 fails
        _, p = c.read_packet()
        expect_err(p, 1041)
        c.command(0x0e)
        _, p = c.read_packet()
        assert p[0] == 0, p
        c.close()
    finally:
        r.stop()


def shard_addr(name):
    return "127.0.0.1:%d" % C.shards[name].port


def map_v(version, shards, n_vbuckets=1024):
    text = cluster.map_text(shards, n_vbuckets=n_vbuckets)
    return text.replace("version 1\n", "version %d\n" % version, 1)


def wait_log(r, text, timeout=20):
    def seen():
        with open(r.log_path, "rb") as f:
            return text.encode() in f.read()
    cluster.wait_for(seen, timeout, "router log line %r" % text, log=r.log_tail)


def reload_map(r, text, expect):
    with open(r.map_path, "w") as f:
        f.write(text)
    r.proc.send(signal.SIGHUP)
    wait_log(r, expect)


def name_of(r, userid):
    c = r.connect()
    try:
        rows = q(c, "SELECT name FROM accounts WHERE userid = %s", (userid,))
        return rows[0][0] if rows else None
    finally:
        c.close()


def put_marker(userid):
    """A row for <userid> on every shard, named after the shard, so a
    read tells which shard answered."""
    for name, db in C.shards.items():
        db.sql("REPLACE INTO accounts VALUES (%s, 1, %s)", (userid, name))


def test_map_apply_out_of_memory_keeps_old_map():
    """A new pool that cannot be made leaves the worker on its old map with
    every old pool (it used to leave NULL pools behind: a crash)."""
    v1 = map_v(1, [(n, shard_addr(n)) for n in ("s0", "s1")])
    r = start_router(map_text=v1, fault="pool_new@3")
    try:
        users = [10, 11, 12, 13, 14, 15]
        for u in users:
            put_marker(u)
        want = {u: C.shard_of(u) for u in users}
        v2 = map_v(2, [("s0", shard_addr("s0")), ("s1", shard_addr("s1")),
                       ("t0", "127.0.0.1:1")])
        reload_map(r, v2, "out of memory applying map version=2")
        for u in users:
            assert name_of(r, u) == want[u], u
    finally:
        r.stop()



def test_older_map_is_never_applied():
    """A map older than the one in use is refused (a worker never goes back)."""
    v1 = map_v(1, [(n, shard_addr(n)) for n in ("s0", "s1")])
    r = start_router(map_text=v1)
    try:
        put_marker(20)
        reload_map(r, map_v(3, [("s1", shard_addr("s1"))]), "in use version=3")
        assert name_of(r, 20) == "s1"
        reload_map(r, map_v(2, [("s0", shard_addr("s0"))]), "older than")
        assert name_of(r, 20) == "s1"
    finally:
        r.stop()


def test_retry_after_map_swap_goes_to_the_right_shard():
    """A statement whose pooled connection dies before it was sent is retried
    on a new connection; if the map changed meanwhile (a shard added before
    it in name order) the retry must still go to the key's shard, not to the
    shard at the old index."""
    v1 = map_v(1, [(n, shard_addr(n)) for n in ("s0", "s1")])
    r = start_router({"pool_max_per_shard": 1, "query_timeout_ms": 1500,
                      "pool_wait_timeout_ms": 30000}, map_text=v1)
    s1 = C.shards["s1"]
    try:
        u = next(u for u in range(100, 200) if C.shard_of(u) == "s1")
        put_marker(u)
        b = login(r)                    # holds s1's only connection, pinned
        b.query("REPLACE INTO accounts (userid, id, name) VALUES (%d, 2, 'b')" % u)
        res = b.read_result()
        assert res[0] == "ok", err_of(res[1])
        b.query("SET @pin = 1")
        res = b.read_result()
        assert res[0] == "ok", err_of(res[1])
        a = login(r)
        a.query("SET SESSION group_concat_max_len = 4096")     # tracked: a sync is due
        res = a.read_result()
        assert res[0] == "ok", err_of(res[1])
        a.query("SELECT name FROM accounts WHERE userid = %d AND id = 1" % u)   # waits
        text = v1.replace("version 1\n", "version 2\n").replace(
            "shard s0", "shard a0 master=127.0.0.1:1\nshard s0", 1)
        reload_map(r, text, "in use version=2")
        s1.kill(signal.SIGSTOP)
        try:
            b.close()                   # its connection goes to a, whose sync stalls
            wait_log(r, "retrying on a new connection")
        finally:
            s1.kill(signal.SIGCONT)
        kind, rows = a.read_result()
        assert kind == "rows" and rows and b"s1" in rows[0], (kind, rows)
        a.close()
    finally:
        s1.kill(signal.SIGCONT)
        r.stop()


def make_cert():
    d = cluster.tmp_root()
    crt, key = os.path.join(d, "core.crt"), os.path.join(d, "core.key")
    if not os.path.exists(crt):
        import subprocess
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", crt],
                       check=True, capture_output=True, timeout=60)
    return crt, key


def test_tls_filter_failure_closes_only_that_client():
    """Making the TLS filter fails (out of memory): that client is closed, the
    SSL object is freed exactly once, and TLS works for the next client."""
    crt, key = make_cert()
    r = start_router({"tls_cert": crt, "tls_key": key}, fault="tls_filter@1")
    try:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            r.connect(ssl=ctx).close()
            raise AssertionError("TLS login worked although the filter failed")
        except pymysql.err.OperationalError:
            pass
        c = r.connect(ssl=ctx)
        assert q(c, "SELECT 1") == ((1,),)
        c.close()
    finally:
        r.stop()


def test_set_that_cannot_be_tracked_is_refused():
    """A session SET whose copy (for replay on other connections) cannot be
    made is refused, not run untracked."""
    r = start_router(fault="set_copy@1,set_copy@2")
    try:
        c = r.connect()
        try:
            q(c, "SET SESSION group_concat_max_len = 4096")
            raise AssertionError("untracked SET accepted")
        except pymysql.err.OperationalError as e:
            assert e.args[0] == 1041, e.args
        assert q(c, "SELECT @@group_concat_max_len")[0][0] != 4096
        c.close()
        c = login(r)                    # the prepared form, too
        sid, _, _ = c.prepare("SET SESSION group_concat_max_len = 4096")
        c.execute(sid, [])
        expect_err(c.read_binary_result()[1], 1041)
        c.query("SELECT @@group_concat_max_len")
        kind, rows = c.read_result()
        assert kind == "rows" and b"4096" not in rows[0], rows
        c.close()
    finally:
        r.stop()


def test_second_signal_exits_at_once_cleanly():
    """A second SIGTERM during a graceful shutdown ends the process at once
    (status 1) without running exit handlers under live worker threads."""
    r = start_router({"shutdown_timeout_ms": 60000})
    try:
        c = login(r)
        c.query("SELECT SLEEP(30)")
        cluster.wait_for(lambda: any(
            "SLEEP(30)" in str(row) for db in C.shards.values()
            for row in db.sql("SHOW PROCESSLIST")), 20, "the statement in flight")
        r.proc.send(signal.SIGTERM)
        wait_log(r, "shutdown: signal=")
        t0 = time.monotonic()
        r.proc.send(signal.SIGTERM)
        r.proc.popen.wait(10)
        assert time.monotonic() - t0 < 5
        assert r.proc.popen.returncode == 1, r.proc.popen.returncode
        assert not r.sanitizer_errors(), r.log_tail()
        c.close()
    finally:
        r.stop(check=False)


def test_login_names_and_messages():
    """User names: escaped in the log, refused (not cut) when too long, and
    the access-denied message tells whether a password was given."""
    long_user = "u" * 63
    users = ["%s %s" % (cluster.APP_USER, cluster.native_password_hash(cluster.APP_PASSWORD)),
             "%s %s" % (long_user, cluster.native_password_hash("pw63"))]
    r = start_router({"user": users})
    try:
        # A newline in the name must not start a forged log line.
        c = RawClient(r.port)
        expect_err(c.login("ev\nil level=error", "x", cluster.APP_DB), 1045)
        c.close()
        wait_log(r, "user=ev\\x0ail level\\x3derror end=auth")
        with open(r.log_path, "rb") as f:
            assert not any(l.startswith(b"il ") for l in f.read().splitlines())
        # One byte longer than a configured 63-byte name: after the auth
        # switch the cut name used to log in as that user.
        c = RawClient(r.port)
        reply = c.login(long_user + "X", "pw63", cluster.APP_DB, plugin=b"caching_sha2_password")
        code, msg = expect_err(reply, 1045)
        c.close()
        c = RawClient(r.port)
        reply = c.login(long_user, "pw63", cluster.APP_DB, plugin=b"caching_sha2_password")
        assert reply[0] == 0, err_of(reply)
        c.close()
        # No password given: "using password: NO".
        c = RawClient(r.port)
        code, msg = expect_err(c.login(cluster.APP_USER, "", cluster.APP_DB), 1045)
        assert "using password: NO" in msg, msg
        c.close()
        c = RawClient(r.port)
        code, msg = expect_err(c.login(cluster.APP_USER, "wrong", cluster.APP_DB), 1045)
        assert "using password: YES" in msg, msg
        c.close()
        c = RawClient(r.port)
        code, msg = expect_err(c.login("nobody", "", cluster.APP_DB), 1045)
        assert "using password: NO" in msg, msg
        c.close()
    finally:
        r.stop()


# ------------------------------------------------------------------ issue 9.2

def test_huge_change_user_answered_by_the_router():
    """A COM_CHANGE_USER joined from two packets (over 16 MB) that the router
    answers itself (auth switch, then refusal) must not touch freed memory."""
    r = start_router()
    try:
        c = login(r)
        body = (cluster.APP_USER.encode() + b"\0" + b"\0" + b"d" * (17 << 20) + b"\0" +
                struct.pack("<H", 45) + b"caching_sha2_password\0")
        c.command(0x11, body)
        _, p = c.read_packet()
        assert p[0] == 0xfe, p[:20]           # auth switch to native
        c.send_packet(b"", seq=_ + 1)
        _, p = c.read_packet()
        expect_err(p)
        c.close()
        cc = r.connect()
        assert q(cc, "SELECT 1") == ((1,),)
        cc.close()
    finally:
        r.stop()


def rss_kb(r):
    with open("/proc/%d/status" % r.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_unread_replies_stay_bounded():
    """A client that pipelines commands the router answers itself and never
    reads the replies must not grow the router's memory without bound: the
    router stops reading from it, and resumes once it reads."""
    r = start_router()
    try:
        c = login(r)
        n = 800000
        before = rss_kb(r)
        c.sock.settimeout(30)
        c.send_raw(b"\x01\x00\x00\x00\x09" * n)         # COM_STATISTICS: ~100-byte replies
        # Unbounded, the replies would take ~80 MB within a few seconds.
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            grown = rss_kb(r) - before
            assert grown < 24 * 1024, "router grew by %d kB of unread replies" % grown
            time.sleep(0.2)
        for i in range(n):
            _, p = c.read_packet()
            assert p.startswith(b"Threads:"), (i, p[:40])
        c.command(0x0e)
        _, p = c.read_packet()
        assert p[0] == 0
        c.close()
    finally:
        r.stop()


def test_local_infile_request_from_a_shard_is_never_forwarded():
    """A shard answering with a LOCAL INFILE request (0xFB) would make a
    client with local files enabled send one: the client gets an error
    instead and the router drops that backend connection."""
    from fakebackend import FakeBackend
    fake = FakeBackend(lambda sql: [b"\xfb/etc/passwd"])
    r = start_router(map_text=map_v(1, [("f0", "127.0.0.1:%d" % fake.port)]))
    try:
        c = login(r)
        for _ in range(2):
            c.query("SELECT * FROM accounts WHERE userid = 1")
            _, p = c.read_packet()
            code, msg = expect_err(p)
            assert "local file" in msg, msg
            c.command(0x0e)
            _, p = c.read_packet()
            assert p[0] == 0, p
        cluster.wait_for(lambda: len(fake.seen("eof")) >= 2, 10,
                         "the router drops the connections that asked for a file")
        c.close()
    finally:
        r.stop()
        fake.close()


def test_refused_execute_spends_long_data():
    """SEND_LONG_DATA, then an EXECUTE the router refuses: a later EXECUTE
    must not reuse that long data (flags or bytes)."""
    r = start_router()
    try:
        u = 30
        put_marker(u)
        c = login(r)
        sid, n, _ = c.prepare("SELECT ?, name FROM accounts WHERE userid = ? AND id = 1")
        assert n == 2
        c.send_long_data(sid, 0, b"stale")
        c.execute(sid, ["x", None], long_params=(0,))      # NULL key: refused
        expect_err(c.read_binary_result()[1], 1235)
        c.execute(sid, ["fresh", u])
        res = c.read_binary_result()
        assert res[0] == "rows" and len(res[1]) == 1, res
        assert b"fresh" in res[1][0] and b"stale" not in res[1][0], res
        c.close()
    finally:
        r.stop()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_file_descriptors_backs_off():
    """With a low open-file limit the router says so at start; when accept()
    fails with EMFILE it neither spins nor floods the log, and accepts again
    once descriptors are free."""
    r = cluster.Router({"map_file": C.map_file, "workers": 1, "max_client_connections": 10000},
                       start=False)
    r.proc = cluster.Proc(["prlimit", "--nofile=48:48", cluster.shardwire_path(), "-c",
                           r.config_path], r.log_path, cwd=r.dir)
    try:
        cluster.wait_for(lambda: cluster._read_handshake(r.port), 30, "router", proc=r.proc,
                         log=r.log_tail)
        wait_log(r, "open file limit is 48")
        socks = []
        for _ in range(60):                     # more than the limit allows
            socks.append(socket.create_connection(("127.0.0.1", r.port), timeout=5))
        wait_log(r, "accept failed")
        t0, c0 = time.monotonic(), cpu_seconds(r.proc.pid)
        time.sleep(1.5)                         # a measuring window, not a wait
        used = (cpu_seconds(r.proc.pid) - c0) / (time.monotonic() - t0)
        assert used < 0.3, "router spins on EMFILE: %.0f%% CPU" % (used * 100)
        with open(r.log_path, "rb") as f:
            n = f.read().count(b"accept failed")
        assert n <= 3, "%d accept-failure lines" % n
        for s in socks:
            s.close()
        c = cluster.wait_for(lambda: login(r), 10, "login after descriptors are free")
        c.command(0x0e)
        assert c.read_packet()[1][0] == 0
        c.close()
    finally:
        r.stop()


def test_session_memory_budget():
    """Each session has a memory budget: prepared texts, long data, tracked
    SETs and half-received commands past it are refused with error 1041."""
    r = start_router({"session_memory_limit": "1M"})
    pad = "x" * (300 << 10)
    try:
        # Prepared statement texts.
        c = login(r)
        for i in range(4):
            try:
                c.prepare("SELECT %d /* %s */ FROM accounts WHERE userid = ?" % (i, pad))
            except RuntimeError as e:
                assert e.args[0] == 1041, e.args
                break
        else:
            raise AssertionError("4 x 300 kB of prepared statements accepted")
        c.command(0x0e)
        assert c.read_packet()[1][0] == 0
        c.close()
        # Long data: refused data makes the EXECUTE fail, then it works again.
        c = login(r)
        sid, _, _ = c.prepare("SELECT ? FROM accounts WHERE userid = ?")
        c.send_long_data(sid, 0, b"y" * (600 << 10))
        c.send_long_data(sid, 0, b"y" * (600 << 10))
        c.execute(sid, ["", 1], long_params=(0,))
        code, msg = expect_err(c.read_binary_result()[1], 1041)
        assert "long data" in msg, msg
        c.execute(sid, ["ok", 1])
        assert c.read_binary_result()[0] == "rows"
        c.close()
        # Tracked SETs (each kept twice).
        c = login(r)
        refused = False
        for i in range(4):
            c.query("SET SESSION group_concat_max_len = %d /* %s */" % (4096 + i, pad))
            res = c.read_result()
            if res[0] == "err":
                assert err_of(res[1])[0] == 1041, err_of(res[1])
                refused = True
                break
        assert refused, "4 x 300 kB of tracked SETs accepted"
        c.close()
        # A half-received command over the session's budget.
        c = login(r)
        c.send_raw(struct.pack("<I", 2 << 20)[:3] + b"\0" + b"\x03" + b"z" * (1100 << 10))
        _, p = c.read_packet()
        code, msg = expect_err(p, 1041)
        assert "session_memory_limit" in msg, msg
        c.close()
    finally:
        r.stop()


def test_router_memory_budget():
    """Router-wide: three sessions each hold 900 kB of a half-received
    command, 2.7 MB against router_memory_limit=2M: the one whose bytes
    pass the limit is refused (1041, naming the limit); the others complete."""
    r = start_router({"session_memory_limit": "1M", "router_memory_limit": "2M"})
    try:
        body = b"SELECT 1 /* " + b"p" * (1000 << 10) + b" */"
        clients = [login(r) for _ in range(3)]
        for c in clients:
            c.send_raw(struct.pack("<I", len(body) + 1)[:3] + b"\0" + b"\x03" + body[:900 << 10])
        results = []
        for c in clients:
            try:
                c.send_raw(body[900 << 10:])
            except OSError:
                pass                            # refused and closed
            kind, p = c.read_result()
            results.append((kind, p if kind == "err" else None))
            c.close()
        refused = [p for kind, p in results if kind == "err"]
        assert refused, results
        for p in refused:
            code, msg = err_of(p)
            assert code == 1041 and "router_memory_limit" in msg, (code, msg)
        assert any(kind == "rows" for kind, _ in results), results
        cc = r.connect()
        assert q(cc, "SELECT 1") == ((1,),)
        cc.close()
    finally:
        r.stop()

def worker_of(r, client):
    """The worker a RawClient's session runs on (needs log_level debug)."""
    peer = "peer=127.0.0.1:%d " % client.sock.getsockname()[1]

    def find():
        with open(r.log_path) as f:
            for line in f:
                if "session: accepted" in line and peer in line:
                    return line.rsplit("worker=", 1)[1].split()[0]
        return None
    return cluster.wait_for(find, 10, "accept log line")


def test_pool_cap_is_one_budget_for_the_whole_router():
    """pool_max_per_shard is shared by the workers: one worker may use all
    of it (it used to get cap/workers), no more than the cap is opened
    router-wide, and idle connections of one worker are handed over to
    another that waits."""
    r = start_router({"workers": 2, "pool_max_per_shard": 2, "pool_max_pinned_per_shard": 2,
                      "pool_wait_timeout_ms": 1500,
                      "log_level": "debug"})
    u = next(u for u in range(300, 400) if C.shard_of(u) == "s0")
    sql = "SELECT COUNT(*) FROM accounts WHERE userid = %d" % u
    try:
        by_worker = {}
        while True:
            c = login(r)
            by_worker.setdefault(worker_of(r, c), []).append(c)
            if any(len(v) >= 2 for v in by_worker.values()) and len(by_worker) == 2:
                break
        same = next(v for v in by_worker.values() if len(v) >= 2)
        other = [c for v in by_worker.values() if v is not same for c in v]
        for c in same[:2]:                  # two transactions on one worker
            c.query("BEGIN")
            assert c.read_result()[0] == "ok"
            c.query(sql)
            res = c.read_result()
            assert res[0] == "rows", err_of(res[1])
        third = other[0]                    # the budget is spent router-wide
        third.query(sql)
        code, msg = expect_err(third.read_result()[1], 2003)
        for c in same[:2]:
            c.query("COMMIT")
            assert c.read_result()[0] == "ok"
        # Both connections now idle on the first worker: the other worker
        # gets one of them (closed there, opened here) well within its wait.
        t0 = time.monotonic()
        third.query(sql)
        res = third.read_result()
        assert res[0] == "rows", err_of(res[1])
        assert time.monotonic() - t0 < 1.4
        for v in by_worker.values():
            for c in v:
                c.close()
    finally:
        r.stop()


def test_failed_connect_fails_every_waiter():
    """When a backend connect fails, every session waiting for that pool
    hears it at once, not one per connect timeout."""
    hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)                         # accepts TCP, never says a word
    addr = "127.0.0.1:%d" % hole.getsockname()[1]
    r = start_router({"pool_max_per_shard": 1, "connect_timeout_ms": 1000, "failover_buffer_ms": 0,
                      "pool_wait_timeout_ms": 20000},
                     map_text=map_v(1, [("h0", addr)]))
    try:
        clients = [login(r) for _ in range(3)]
        t0 = time.monotonic()
        for c in clients:
            c.query("SELECT * FROM accounts WHERE userid = 1")
        for c in clients:
            expect_err(c.read_result()[1], 2003)
        assert time.monotonic() - t0 < 1.8, time.monotonic() - t0
        for c in clients:
            c.close()
    finally:
        r.stop()
        hole.close()


def test_pinned_sessions_cannot_take_a_whole_shard():
    """Sessions that hold a connection between statements (user variables,
    transactions) may hold at most pool_max_pinned_per_shard of a shard's
    connections: unpinned traffic always gets through, and an idle pinned
    session times out after pinned_idle_timeout_ms."""
    r = start_router({"pool_max_per_shard": 2, "pool_max_pinned_per_shard": 1,
                      "pinned_idle_timeout_ms": 1500, "pool_wait_timeout_ms": 3000})
    u = next(u for u in range(400, 500) if C.shard_of(u) == "s0")
    sql = "SELECT COUNT(*) FROM accounts WHERE userid = %d" % u
    try:
        a = login(r)
        a.query(sql)
        assert a.read_result()[0] == "rows"
        a.query("SET @pin = 1")                 # holds s0's connection from now on
        assert a.read_result()[0] == "ok"
        b = login(r)
        b.query(sql)
        assert b.read_result()[0] == "rows"
        b.query("SET @pin = 2")
        code, msg = expect_err(b.read_result()[1], 1203)
        assert "pool_max_pinned_per_shard=1" in msg, msg
        b.query("BEGIN")
        assert b.read_result()[0] == "ok"
        b.query(sql)                            # a transaction would hold one too
        expect_err(b.read_result()[1], 1203)
        b.query("ROLLBACK")
        assert b.read_result()[0] == "ok"
        # After a write the connection stays one more statement; pinning
        # it then counts as well.
        b.query("REPLACE INTO accounts (userid, id, name) VALUES (%d, 3, 'w')" % u)
        assert b.read_result()[0] == "ok"
        b.query("SET @pin = 4")
        expect_err(b.read_result()[1], 1203)
        for _ in range(3):                      # unpinned traffic gets through
            b.query(sql)
            res = b.read_result()
            assert res[0] == "rows", err_of(res[1])
        # The idle pinned session is closed, far sooner than idle_timeout_ms.
        t0 = time.monotonic()
        try:
            a.read_packet()
            raise AssertionError("pinned session not closed")
        except (EOFError, ConnectionResetError):
            pass
        assert time.monotonic() - t0 < 10
        wait_log(r, "end=pinned_timeout")
        b.query(sql)
        assert b.read_result()[0] == "rows"
        b.query("SET @pin = 3")                 # room again
        assert b.read_result()[0] == "ok"
        a.close()
        b.close()
    finally:
        r.stop()


def test_joined_command_memory_is_given_back():
    """The buffer a command over 16 MB was joined into is freed once the
    command is handled, so it no longer counts against the session."""
    r = start_router({"session_memory_limit": "20M"})
    try:
        c = login(r)
        c.query("SELECT 1 /* " + "j" * (17 << 20) + " */")
        assert c.read_result()[0] == "rows"
        sid, _, _ = c.prepare("SELECT 2 /* " + "k" * (4 << 20) + " */ FROM accounts "
                              "WHERE userid = ?")
        assert sid > 0
        c.close()
    finally:
        r.stop()


def zk_router_with_new_map_during(point, config=None):
    """Starts ZooKeeper with the module's shards as map version 1, a router
    on it whose start-up pauses at fault point <point>, and publishes map
    version 2 (an added shard) during that pause. Returns (zk, router)."""
    import subprocess
    zk = cluster.ZooKeeper()

    def ctl(*args):
        argv = [cluster.shardctl_path(), "--zk", zk.hosts, "--timeout", "5"] + list(args)
        res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, (argv, res.stdout, res.stderr)
    try:
        ctl("init", "--acl", "open", "--shard", "s0=" + shard_addr("s0"),
            "--shard", "s1=" + shard_addr("s1"))
        cfg = {"zookeeper": zk.hosts, "workers": 1, "router_id": point.replace("_", "-")}
        cfg.update(config or {})
        r = cluster.Router(cfg, start=False)
        os.environ["SHARDWIRE_FAULT"] = point + "@1"
        try:
            r.proc = cluster.Proc([cluster.shardwire_path(), "-c", r.config_path], r.log_path,
                                  cwd=r.dir)
        finally:
            os.environ.pop("SHARDWIRE_FAULT", None)
        wait_log(r, "fault: delay point=" + point)
        ctl("add-shard", "zz", "127.0.0.1:1")       # map version 2, at once
        cluster.wait_for(lambda: cluster._read_handshake(r.port), 30, "router", proc=r.proc,
                         log=r.log_tail)
        return zk, r
    except BaseException:
        zk.stop()
        raise


def test_first_map_replaced_during_start():
    """ZooKeeper replaces the first map while start-up still uses it: start-up
    holds its own reference (it used to read a freed map)."""
    zk, r = zk_router_with_new_map_during("start_first_map")
    try:
        put_marker(40)
        assert name_of(r, 40) == C.shard_of(40)
        r.stop()
    finally:
        zk.stop()


def test_attach_never_posts_an_older_map_last():
    """A newer map published by the ZooKeeper thread while start-up attaches
    the workers must stay in use: the first map, posted after it, is
    dropped (workers used to go back to it)."""
    zk, r = zk_router_with_new_map_during("attach_publish", {"log_level": "debug"})
    try:
        put_marker(41)
        assert name_of(r, 41) == C.shard_of(41)
        wait_log(r, "worker: map applied version=2")
        with open(r.log_path) as f:
            applied = [l.split("version=")[1].split()[0] for l in f
                       if "worker: map applied" in l]
        assert applied[-1] == "2", applied
        r.stop()
    finally:
        zk.stop()


def test_unknown_user_costs_the_same_hash_work():
    """A login for a user that does not exist runs the same password check
    as one with a wrong password (its answer time tells nothing): the fault
    point inside the check fires for it."""
    r = start_router(fault="auth_check@1+")
    try:
        c = RawClient(r.port)
        expect_err(c.login("nobody", "guess", cluster.APP_DB), 1045)
        c.close()
        wait_log(r, "fault: fail point=auth_check")
    finally:
        r.stop()

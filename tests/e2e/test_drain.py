"""
tests/e2e/test_drain.py - taking a router out of a real HAProxy's rotation
without a client error (issue 14): `shardctl drain ROUTER` turns its /health
to 503, the balancer stops sending it new clients while it goes on serving
the ones it has, `shardctl undrain` brings it back; a SIGTERM with
drain_delay_ms does the same before the router closes, so clients opening
connections through the balancer all the while see no error. Real
ZooKeeper, MariaDB, two routers and HAProxy with HTTP health checks.
"""

import os
import socket
import subprocess
import threading
import time

import pymysql

import cluster

ZK = DB = HAPROXY = None
ROUTERS = {}
ADMIN = {}
LB_PORT = None
STATS_SOCK = None


def ctl(*args, env=None, check=True):
    r = subprocess.run([cluster.shardctl_path(), "--zk", ZK.hosts] + list(args),
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, **(env or {})))
    if check:
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r


def start_router(rid, extra=None):
    ADMIN[rid] = ADMIN.get(rid) or cluster.free_port()
    cfg = {"zookeeper": ZK.hosts, "router_id": rid, "admin_listen": ADMIN[rid],
           "map_cache": os.path.join(cluster.tmp_root(), rid + ".cache"),
           "admin_user": "ops", "admin_password": "ops-pw"}
    cfg.update(extra or {})
    ROUTERS[rid] = cluster.Router(cfg)


def setup_module():
    global ZK, DB, HAPROXY, LB_PORT, STATS_SOCK
    cluster.require("/usr/sbin/haproxy", "haproxy")
    ZK = cluster.ZooKeeper()
    DB = cluster.MariaDB("s0")
    DB.sql("CREATE TABLE t (userid BIGINT NOT NULL, n INT NOT NULL, PRIMARY KEY (userid))")
    ctl("init", "--acl", "open", "--shard", "s0=127.0.0.1:%d" % DB.port)
    start_router("r1", {"drain_delay_ms": 2500})
    start_router("r2")
    d = cluster._new_dir("haproxy")
    LB_PORT = cluster.free_port()
    STATS_SOCK = os.path.join(d, "stats.sock")
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("""global
    maxconn 500
    stats socket %s level admin
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
listen mysql
    bind 127.0.0.1:%d
    balance roundrobin
    option httpchk GET /health
    http-check send hdr Authorization "Basic b3BzOm9wcy1wdw=="
    default-server inter 150 fall 1 rise 2
""" % (STATS_SOCK, LB_PORT))
        for rid in ("r1", "r2"):
            f.write("    server %s 127.0.0.1:%d check port %d\n" % (rid, ROUTERS[rid].port,
                                                                  ADMIN[rid]))
    HAPROXY = cluster.Proc(["/usr/sbin/haproxy", "-db", "-f", cfg], os.path.join(d, "log"))
    cluster.wait_for(lambda: states() == {"r1": "UP", "r2": "UP"}, 20, "both routers UP",
                     proc=HAPROXY, log=lambda: cluster.tail(os.path.join(d, "log")))


def teardown_module():
    if HAPROXY:
        HAPROXY.stop()
    for r in ROUTERS.values():
        if r.alive():
            r.stop()
    if DB:
        DB.stop()
    if ZK:
        ZK.stop()


def stats():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(STATS_SOCK)
    s.sendall(b"show stat\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    lines = data.decode().splitlines()
    head = lines[0].lstrip("# ").split(",")
    out = {}
    for line in lines[1:]:
        row = dict(zip(head, line.split(",")))
        if row.get("pxname") == "mysql" and row.get("svname") in ("r1", "r2"):
            out[row["svname"]] = row
    return out


def states():
    return {k: v["status"] for k, v in stats().items()}


def sessions_total():
    return {k: int(v["stot"]) for k, v in stats().items()}


def through_lb(userid):
    c = pymysql.connect(host="127.0.0.1", port=LB_PORT, user=cluster.APP_USER,
                        password=cluster.APP_PASSWORD, database=cluster.APP_DB,
                        autocommit=True, connect_timeout=5, read_timeout=10)
    try:
        with c.cursor() as cur:
            cur.execute("INSERT INTO t (userid, n) VALUES (%d, 1) "
                        "ON DUPLICATE KEY UPDATE n = n + 1" % userid)
            cur.execute("SELECT n FROM t WHERE userid = %d" % userid)
            return cur.fetchall()[0][0]
    finally:
        c.close()


def test_shardctl_drain_and_undrain():
    held = ROUTERS["r1"].connect()          # a client of r1 from before the drain
    ctl("drain", "r1", env={"SHARDWIRE_ADMIN_USER": "ops", "SHARDWIRE_ADMIN_PASSWORD": "ops-pw"})
    cluster.wait_for(lambda: states()["r1"].startswith("DOWN"), 10, "HAProxy sees r1 down")
    before = sessions_total()
    for u in range(100, 110):
        through_lb(u)
    after = sessions_total()
    assert after["r1"] == before["r1"], (before, after)
    assert after["r2"] >= before["r2"] + 10, (before, after)
    # r1 still serves the client it had.
    with held.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM t WHERE userid = 100")
        assert cur.fetchall() == ((1,),)
    held.close()

    ctl("undrain", "r1", env={"SHARDWIRE_ADMIN_USER": "ops", "SHARDWIRE_ADMIN_PASSWORD": "ops-pw"})
    cluster.wait_for(lambda: states()["r1"] == "UP", 10, "HAProxy sees r1 up again")
    before = sessions_total()
    for u in range(110, 120):
        through_lb(u)
    assert sessions_total()["r1"] > before["r1"]


def test_drain_refusals():
    env = {"SHARDWIRE_ADMIN_USER": "ops", "SHARDWIRE_ADMIN_PASSWORD": "ops-pw"}
    r = ctl("drain", "nosuch", env=env, check=False)
    assert r.returncode == 4 and "no live router 'nosuch'" in r.stderr, r
    r = ctl("drain", "r1", env={"SHARDWIRE_ADMIN_USER": "ops", "SHARDWIRE_ADMIN_PASSWORD": "x"},
            check=False)
    assert r.returncode == 7 and "401" in r.stderr, r
    r = ctl("drain", "127.0.0.1:%d" % cluster.free_port(), env=env, check=False)
    assert r.returncode == 2 and "cannot connect" in r.stderr, r
    r = ctl("drain", env=env, check=False)
    assert r.returncode == 1, r
    assert states()["r1"] == "UP"


def test_sigterm_drains_before_closing_with_no_client_error():
    """Clients open a connection through HAProxy every few ms while r1 gets
    SIGTERM: /health turns 503, HAProxy moves them to r2 during
    drain_delay_ms, r1's own client finishes, r1 exits cleanly."""
    errors, done = [], []
    stop = threading.Event()

    def load():
        u = 1000
        while not stop.is_set():
            try:
                through_lb(u)
                done.append(u)
            except Exception as e:           # recorded: the test asserts none
                errors.append(repr(e))
            u += 1
            time.sleep(0.01)

    held = ROUTERS["r1"].connect()
    th = threading.Thread(target=load)
    th.start()
    try:
        cluster.wait_for(lambda: len(done) > 20, 20, "load running")
        t0 = time.monotonic()
        ROUTERS["r1"].proc.send(15)
        cluster.wait_for(lambda: states()["r1"].startswith("DOWN"), 5, "HAProxy sees r1 draining")
        # Within the drain delay r1 still serves the client it has.
        with held.cursor() as cur:
            cur.execute("SELECT n FROM t WHERE userid = 1000")
            assert cur.fetchall() == ((1,),)
        assert time.monotonic() - t0 < 2.5
        held.close()
        cluster.wait_for(lambda: not ROUTERS["r1"].alive(), 20, "r1 exits after the delay")
        n = len(done)
        cluster.wait_for(lambda: len(done) > n + 20, 20, "load goes on through r2")
    finally:
        stop.set()
        th.join(30)
    assert errors == [], errors[:5]
    assert ROUTERS["r1"].stop() == 0          # exit status 0, no sanitizer report
    log = open(ROUTERS["r1"].log_path).read()
    assert "draining for drain_delay_ms=2500" in log

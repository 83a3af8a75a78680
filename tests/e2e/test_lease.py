"""
tests/e2e/test_lease.py - the router lease, fencing layer 3 (issue 10): a
router cut off from ZooKeeper stops sending writes once map_lease_ms has
passed without ZooKeeper confirming its map (reads go on, /status says
so); a failover meanwhile makes the new master writable only after that
router's lease ran out; healed, the router follows the new map and writes
again. Three routers, one of them (rc) reaching ZooKeeper through a relay
the test cuts. Write ledger through all three: nothing acknowledged lost,
nothing acknowledged by rc after its lease ran out. Real ZooKeeper,
replicated MariaDB (semi-sync AFTER_SYNC), real routers, kill -9.
"""

import json
import os
import signal
import subprocess
import time
import urllib.request

import cluster
from cluster import addr
from ledger import LEDGER_DDL as LEDGER, Writer, stop_and_check
from tcpproxy import TcpProxy

LEASE_MS = 2000
ZK = None
PROXY = None
MASTER = None
STANDBYS = []
ROUTERS = {}
ADMIN = {}


def ctl(*args, check=True):
    argv = [cluster.shardctl_path(), "--zk", ZK.hosts, "--timeout", "3"] + list(args)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, (argv, r.returncode, r.stdout, r.stderr)
    return r


def master_now():
    return json.loads(ctl("--json", "status").stdout)["shards"][0]["master"]


def router_status(name):
    with urllib.request.urlopen("http://127.0.0.1:%d/status" % ADMIN[name], timeout=3) as f:
        return json.loads(f.read())


def setup_module():
    global ZK, PROXY, MASTER
    ZK = cluster.ZooKeeper()
    PROXY = TcpProxy(ZK.port)
    MASTER, sbs = cluster.replicated_shard("m", 2, [LEDGER])
    STANDBYS.extend(sbs)
    ctl("init", "--acl", "open", "--shard", cluster.shard_spec("s0", MASTER, STANDBYS))
    for name in ("ra", "rb", "rc"):
        ADMIN[name] = cluster.free_port()
        cfg = {"zookeeper": "127.0.0.1:%d" % PROXY.port if name == "rc" else ZK.hosts,
               "router_id": name, "admin_listen": "127.0.0.1:%d" % ADMIN[name],
               "map_cache": os.path.join(cluster.tmp_root(), "%s.map.cache" % name),
               "pool_wait_timeout_ms": 2000, "connect_timeout_ms": 1000,
               "control_user": cluster.CONTROL_USER,
               "control_password": cluster.CONTROL_PASSWORD,
               "health_interval_ms": 200, "health_timeout_ms": 500,
               "health_down_after_fails": 3, "health_down_after_ms": 1000,
               "map_lease_ms": LEASE_MS, "failover_router_wait_ms": 1000,
               "failover_flap_window_ms": 600000}
        if name != "rc":
            cfg["auto_failover"] = "on"
        ROUTERS[name] = cluster.Router(cfg)


def teardown_module():
    for r in ROUTERS.values():
        r.stop(check=False)
    for db in [MASTER] + STANDBYS:
        db.stop()
    PROXY.close()
    ZK.stop()


def one(router, sql):
    c = router.connect(connect_timeout=3, read_timeout=10)
    try:
        with c.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        c.close()


def test_cut_off_router_stops_writing_and_failover_waits_for_its_lease():
    ra, rb, rc = ROUTERS["ra"], ROUTERS["rb"], ROUTERS["rc"]
    cluster.wait_for(lambda: all(router_status(n)["map"]["lease_ok"] for n in ROUTERS), 20,
                     "every lease confirmed")
    writers = [Writer(i, r, userid_base=1000 * (i + 1)) for i, r in enumerate((ra, rb, rc))]
    for w in writers:
        w.start()
    cluster.wait_for(lambda: all(len(w.acked) >= 20 for w in writers), 30, "writes flowing")
    PROXY.cut()
    t_cut = time.monotonic()
    cluster.wait_for(lambda: not router_status("rc")["map"]["lease_ok"], 20,
                     "rc's lease running out")
    t_expired = time.monotonic()
    # Writes through rc are refused with a clear error; reads go on.
    try:
        one(rc, "INSERT INTO ledger (userid, id, writer) VALUES (5, 5, 99)")
        assert False, "a write through rc was accepted without a lease"
    except cluster.pymysql.err.MySQLError as e:
        assert e.args[0] == 1290 and "lease" in e.args[1], e.args
    assert one(rc, "SELECT COUNT(*) FROM ledger WHERE userid = 1001")[0][0] >= 0
    assert router_status("ra")["map"]["lease_ok"]
    # rc asked its peers: they still hear from ZooKeeper, so they veto.
    assert not router_status("rc")["map"]["lease_by_peers"]
    cluster.wait_for(lambda: "peers do not confirm" in open(rc.log_path).read(), 10,
                     "rc logging that its peers do not confirm")
    time.sleep(0.5)         # a write routed just before the lease ran out may finish
    acked_rc = len(writers[2].acked)
    # The master dies; the coordinator (ra or rb) fails over and makes the
    # new master writable only once rc's lease has run out (it has).
    MASTER.kill(signal.SIGKILL)
    cluster.wait_for(lambda: master_now() != addr(MASTER), 30, "a new master in the map")
    new = [sb for sb in STANDBYS if addr(sb) == master_now()][0]
    cluster.wait_for(lambda: new.sql("SELECT @@read_only")[0][0] == 0, 30, "writable")
    counts = [len(w.acked) for w in writers[:2]]
    cluster.wait_for(lambda: all(len(w.acked) >= c + 20 for w, c in zip(writers, counts)), 30,
                     "writes through ra and rb on the new master")
    # rc acknowledged nothing once its lease had run out (a write already
    # on its way may finish on the old master, before the failover).
    late = [k for k, t in writers[2].acked if t > t_expired + 0.5]
    assert not late, late[:5]
    assert len(writers[2].acked) == acked_rc
    # Healed: rc follows the new map, renews its lease and writes again.
    PROXY.heal()
    cluster.wait_for(lambda: router_status("rc")["map"]["lease_ok"], 30, "rc's lease renewed",
                     log=rc.log_tail)
    cluster.wait_for(lambda: len(writers[2].acked) >= acked_rc + 20, 30,
                     "writes through rc on the new master", log=rc.log_tail)
    stop_and_check(writers, new)
    print("rc cut off: lease out after %.2f s; writes through rc refused meanwhile; "
          "%d acknowledged in all, 0 lost" % (t_expired - t_cut,
                                             sum(len(w.acked) for w in writers)))


def test_zookeeper_down_for_everyone_peers_confirm_and_writes_go_on():
    """ZooKeeper stops for every router: each one's lease runs out, each
    asks the others, all of them lost it too, so writes go on (no failover
    can happen without ZooKeeper: the map cannot change)."""
    writers = [Writer(10 + i, r, userid_base=5000 * (i + 1))
               for i, r in enumerate(ROUTERS.values())]
    for w in writers:
        w.start()
    cluster.wait_for(lambda: all(len(w.acked) >= 20 for w in writers), 30, "writes flowing")
    ZK.stop()
    t_stop = time.monotonic()
    cluster.wait_for(lambda: all(router_status(n)["map"]["unconfirmed_ms"] > LEASE_MS
                                 for n in ROUTERS), 30, "every lease running out")
    t_expired = time.monotonic()
    cluster.wait_for(lambda: all(router_status(n)["map"]["lease_by_peers"] for n in ROUTERS), 10,
                     "the peers confirming")
    for n in ROUTERS:
        st = router_status(n)["map"]
        assert st["lease_ok"] and st["unconfirmed_ms"] > LEASE_MS, st
    counts = [len(w.acked) for w in writers]
    cluster.wait_for(lambda: all(len(w.acked) >= c + 20 for w, c in zip(writers, counts)), 30,
                     "writes through every router past the lease")
    late = [sum(1 for _, t in w.acked if t > t_expired) for w in writers]
    assert all(late), late
    master = [db for db in [MASTER] + STANDBYS if db.alive() and
              db.sql("SELECT @@read_only")[0][0] == 0][0]
    stop_and_check(writers, master)
    print("ZooKeeper down for everyone: leases out %.2f s after the stop; peers confirmed; "
          "%s writes acknowledged past the lease, 0 lost" % (t_expired - t_stop, late))

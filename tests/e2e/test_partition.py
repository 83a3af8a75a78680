"""
tests/e2e/test_partition.py - network partitions (issue 10), with iptables
in a network namespace of the test's own (tests/e2e/netpart.py): ZooKeeper,
a lossless master m with standbys sb0 and sb1, and three routers ra, rb, rc
with auto_failover on, each its own "host" that a cut isolates silently.
A write ledger through every router in each scenario:

  * one router (the coordinator itself) cut off from the master: it sees
    the master down, the other two do not: no failover (majority rule);
  * the master cut off from every router but not from its standbys: all
    routers see it down, but the standbys still replicate from it: no
    failover (the standby veto), writes resume on the same master once
    healed;
  * during a failover, one router cut off from ZooKeeper while it still
    reaches the master, which is cut off from everything else (the other
    routers and both standbys, so they lose it too): the router stops
    writing within its lease, the others fail over, no acknowledged write
    is lost, and the deposed master holds no row the new one lacks (its
    own commits wait for an acknowledgement that never comes: errant
    GTIDs, never acknowledged to a client, are counted).

About 60-90 s on this 2-core machine.
"""

import json
import os
import subprocess
import time
import urllib.request

import cluster
from cluster import addr
from ledger import LEDGER_DDL as LEDGER, Writer, lost as lost_keys, deposed, errant_gtids
import netpart

LEASE_MS = 2000
NET = None
ZK = None
MASTER = None
STANDBYS = []
ROUTERS = {}
ADMIN = {}


def ctl(*args):
    argv = [cluster.shardctl_path(), "--zk", ZK.hosts, "--timeout", "3"] + list(args)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (argv, r.returncode, r.stdout, r.stderr)
    return r.stdout


def status():
    return json.loads(ctl("--json", "status"))


def verdict(st, router, db):
    """What <router> publishes about server <db> in status <st>."""
    for s in st["shards"][0]["servers"]:
        if s["server"] == addr(db):
            return s["verdicts"].get(router)
    return None


def router_status(name):
    with urllib.request.urlopen("http://127.0.0.1:%d/status" % ADMIN[name], timeout=3) as f:
        return json.loads(f.read())


def setup_module():
    global NET, ZK, MASTER
    NET = netpart.Net()             # first: before anything starts
    with NET.host("zk") as h:
        ZK = cluster.ZooKeeper()
        h.ports.append(ZK.port)
    with NET.host("m") as h:
        MASTER = cluster.MariaDB("m", role="semisync")
        h.ports.append(MASTER.port)
    for k in range(2):
        # A standby notices a silent master after slave_net_timeout: 3 s here
        # (10 s in the harness's default) keeps the failover scenario short.
        with NET.host("sb%d" % k) as h:
            sb = cluster.MariaDB("m-sb%d" % k, role="standby",
                                 extra_args=["--slave-net-timeout=3"])
            h.ports.append(sb.port)
        sb.replicate_from(MASTER)
        STANDBYS.append(sb)
    MASTER.sql(LEDGER)
    for sb in STANDBYS:
        sb.wait_caught_up(MASTER)
    ctl("init", "--acl", "open", "--shard", cluster.shard_spec("s0", MASTER, STANDBYS))
    for name in ("ra", "rb", "rc"):
        ADMIN[name] = cluster.free_port()
        cfg = {"zookeeper": ZK.hosts, "router_id": name,
               "admin_listen": "127.0.0.1:%d" % ADMIN[name],
               "map_cache": os.path.join(cluster.tmp_root(), "%s.map.cache" % name),
               "pool_wait_timeout_ms": 2000, "connect_timeout_ms": 1000,
               "control_user": cluster.CONTROL_USER,
               "control_password": cluster.CONTROL_PASSWORD,
               "health_interval_ms": 200, "health_timeout_ms": 500,
               "health_down_after_fails": 3, "health_down_after_ms": 1000,
               "map_lease_ms": LEASE_MS, "failover_router_wait_ms": 1000,
               "failover_buffer_ms": 3000, "failover_flap_window_ms": 600000,
               "auto_failover": "on"}
        with NET.host(name) as h:
            ROUTERS[name] = cluster.Router(cfg)
            h.ports += [ROUTERS[name].port, ADMIN[name]]
    cluster.wait_for(lambda: all(router_status(n)["map"]["lease_ok"] for n in ROUTERS), 30,
                     "every lease confirmed")
    cluster.wait_for(lambda: status()["coordinator"] in ROUTERS, 30, "a coordinator")


def teardown_module():
    NET.heal()
    for r in ROUTERS.values():
        r.stop(check=False)
    for db in [MASTER] + STANDBYS:
        db.kill()
    ZK.stop()


def writers(base):
    ws = [Writer(base + i, r, userid_base=100 * (base + i))
          for i, r in enumerate(ROUTERS.values())]
    for w in ws:
        w.start()
    cluster.wait_for(lambda: all(len(w.acked) >= 20 for w in ws), 30, "writes flowing")
    return ws


def more_writes(ws, n=20, timeout=30, what="writes"):
    counts = [len(w.acked) for w in ws]
    cluster.wait_for(lambda: all(len(w.acked) >= c + n for w, c in zip(ws, counts)), timeout,
                     what)


def stop_writers(ws):
    for w in ws:
        w.stop.set()
    for w in ws:
        w.join(30)


def log_since(router, pos):
    with open(router.log_path, errors="replace") as f:
        f.seek(pos)
        return f.read()


def hold_no_failover(seconds, term):
    """Checks for <seconds> that the map keeps its master and the shard its
    term (a failover would show within a few hundred ms of a decision)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        st = status()
        assert st["shards"][0]["master"] == addr(MASTER), st["shards"][0]
        assert st["shards"][0]["term"] == term, st["shards"][0]
        time.sleep(0.3)


def test_one_router_cut_off_from_master_no_failover():
    st = status()
    coord, term = st["coordinator"], st["shards"][0]["term"]
    others = [n for n in ROUTERS if n != coord]
    ws = writers(10)
    pos = os.path.getsize(ROUTERS[coord].log_path)
    NET.cut(coord, "m")
    cluster.wait_for(lambda: verdict(status(), coord, MASTER) == "down", 30,
                     "%s seeing the master down" % coord)
    st = status()
    assert all(verdict(st, n, MASTER) == "up" for n in others), st["shards"][0]["servers"]
    hold_no_failover(4, term)
    # The coordinator itself saw it down and decided: a minority.
    assert "decision=minority" in log_since(ROUTERS[coord], pos), \
        ROUTERS[coord].log_tail(30)
    # Writes through the other routers went on all along.
    more_writes([w for w, n in zip(ws, ROUTERS) if n != coord], what="writes elsewhere")
    assert NET.dropped() > 0
    NET.heal()
    cluster.wait_for(lambda: verdict(status(), coord, MASTER) == "up", 30, "healed")
    more_writes(ws, what="writes through every router after healing")
    stop_writers(ws)
    rows = {(u, i) for u, i in MASTER.sql("SELECT userid, id FROM ledger")}
    lost = lost_keys(ws, rows)
    assert not lost, "acknowledged but lost: %d, e.g. %s" % (len(lost), lost[:5])
    hold_no_failover(0.1, term)


def test_master_cut_off_from_routers_not_standbys_no_failover():
    st = status()
    coord, term = st["coordinator"], st["shards"][0]["term"]
    ws = writers(20)
    pos = os.path.getsize(ROUTERS[coord].log_path)
    NET.cut("m", *ROUTERS)
    cluster.wait_for(lambda: all(verdict(status(), n, MASTER) == "down" for n in ROUTERS), 30,
                     "every router seeing the master down")
    hold_no_failover(4, term)
    assert "decision=standby_sees_it" in log_since(ROUTERS[coord], pos), \
        ROUTERS[coord].log_tail(30)
    for sb in STANDBYS:
        assert sb.slave_running() == (True, True), sb.slave_status()
    acked_during = sum(len(w.acked) for w in ws)
    NET.heal()
    cluster.wait_for(lambda: all(verdict(status(), n, MASTER) == "up" for n in ROUTERS), 30,
                     "healed")
    more_writes(ws, what="writes on the same master after healing")
    stop_writers(ws)
    rows = {(u, i) for u, i in MASTER.sql("SELECT userid, id FROM ledger")}
    lost = lost_keys(ws, rows)
    assert not lost, "acknowledged but lost: %d, e.g. %s" % (len(lost), lost[:5])
    hold_no_failover(0.1, term)
    print("master cut off from the routers: no failover; %d writes acknowledged "
          "before healing, %d in all" % (acked_during, sum(len(w.acked) for w in ws)))


def test_router_cut_off_from_zookeeper_during_failover():
    zk_cut_during_failover(hold_past_session=False)


def zk_cut_during_failover(hold_past_session):
    """The third scenario; with <hold_past_session> (tests/e2e/long_partition.py)
    the cut is held until the lone router's ZooKeeper session has expired
    and its registration is gone, and it still writes nothing meanwhile."""
    global MASTER, STANDBYS
    st = status()
    coord = st["coordinator"]
    lone = [n for n in ROUTERS if n != coord][0]
    rest = [n for n in ROUTERS if n != lone]
    ws = writers(30)
    lone_w = ws[list(ROUTERS).index(lone)]
    old = MASTER
    # The lone router loses ZooKeeper but keeps the master; the master loses
    # everything else: the other routers and both standbys.
    NET.cut(lone, "zk")
    NET.cut("m", "sb0", "sb1", *rest)
    t_cut = time.monotonic()
    cluster.wait_for(lambda: not router_status(lone)["map"]["lease_ok"], 20,
                     "%s's lease running out" % lone)
    t_expired = time.monotonic()
    assert t_expired - t_cut <= LEASE_MS / 1000.0 + 1.5, t_expired - t_cut
    try:
        c = ROUTERS[lone].connect(connect_timeout=3, read_timeout=10)
        with c.cursor() as cur:
            cur.execute("INSERT INTO ledger (userid, id, writer) VALUES (5, 5, 99)")
        assert False, "a write through %s was accepted without a lease" % lone
    except cluster.pymysql.err.MySQLError as e:
        assert e.args[0] == 1290 and "lease" in e.args[1], e.args
    cluster.wait_for(lambda: status()["shards"][0]["master"] != addr(old), 60,
                     "a new master in the map")
    new = [sb for sb in STANDBYS if addr(sb) == status()["shards"][0]["master"]][0]
    cluster.wait_for(lambda: new.sql("SELECT @@read_only")[0][0] == 0, 30, "writable")
    more_writes([w for w in ws if w is not lone_w], what="writes on the new master")
    # The lone router acknowledged nothing once its lease had run out.
    late = [k for k, t in lone_w.acked if t > t_expired]
    assert not late, late[:5]
    # The deposed master (still reachable by the lone router) committed
    # nothing the new master lacks.
    new_rows = {(u, i) for u, i in new.sql("SELECT userid, id FROM ledger")}
    old_rows = {(u, i) for u, i in old.sql("SELECT userid, id FROM ledger")}
    assert not deposed(old_rows, new_rows), deposed(old_rows, new_rows)[:5]
    if hold_past_session:
        cluster.wait_for(lambda: lone not in [r["id"] for r in status()["routers"]], 60,
                         "%s's registration expiring" % lone)
        more_writes([w for w in ws if w is not lone_w], what="writes on the new master")
        assert not router_status(lone)["map"]["lease_ok"]
        late = [k for k, t in lone_w.acked if t > t_expired]
        assert not late, late[:5]
        print("%s's registration expired %.1f s after the cut; it wrote nothing meanwhile" %
              (lone, time.monotonic() - t_cut))
    assert NET.dropped() > 0
    NET.heal()
    cluster.wait_for(lambda: router_status(lone)["map"]["lease_ok"], 30,
                     "%s's lease renewed" % lone, log=ROUTERS[lone].log_tail)
    more_writes(ws, what="writes through every router on the new master")
    stop_writers(ws)
    new_rows = {(u, i) for u, i in new.sql("SELECT userid, id FROM ledger")}
    lost = lost_keys(ws, new_rows)
    assert not lost, "acknowledged but lost: %d, e.g. %s" % (len(lost), lost[:5])
    old_rows = {(u, i) for u, i in old.sql("SELECT userid, id FROM ledger")}
    assert not deposed(old_rows, new_rows), deposed(old_rows, new_rows)[:5]
    errant = errant_gtids(old, new)
    states = (old.sql("SELECT @@gtid_binlog_state")[0][0],
              new.sql("SELECT @@gtid_binlog_state")[0][0])
    fo = status()["shards"][0]["failover"]
    assert fo["state"] == "done" and fo["new"] == addr(new), fo
    print("%s cut off from ZooKeeper: lease out after %.2f s; failover to %s; "
          "%d acknowledged, 0 lost, 0 rows on the deposed master after the change, "
          "%d errant (unacknowledged) GTIDs there (binlog state %s; new master %s)" %
          ((lone, t_expired - t_cut, addr(new), sum(len(w.acked) for w in ws), errant) +
           states))
    print("through %s: %d acknowledged (%d after the cut), errors %s" % (
        lone, len(lone_w.acked), sum(1 for _, t in lone_w.acked if t > t_cut), lone_w.errors))
    old.kill()
    MASTER, STANDBYS = new, [sb for sb in STANDBYS if sb is not new]

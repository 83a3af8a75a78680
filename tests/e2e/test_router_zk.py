"""
tests/e2e/test_router_zk.py - routers on a ZooKeeper shard map (issue 5):
propagation of `shardctl set-master` to every router, serving while
ZooKeeper is down, start-up from the cache file, re-registration after
ZooKeeper returns and after session expiry, and a 3-node ensemble losing its
leader. Real ZooKeeper, real MariaDB, real routers.
"""

import json
import os
import signal
import subprocess
import time

import cluster

ZK = None
DBS = {}        # name -> MariaDB; s0, s1 are masters, "spare" becomes s0's master
ROUTERS = []
SCHEMA = ("CREATE TABLE accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL, "
          "name VARCHAR(100), PRIMARY KEY (userid, id))")


def ctl(*args, zk=None, check=True):
    argv = [cluster.shardctl_path(), "--zk", zk or ZK.hosts, "--timeout", "5"] + list(args)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, (argv, r.returncode, r.stdout, r.stderr)
    return r


def ctl_json(*args):
    return json.loads(ctl("--json", *args).stdout)


def start_router(name, extra=None):
    cfg = {"zookeeper": ZK.hosts, "router_id": name,
           "map_cache": os.path.join(cluster.tmp_root(), "%s.map.cache" % name)}
    cfg.update(extra or {})
    r = cluster.Router(cfg)
    ROUTERS.append(r)
    return r


def setup_module():
    global ZK
    ZK = cluster.ZooKeeper()
    for name in ("s0", "s1", "spare"):
        DBS[name] = cluster.MariaDB(name)
        DBS[name].sql(SCHEMA)
    ctl("init", "--acl", "open", "--shard", "s0=127.0.0.1:%d" % DBS["s0"].port,
        "--shard", "s1=127.0.0.1:%d" % DBS["s1"].port)
    start_router("ra")
    start_router("rb")


def teardown_module():
    for r in ROUTERS:
        r.stop(check=False)
    for db in DBS.values():
        db.stop()
    ZK.stop()


def user_on(shard, zk=None):
    """A userid that the map in ZooKeeper places on <shard>."""
    users = list(range(100, 160))
    out = ctl("--json", "explain", *["SELECT 1 FROM accounts WHERE userid = %d" % u
                                     for u in users], zk=zk).stdout
    for u, line in zip(users, out.splitlines()):
        if json.loads(line).get("shard") == shard:
            return u
    raise AssertionError("no user on %s:\n%s" % (shard, out))


def query(router, sql):
    c = router.connect()
    try:
        with c.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        c.close()


def server_id_via(router, userid):
    """@@server_id of the backend that serves <userid> through <router>."""
    c = router.connect()
    try:
        with c.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT COUNT(*) FROM accounts WHERE userid = %d" % userid)
            cur.fetchall()
            cur.execute("SELECT @@server_id")   # same pinned connection
            sid = cur.fetchone()[0]
            cur.execute("ROLLBACK")
            return sid
    finally:
        c.close()


def test_open_session_follows_set_master():
    """A client connection that stays open follows the new master too, even
    when the session holds its backend connection (after a write); inside a
    transaction the change fails the statement instead of writing to the
    old master."""
    u = user_on("s0")
    r = ROUTERS[0]
    c = r.connect()
    try:
        with c.cursor() as cur:
            cur.execute("INSERT INTO accounts (userid, id, name) VALUES (%d, 50, 'w')" % u)
            ctl("set-master", "s0", "127.0.0.1:%d" % DBS["spare"].port)

            def on_new_master():
                cur.execute("SELECT @@server_id FROM accounts WHERE userid = %d LIMIT 1" % u)
                rows = cur.fetchall()
                cur.execute("SELECT @@server_id")
                return cur.fetchone()[0] == DBS["spare"].server_id and rows is not None
            cluster.wait_for(on_new_master, 10, "open session following set-master")
            cur.execute("BEGIN")
            cur.execute("INSERT INTO accounts (userid, id, name) VALUES (%d, 51, 'tx')" % u)
            ctl("set-master", "s0", "127.0.0.1:%d" % DBS["s0"].port)
            cluster.wait_for(lambda: server_id_via(r, u) == DBS["s0"].server_id, 10,
                             "router following set-master back")
            try:
                cur.execute("INSERT INTO accounts (userid, id, name) VALUES (%d, 52, 'tx')" % u)
                raise AssertionError("statement ran on the old master inside a transaction")
            except Exception as e:      # pymysql error
                assert "changed during this transaction" in str(e), e
            cur.execute("SELECT 1")
    finally:
        c.close()
    assert DBS["spare"].sql("SELECT COUNT(*) FROM accounts WHERE userid = %s AND id >= 51",
                            (u,)) == ((0,),)
    assert DBS["s0"].sql("SELECT COUNT(*) FROM accounts WHERE userid = %s AND id >= 51",
                         (u,)) == ((0,),)
    DBS["s0"].sql("DELETE FROM accounts WHERE userid = %s", (u,))


def test_master_change_cuts_busy_and_in_transaction_connections():
    """When the map names a new master, connections sessions hold to the old
    one are cut at once: a statement in flight there gets an error (never
    an OK from a deposed master the router knows of), and a transaction
    left open there is rolled back now, not when its client next speaks
    (which then hears that the master changed)."""
    import threading
    u = user_on("s0")
    r = ROUTERS[0]
    old = DBS["s0"]
    old.sql("INSERT INTO accounts (userid, id, name) VALUES (%s, 60, 'locked')", (u,))
    locker = old.connect()
    c_busy, c_txn = r.connect(read_timeout=30), r.connect()
    outcome = {}
    try:
        with locker.cursor() as lc:
            lc.execute("BEGIN")
            lc.execute("SELECT * FROM accounts WHERE userid = %s AND id = 60 FOR UPDATE", (u,))
        with c_txn.cursor() as tc:
            tc.execute("BEGIN")
            tc.execute("INSERT INTO accounts (userid, id, name) VALUES (%d, 61, 'tx')" % u)

        def busy():
            t0 = time.monotonic()
            try:
                with c_busy.cursor() as bc:
                    bc.execute("UPDATE accounts SET name = 'late' WHERE userid = %d AND id = 60"
                               % u)
                outcome["ok"] = True
            except Exception as e:      # pymysql error
                outcome["error"] = e
            outcome["after"] = time.monotonic() - t0
        t = threading.Thread(target=busy)
        t.start()
        time.sleep(1.0)                 # the UPDATE waits for the row lock
        assert "ok" not in outcome and "error" not in outcome, outcome
        t_change = time.monotonic()
        ctl("set-master", "s0", "127.0.0.1:%d" % DBS["spare"].port)
        t.join(20)
        assert "error" in outcome, outcome
        assert time.monotonic() - t_change < 10, outcome
        # The open transaction's row lock on the old master is gone already.
        probe = old.connect()
        try:
            with probe.cursor() as pc:
                pc.execute("SET SESSION innodb_lock_wait_timeout = 2")
                pc.execute("SELECT COUNT(*) FROM accounts WHERE userid = %s AND id = 61 "
                           "FOR UPDATE", (u,))
                assert pc.fetchone()[0] == 0
        finally:
            probe.close()
        with c_txn.cursor() as tc:
            try:
                tc.execute("COMMIT")
                raise AssertionError("COMMIT of a transaction cut from the old master succeeded")
            except AssertionError:
                raise
            except Exception as e:
                assert "changed during this transaction" in str(e), e
    finally:
        locker.rollback()
        locker.close()
        for c in (c_busy, c_txn):
            try:
                c.close()
            except Exception:
                pass
        ctl("set-master", "s0", "127.0.0.1:%d" % old.port)
        cluster.wait_for(lambda: server_id_via(r, u) == old.server_id, 10,
                         "router following set-master back")
        old.sql("DELETE FROM accounts WHERE userid = %s", (u,))


def test_routers_register_with_map_version():
    version = ctl_json("status")["version"]
    ids = {r["id"]: r for r in ctl_json("routers")["routers"]}
    assert {"ra", "rb"} <= set(ids), ids
    for rid in ("ra", "rb"):
        assert ids[rid]["map_version"] == version, ids[rid]


def test_set_master_followed_by_every_router():
    u = user_on("s0")
    for r in ROUTERS:
        assert server_id_via(r, u) == DBS["s0"].server_id
    ctl("set-master", "s0", "127.0.0.1:%d" % DBS["spare"].port)
    for r in ROUTERS:
        cluster.wait_for(lambda: server_id_via(r, u) == DBS["spare"].server_id, 10,
                         "%s following set-master" % r.label(), log=r.log_tail)
    # Writes now land on the new master.
    query(ROUTERS[0], "INSERT INTO accounts (userid, id, name) VALUES (%d, 1, 'moved')" % u)
    assert DBS["spare"].sql("SELECT name FROM accounts WHERE userid = %s", (u,)) == (("moved",),)
    assert DBS["s0"].sql("SELECT COUNT(*) FROM accounts WHERE userid = %s", (u,)) == ((0,),)
    # Registrations catch up with the version in use.
    version = ctl_json("status")["version"]
    cluster.wait_for(lambda: all(r["map_version"] == version
                                 for r in ctl_json("routers")["routers"]), 15,
                     "registrations at version %d" % version)
    ctl("set-master", "s0", "127.0.0.1:%d" % DBS["s0"].port)
    for r in ROUTERS:
        cluster.wait_for(lambda: server_id_via(r, u) == DBS["s0"].server_id, 10,
                         "%s following set-master back" % r.label())


def test_zookeeper_down_routers_keep_serving_and_restart_from_cache():
    u0, u1 = user_on("s0"), user_on("s1")
    ZK.stop()
    try:
        for r in ROUTERS:
            for u in (u0, u1):
                query(r, "SELECT * FROM accounts WHERE userid = %d" % u)
        # A router restarted while ZooKeeper is down serves from its cache.
        rb = ROUTERS[1]
        rb.stop(check=True)
        rb.config["zk_start_timeout_ms"] = 1000
        rb.write_config()
        rb.start()
        for u in (u0, u1):
            query(rb, "SELECT * FROM accounts WHERE userid = %d" % u)
        assert "serving cached version" in rb.log_tail(200), rb.log_tail()
    finally:
        ZK.start()
    # Back: both re-register.
    cluster.wait_for(lambda: {"ra", "rb"} <= {r["id"] for r in ctl_json("routers")["routers"]},
                     30, "routers re-registered")


def test_change_made_while_router_cut_off_is_applied():
    """Router rb is frozen (SIGSTOP) past the session timeout while the map
    changes; after SIGCONT its session has expired, it recreates it,
    re-registers and applies the change it missed."""
    u = user_on("s1")
    rb = ROUTERS[1]
    rb.proc.send(signal.SIGSTOP)
    try:
        ctl("set-master", "s1", "127.0.0.1:%d" % DBS["spare"].port)
        version = ctl_json("status")["version"]
        # Wait until ZooKeeper has dropped rb's session (its node is gone).
        cluster.wait_for(lambda: "rb" not in {r["id"] for r in ctl_json("routers")["routers"]},
                         40, "rb's session to expire")
    finally:
        rb.proc.send(signal.SIGCONT)
    cluster.wait_for(lambda: server_id_via(rb, u) == DBS["spare"].server_id, 30,
                     "rb applying the change", log=rb.log_tail)
    cluster.wait_for(lambda: any(r["id"] == "rb" and r["map_version"] == version
                                 for r in ctl_json("routers")["routers"]), 30,
                     "rb re-registered at version %d" % version)
    ctl("set-master", "s1", "127.0.0.1:%d" % DBS["s1"].port)
    for r in ROUTERS:
        cluster.wait_for(lambda: server_id_via(r, u) == DBS["s1"].server_id, 10,
                         "%s following set-master back" % r.label())


def test_ensemble_leader_killed_routers_carry_on():
    ens = cluster.ZooKeeperEnsemble(3)
    try:
        ctl("init", "--acl", "open", "--shard", "s0=127.0.0.1:%d" % DBS["s0"].port,
            "--shard", "s1=127.0.0.1:%d" % DBS["s1"].port, zk=ens.hosts)
        r = cluster.Router({"zookeeper": ens.hosts, "router_id": "rens",
                            "map_cache": os.path.join(cluster.tmp_root(), "rens.cache")})
        try:
            u = user_on("s0", zk=ens.hosts)
            assert server_id_via(r, u) == DBS["s0"].server_id
            ens.kill(ens.leader())
            for _ in range(20):
                query(r, "SELECT * FROM accounts WHERE userid = %d" % u)
            # The surviving quorum still takes changes, and the router follows.
            cluster.wait_for(lambda: ctl("set-master", "s0", "127.0.0.1:%d" % DBS["spare"].port,
                                         zk=ens.hosts, check=False).returncode == 0, 30,
                             "set-master on the surviving quorum")
            cluster.wait_for(lambda: server_id_via(r, u) == DBS["spare"].server_id, 30,
                             "router following after leader loss", log=r.log_tail)
        finally:
            r.stop()
    finally:
        ens.stop()

"""
tests/e2e/long_faults.py - slow failover fault scenarios (issue 10), run by
`tests/run long` only (runner.py with SW_E2E_LONG=1), each with a write
ledger through three routers with auto_failover on:

  * the master hung (SIGSTOP) briefly: no failover (its standbys still
    replicate from it: the standby veto), nothing lost;
  * the master hung long (past slave_net_timeout): a failover; on waking up
    the old master commits nothing more (its standbys follow the new
    master, semi-sync without fallback makes its commits wait), and nothing
    acknowledged is lost;
  * ZooKeeper's leader killed in the middle of a failover (a three-node
    ensemble; the coordinator paused right after the `prepared` step): the
    failover completes on the remaining quorum, nothing lost.
"""

import os
import signal
import time

import cluster
from cluster import addr


Setup = cluster.FailoverSetup


S = None


def setup_module():
    global S
    S = Setup(cluster.ZooKeeper())


def teardown_module():
    S.stop()
    S.zk.stop()


def test_master_hung_briefly_no_failover():
    ws = S.writers(10)
    term = S.status()["shards"][0]["term"]
    S.master.kill(signal.SIGSTOP)
    time.sleep(3)
    S.master.kill(signal.SIGCONT)
    counts = [len(w.acked) for w in ws]
    cluster.wait_for(lambda: all(len(w.acked) >= c + 20 for w, c in zip(ws, counts)), 30,
                     "writes after the hang")
    st = S.status()
    assert st["shards"][0]["master"] == addr(S.master), st
    assert st["shards"][0]["term"] == term, st
    S.finish(ws, S.master)


def test_master_hung_long_fails_over_and_commits_nothing_on_waking():
    ws = S.writers(20)
    old = S.master
    old.kill(signal.SIGSTOP)
    try:
        cluster.wait_for(lambda: S.master_addr() != addr(old), 60, "a failover")
        new = [s for s in S.standbys if addr(s) == S.master_addr()][0]
        cluster.wait_for(lambda: new.sql("SELECT @@read_only")[0][0] == 0, 60, "writable")
        counts = [len(w.acked) for w in ws]
        cluster.wait_for(lambda: all(len(w.acked) >= c + 20 for w, c in zip(ws, counts)), 30,
                         "writes on the new master")
    finally:
        old.kill(signal.SIGCONT)
    # Awake, the old master cannot complete a commit: no standby acknowledges
    # it any more and semi-sync never falls back.
    c = old.connect(read_timeout=3)
    try:
        with c.cursor() as cur:
            try:
                cur.execute("INSERT INTO ledger (userid, id, writer) VALUES (1, 424242, 0)")
                committed = True
            except cluster.pymysql.err.MySQLError:
                committed = False
    finally:
        try:
            c.close()
        except Exception:
            pass
    assert not committed, "the old master acknowledged a commit after the failover"
    rows = S.finish(ws, new)
    assert (1, 424242) not in rows
    S.master = new
    S.standbys = [s for s in S.servers if s is not new and s is not old]
    old.stop()


def test_zookeeper_leader_killed_during_failover():
    ens = cluster.ZooKeeperEnsemble(3)
    s = Setup(ens, router_env={"SHARDWIRE_TEST_FAILOVER_PAUSE_AFTER": "prepared",
                               "SHARDWIRE_TEST_FAILOVER_PAUSE_MS": "3000"})
    try:
        ws = s.writers(30)
        logs = [os.path.getsize(r.log_path) for r in s.routers]
        s.master.kill(signal.SIGKILL)

        def paused():
            for r, pos in zip(s.routers, logs):
                with open(r.log_path, errors="replace") as f:
                    f.seek(pos)
                    if "test pause after state=prepared" in f.read():
                        return True
            return False
        cluster.wait_for(paused, 60, "the coordinator between prepared and published")
        ens.kill(ens.leader())
        cluster.wait_for(lambda: s.master_addr() != addr(s.master), 90, "the failover completed")
        new = [x for x in s.standbys if addr(x) == s.master_addr()][0]
        cluster.wait_for(lambda: new.sql("SELECT @@read_only")[0][0] == 0, 60, "writable")
        counts = [len(w.acked) for w in ws]
        cluster.wait_for(lambda: all(len(w.acked) >= c + 20 for w, c in zip(ws, counts)), 60,
                         "writes on the new master")
        s.finish(ws, new)
        fo = s.status()["shards"][0]["failover"]
        assert fo["state"] == "done" and fo["new"] == addr(new), fo
    finally:
        s.stop()
        ens.stop()

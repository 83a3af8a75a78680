"""
tests/e2e/test_move_promotion.py - a real promotion of the source or the
destination during `shardctl move` (issue 13, docs/moves.md "Faults during
a move"). Two replicated shards (a lossless semi-sync master and a standby
each), two routers, a write ledger through both, vbuckets 0-3 moving from
s0 to s1:

  * `shardctl switchover` of the source while the move is in catch-up;
  * `shardctl switchover` of the destination while the moving vbuckets are
    frozen (the mover stopped between the routers' acknowledgements and
    its drain);
  * `shardctl switchover` of the source after the flip, before cleanup:
    the move finishes, deleting on the new master.

Before the flip the move stops cleanly: exit 5, the map unfrozen, the journal
back at copy with the master change as its error. The rerun copies again
from the new masters and finishes: every acknowledged row once, on the
master of the shard that owns it, nothing of the moved vbuckets left on
the source, the destination holding exactly the moved rows, and the old
master (now a standby) still replicating the new one (the mover wrote
nothing on it after its fence). The automatic failover (the routers'
coordinator promoting after the source master is killed during the copy)
is in long_move_promotion.py.
"""

import signal

import cluster
from cluster import addr
from ledger import LEDGER_DDL

ZK = None
SERVERS = []        # every MariaDB: s0's two, then s1's two
VB = 16
MOVE = ("move", "0-3", "--to", "s1", "--database", "app", "--router-wait", "20")


def setup_module():
    global ZK
    ZK = cluster.ZooKeeper()
    for name in ("s0", "s1"):
        master, sbs = cluster.replicated_shard(name, 1, [LEDGER_DDL] + cluster.MOVE_GRANTS)
        SERVERS.extend([master] + sbs)


def teardown_module():
    for db in SERVERS:
        db.stop()
    ZK.stop()


def router_config():
    """Routers that health-check and fail over on their own (as in
    test_autofailover.py)."""
    return {"control_user": cluster.CONTROL_USER, "control_password": cluster.CONTROL_PASSWORD,
            "health_interval_ms": 200, "health_timeout_ms": 500,
            "health_down_after_fails": 3, "health_down_after_ms": 1000,
            "auto_failover": "on", "failover_router_wait_ms": 5000,
            "failover_flap_window_ms": 600000, "connect_timeout_ms": 1000}


def new_rig():
    """A fresh root on the servers as they are now: each shard's writable
    server is its master, the other its standby."""
    shards = []
    for k, name in enumerate(("s0", "s1")):
        pair = [db for db in SERVERS[2 * k:2 * k + 2] if db.alive()]
        master = [db for db in pair if db.sql("SELECT @@read_only")[0][0] == 0][0]
        shards.append((name, master, [db for db in pair if db is not master]))
    return cluster.MoveRig(ZK, SERVERS, shards, n_vbuckets=VB, router_config=router_config())


def check_after(rig, old):
    """The ledger checks, and the deposed master <old> replicating its
    successor with the same rows (an errant write would have broken it)."""
    errs = rig.check_ledger("s0", range(0, 4), rig.filled)
    new = rig.masters()[("s0", "s1")[SERVERS.index(old) // 2]]
    cluster.wait_for(lambda: old.slave_running() == (True, True), 20,
                     "the old master replicating the new one")
    old.wait_caught_up(new)
    assert set(old.sql("SELECT userid, id FROM ledger")) == set(new.sql(
        "SELECT userid, id FROM ledger"))
    return errs


def switchover_during(point, shard, role):
    """Stops the mover at <point>, switches <shard> over to its standby,
    lets the mover go on: before the flip it must stop cleanly and a rerun
    finish; after it (cleanup) it finishes on the new master. Then checks
    the outcome."""
    rig = new_rig()
    try:
        rig.filled = rig.fill(rig.masters()["s0"], 5, lambda vb: vb < 8)
        rig.start_writers()
        p = rig.paused_move(point, *MOVE)
        old = rig.masters()[shard]
        try:
            rig.ctl("switchover", shard)
            new = rig.masters()[shard]
            assert new is not old
            p.send_signal(signal.SIGCONT)
            out, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
        if point == "cleanup":
            assert p.returncode == 0 and "done:" in out, (out, err)
            assert "cleanup: the master of s0 is %s now (was %s)" % (addr(new), addr(old)) \
                in out, out
        else:
            assert p.returncode == 5, (out, err)
            assert "the master of %s %s changed from %s to %s" % (role, shard, addr(old),
                                                                  addr(new)) in err, err
            assert "stopped before its flip, at phase copy" in err, err
            dump = rig.ctl("dump-map").stdout
            assert "frozen" not in dump and "vb 0-7 s0" in dump, dump
            ms = rig.journal()
            assert ms["phase"] == "copy" and "changed" in ms["error"], ms
            r = rig.ctl(*MOVE)
            assert "resuming at phase copy" in r.stdout and "done:" in r.stdout, r.stdout
        assert rig.journal()["phase"] == "done"
        errs = check_after(rig, old)
        print("switchover of the %s at %s: the writers saw %s" % (role, point, errs))
    finally:
        rig.stop()


def test_switchover_of_the_source_in_catchup():
    switchover_during("catchup", "s0", "source")


def test_switchover_of_the_destination_while_frozen():
    switchover_during("frozen", "s1", "destination")


def test_switchover_of_the_source_after_the_flip():
    """Between the flip and cleanup: cleanup deletes on the new master (on
    the old one, now a standby, a delete would be an errant transaction
    and break its replication: check_after would see it)."""
    switchover_during("cleanup", "s0", "source")

"""
tests/e2e/test_move_faults.py - `shardctl move` under faults (issue 13,
docs/moves.md): the mover killed (kill -9) in catch-up, after the freeze
(before the flip), after the flip (before cleanup) and in cleanup, each
time rerun to the end with a write ledger through two routers clean (every
acknowledged row once, on the shard the map names, none left on the
source); the source master killed in the copy (the move stops with a clear
message, --abort works with the source still down); a failover of the
source or of the destination while frozen (the flip is refused, the
vbuckets unfrozen, a rerun copies again). The slow faults (a router
killed in the cutover, ZooKeeper down) are in long_move_faults.py.

The mover is stopped at a named point with SHARDWIRE_MOVE_PAUSE (it stops
itself with SIGSTOP there), so each kill lands in the phase it names.
"""

import json
import os
import signal
import subprocess
import time

import cluster
from ledger import LEDGER_DDL, Writer, errors as ledger_errors, lost as lost_keys

ZK = None
S = {}            # name -> MariaDB: s0, s1, s2 and s0b (a stand-in new master of s0)
VB = 16
ROOT_N = [0]


def setup_module():
    global ZK
    ZK = cluster.ZooKeeper()
    for name in ("s0", "s1", "s2", "s0b"):
        db = cluster.MariaDB(name)
        db.sql(LEDGER_DDL)
        db.sql("GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO '%s'@'127.0.0.1'"
               % cluster.CONTROL_USER)
        db.sql("GRANT REPLICATION SLAVE ON *.* TO '%s'@'127.0.0.1'" % cluster.CONTROL_USER)
        S[name] = db


def teardown_module():
    for db in S.values():
        db.stop()
    ZK.stop()


def env(**kw):
    e = dict(os.environ, SHARDWIRE_CONTROL_USER=cluster.CONTROL_USER,
             SHARDWIRE_CONTROL_PASSWORD=cluster.CONTROL_PASSWORD)
    e.update(kw)
    return e


def argv(root, *args):
    return [cluster.shardctl_path(), "--zk", ZK.hosts, "--root", root, "--timeout", "5"] + \
        list(args)


def ctl(root, *args, check=True, timeout=120):
    r = subprocess.run(argv(root, *args), capture_output=True, text=True, timeout=timeout,
                       env=env())
    if check:
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r


class Setup:
    """A fresh root: s0 owns 0-7, s1 8-15, s2 nothing; empty ledgers; two
    routers; writers on users of every vbucket."""

    def __init__(self, routers=True, router_config=None):
        ROOT_N[0] += 1
        self.root = root = "/mf%d" % ROOT_N[0]
        ctl(root, "init", "--acl", "open", "--vbuckets", str(VB),
            "--shard", "s0=" + cluster.addr(S["s0"]), "--shard", "s1=" + cluster.addr(S["s1"]))
        ctl(root, "add-shard", "s2", cluster.addr(S["s2"]))
        for db in S.values():
            if db.alive():
                db.sql("DELETE FROM ledger")
        self.routers = []
        if routers:
            for name in ("ra", "rb"):
                self.routers.append(cluster.Router({
                    "zookeeper": ZK.hosts, "zk_root": root, "router_id": name,
                    "map_cache": os.path.join(cluster.tmp_root(), "%s-%s.map" % (
                        root.strip("/"), name)),
                    "pool_wait_timeout_ms": 3000, "move_hold_ms": 20000,
                    **(router_config or {})}))
            cluster.wait_for(lambda: len(json.loads(ctl(root, "--json", "routers").stdout)
                                         ["routers"]) == 2, 20, "both routers registered")
        self.writers = []

    def start_writers(self, n=4):
        self.writers = [Writer(i, self.routers[i % 2], userid_base=2000, users=48, pause=0.003)
                        for i in range(1, n + 1)]
        for w in self.writers:
            w.start()
        cluster.wait_for(lambda: all(len(w.acked) >= 10 for w in self.writers), 30,
                         "writes flowing")

    def owners(self):
        own = {}
        for line in ctl(self.root, "dump-map").stdout.splitlines():
            if line.startswith("vb "):
                rng, shard = line.split()[1], line.split()[2]
                lo, _, hi = rng.partition("-")
                for vb in range(int(lo), int(hi or lo) + 1):
                    own[vb] = shard
        return own

    def vbuckets(self, users):
        path = os.path.join(cluster.tmp_root(), "mf.map")
        with open(path, "w") as f:
            f.write(ctl(self.root, "dump-map").stdout)
        res = cluster.explain(["SELECT * FROM ledger WHERE userid = %d" % u for u in users], path)
        return {u: r["vbucket"] for u, r in zip(users, res)}

    def check_ledger(self, source="s0", moving=range(0, 4)):
        """Stops the writers; every acknowledged row once, on its owner; none
        of the moved vbuckets left on <source>."""
        for w in self.writers:
            w.stop.set()
        for w in self.writers:
            w.join(30)
        own = self.owners()
        users = sorted({k[0] for w in self.writers for k in w.keys()} |
                       {u for db in S.values() if db.alive()
                        for (u,) in db.sql("SELECT DISTINCT userid FROM ledger")})
        vbs = self.vbuckets(users)
        where = {}
        for name, db in S.items():
            if not db.alive():
                continue
            for (u, i) in db.sql("SELECT userid, id FROM ledger"):
                assert (u, i) not in where, ("duplicate", (u, i), where[(u, i)], name)
                where[(u, i)] = name
        assert sum(len(w.acked) for w in self.writers) > 50
        assert lost_keys(self.writers, set(where)) == []
        wrong = [(k, n) for k, n in where.items() if own[vbs[k[0]]] != n]
        assert wrong == [], wrong[:5]
        assert not [k for k, n in where.items() if n == source and vbs[k[0]] in moving]
        return ledger_errors(self.writers)

    def stop(self):
        for w in self.writers:
            w.stop.set()
        for r in self.routers:
            r.stop()


def paused_move(root, point, *args):
    """Starts `shardctl move ... ` that stops itself at <point>; returns it
    once it is stopped there."""
    p = subprocess.Popen(argv(root, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env(SHARDWIRE_MOVE_PAUSE=point))

    def stopped():
        try:
            with open("/proc/%d/stat" % p.pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "T"
        except OSError:
            return False
    cluster.wait_for(lambda: stopped() or p.poll() is not None, 90, "mover at " + point)
    assert p.poll() is None, p.communicate()
    return p


def journal(root):
    return json.loads(ctl(root, "--json", "moves").stdout)["moves"][0]


MOVE = ("move", "0-3", "--to", "s2", "--database", "app", "--router-wait", "20")


def test_mover_killed_in_catchup_resumes():
    st = Setup()
    try:
        st.start_writers()
        p = paused_move(st.root, "catchup", *MOVE)
        p.kill()
        p.wait()
        assert journal(st.root)["phase"] == "catchup"
        assert "frozen" not in ctl(st.root, "dump-map").stdout
        r = ctl(st.root, *MOVE)
        assert "resuming at phase catchup" in r.stdout and "done:" in r.stdout, r.stdout
        errs = st.check_ledger()
        assert errs == {}, errs
        assert journal(st.root)["phase"] == "done"
    finally:
        st.stop()


def test_mover_killed_frozen_before_flip_resumes():
    st = Setup()
    try:
        st.start_writers()
        p = paused_move(st.root, "frozen", *MOVE)
        p.kill()
        p.wait()
        dump = ctl(st.root, "dump-map").stdout
        assert "vb 0-3 s0 frozen\n" in dump, dump
        assert journal(st.root)["phase"] == "cutover"
        # statements for the frozen vbuckets are held meanwhile, not refused
        before = sum(len(w.acked) for w in st.writers)
        r = ctl(st.root, *MOVE)
        assert "resuming at phase cutover" in r.stdout and "done:" in r.stdout, r.stdout
        assert sum(len(w.acked) for w in st.writers) > before
        errs = st.check_ledger()
        assert errs == {}, errs
        assert "frozen" not in ctl(st.root, "dump-map").stdout
    finally:
        st.stop()


def test_mover_killed_after_flip_and_in_cleanup_resumes():
    for point in ("flipped", "cleanup"):
        st = Setup()
        try:
            st.start_writers()
            p = paused_move(st.root, point, *MOVE)
            p.kill()
            p.wait()
            assert "vb 0-3 s2" in ctl(st.root, "dump-map").stdout
            r = ctl(st.root, *MOVE)
            assert "done:" in r.stdout, r.stdout
            if point == "flipped":
                assert "the map already names s2; cleanup remains" in r.stdout, r.stdout
            # too late to abort once flipped
            r = ctl(st.root, "move", "--abort", journal(st.root)["id"], check=False)
            assert r.returncode == 4 and "too late to abort" in r.stderr, r.stderr
            errs = st.check_ledger()
            assert errs == {}, errs
        finally:
            st.stop()


def test_source_master_killed_in_copy_then_abort():
    st = Setup(routers=False)
    conn = S["s0"].connect()
    with conn.cursor() as c:
        c.executemany("INSERT INTO ledger VALUES (%s, %s, 0)",
                      [(u, i) for u in range(2000, 2048) for i in range(20)])
    conn.close()
    p = subprocess.Popen(argv(st.root, *MOVE, "--rate", "60"), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env())
    try:
        cluster.wait_for(lambda: S["s2"].sql("SELECT COUNT(*) FROM ledger")[0][0] > 0, 30,
                         "the copy started")
        S["s0"].kill()
        out, err = p.communicate(timeout=60)
        assert p.returncode != 0, out
        assert "source" in err and "stopped before its flip, at phase copy" in err, err
        assert "--abort" in err, err
        ms = journal(st.root)
        assert ms["phase"] == "copy" and ms["error"], ms
        before = ctl(st.root, "dump-map").stdout
        r = ctl(st.root, "move", "--abort", ms["id"])
        assert "aborted" in r.stdout, r.stdout
        assert S["s2"].sql("SELECT COUNT(*) FROM ledger")[0][0] == 0
        assert ctl(st.root, "dump-map").stdout == before
        assert journal(st.root)["phase"] == "aborted"
    finally:
        if p.poll() is None:
            p.kill()
        S["s0"].start()
    assert S["s0"].sql("SELECT COUNT(*) FROM ledger")[0][0] == 48 * 20


def test_failover_of_source_or_destination_while_frozen_stops_the_flip():
    """A stand-in failover: the map names another master for the source s0,
    then for the destination s2, while the move is frozen (no writers: rows
    written to the stand-in are not a real failover's)."""
    for shard, role in (("s0", "source"), ("s2", "destination")):
        st = Setup(routers=False)
        conn = S["s0"].connect()
        with conn.cursor() as c:
            c.executemany("INSERT INTO ledger VALUES (%s, %s, 0)",
                          [(u, i) for u in range(2000, 2048) for i in range(5)])
        conn.close()
        users = st.vbuckets(list(range(2000, 2048)))
        moving = sorted(u for u, vb in users.items() if vb < 4)
        p = paused_move(st.root, "frozen", *MOVE)
        old = cluster.addr(S[shard])
        try:
            ctl(st.root, "set-master", shard, cluster.addr(S["s0b"]))
            p.send_signal(signal.SIGCONT)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
        assert p.returncode == 5, (out, err)
        assert "the master of %s %s changed from %s to %s" % (
            role, shard, old, cluster.addr(S["s0b"])) in err, err
        dump = ctl(st.root, "dump-map").stdout
        assert "frozen" not in dump and "vb 0-7 s0" in dump, dump
        ms = journal(st.root)
        assert ms["phase"] == "copy" and "changed" in ms["error"], ms
        # the old master back in the map: the rerun copies again and finishes
        ctl(st.root, "set-master", shard, old)
        r = ctl(st.root, *MOVE)
        assert "resuming at phase copy" in r.stdout and "done:" in r.stdout, r.stdout
        got = sorted(u for (u,) in S["s2"].sql("SELECT userid FROM ledger"))
        assert got == sorted(u for u in moving for _ in range(5)), got
        assert S["s0"].sql("SELECT COUNT(*) FROM ledger")[0][0] == (48 - len(moving)) * 5
        assert S["s0b"].sql("SELECT COUNT(*) FROM ledger")[0][0] == 0

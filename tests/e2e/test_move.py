"""
tests/e2e/test_move.py - `shardctl move` and `shardctl moves` (issue 13,
docs/moves.md) against real MariaDB masters, a real ZooKeeper and real
routers: bad requests refused before anything changes, a move without
routers (copy from a snapshot, catch-up of writes made meanwhile from the
binary log, cutover with the row check, flip, cleanup), a move under a write
ledger and readers through two routers (none lost, none duplicated, none
left on the source), `--abort` before the flip, and the mover killed in the
copy and resumed.
"""

import json
import os
import signal
import subprocess
import time

import threading

import cluster
from ledger import LEDGER_DDL, Writer, errors as ledger_errors, lost as lost_keys

ZK = None
S = {}            # shard name -> MariaDB
VB = 16           # vbuckets: small, so every vbucket holds rows
ROOT_N = [0]

DDL = ["CREATE TABLE accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL, "
       "name VARCHAR(100) CHARACTER SET utf8mb4, balance DECIMAL(12,2), note BLOB, "
       "PRIMARY KEY (userid, id))",
       "CREATE TABLE events (eid BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, "
       "userid BIGINT NOT NULL, body VARCHAR(200), KEY (userid))", LEDGER_DDL]


def setup_module():
    global ZK
    ZK = cluster.ZooKeeper()
    S.update(cluster.move_masters(("s0", "s1", "s2"), DDL))


def teardown_module():
    for db in S.values():
        db.stop()
    ZK.stop()


def ctl(root, *args, check=True, timeout=120, env=None):
    argv = [cluster.shardctl_path(), "--zk", ZK.hosts, "--root", root, "--timeout", "5"] + \
        list(args)
    e = dict(os.environ, SHARDWIRE_CONTROL_USER=cluster.CONTROL_USER,
             SHARDWIRE_CONTROL_PASSWORD=cluster.CONTROL_PASSWORD)
    e.update(env or {})
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=e)
    if check:
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r


def new_cluster():
    """A fresh root: s0 owns vbuckets 0-7, s1 8-15, s2 none; empty tables."""
    ROOT_N[0] += 1
    root = "/move%d" % ROOT_N[0]
    ctl(root, "init", "--acl", "open", "--vbuckets", str(VB),
        "--shard", "s0=" + cluster.addr(S["s0"]), "--shard", "s1=" + cluster.addr(S["s1"]))
    ctl(root, "add-shard", "s2", cluster.addr(S["s2"]))
    for db in S.values():
        for t in ("accounts", "events", "ledger"):
            db.sql("DELETE FROM %s" % t)
    return root


def vbucket_of(userids, root):
    """{userid: vbucket} as the router computes it (shardctl explain)."""
    path = os.path.join(cluster.tmp_root(), "vb.map")
    with open(path, "w") as f:
        f.write(ctl(root, "dump-map").stdout)
    res = cluster.explain(["SELECT * FROM accounts WHERE userid = %d" % u for u in userids], path)
    return {u: r["vbucket"] for u, r in zip(userids, res)}


def fill(root, users=range(1, 200)):
    """Rows for every user on its owner; returns {userid: vbucket}."""
    vbs = vbucket_of(list(users), root)
    st = json.loads(ctl(root, "--json", "status").stdout)
    owner = {}
    for line in ctl(root, "dump-map").stdout.splitlines():
        if line.startswith("vb "):
            rng, shard = line.split()[1], line.split()[2]
            lo, _, hi = rng.partition("-")
            for vb in range(int(lo), int(hi or lo) + 1):
                owner[vb] = shard
    assert len(st["shards"]) == 3
    for name, db in S.items():
        mine = [u for u, vb in vbs.items() if owner[vb] == name]
        conn = db.connect()
        try:
            with conn.cursor() as c:
                c.executemany("INSERT INTO accounts VALUES (%s, %s, %s, %s, %s)",
                              [(u, i, "n\u00e9-%d-%d" % (u, i), "%d.%02d" % (u, i),
                                bytes([0, 255, u % 256, i])) for u in mine for i in range(3)])
                c.executemany("INSERT INTO events (userid, body) VALUES (%s, %s)",
                              [(u, "e%d" % u) for u in mine])
        finally:
            conn.close()
    return vbs


def map_body(root):
    """dump-map without its version line: owners and states."""
    return "\n".join(l for l in ctl(root, "dump-map").stdout.splitlines()
                     if not l.startswith("version "))


def rows(db, table, vbs, moving):
    key = "(userid, id)" if table == "accounts" else "eid"
    out = db.sql("SELECT * FROM %s ORDER BY %s" % (table, key[1:-1] if "(" in key else key))
    uid = 0 if table == "accounts" else 1
    return [r for r in out if vbs.get(r[uid]) in moving]


def test_bad_requests_change_nothing():
    root = new_cluster()
    before = ctl(root, "dump-map").stdout
    cases = [
        (["move", "3", "--to", "s9", "--database", "app"], 4, "unknown shard 's9'"),
        (["move", "3", "--to", "s0", "--database", "app"], 4, "already belong to shard 's0'"),
        (["move", "7-8", "--to", "s2", "--database", "app"], 4, "belong to more than one shard"),
        (["move", "16", "--to", "s2", "--database", "app"], 1, "out of range 0..15"),
        (["move", "1,1", "--to", "s2", "--database", "app"], 1, "listed twice"),
        (["move", "3", "--to", "s2"], 1, "needs --database"),
        (["move", "--abort", "m-0000009999"], 4, "no move 'm-0000009999'"),
    ]
    for args, code, text in cases:
        r = ctl(root, *args, check=False)
        assert r.returncode == code and text in r.stderr, (args, r.returncode, r.stderr)
    # a table without the key column, a destination without a table: named
    S["s0"].sql("CREATE TABLE loose (x INT PRIMARY KEY)")
    try:
        r = ctl(root, "move", "3", "--to", "s2", "--database", "app", check=False)
        assert r.returncode == 4 and "table app.loose has no shard-key column" in r.stderr, r.stderr
    finally:
        S["s0"].sql("DROP TABLE loose")
    S["s0"].sql("CREATE TABLE extra (userid BIGINT, k INT, PRIMARY KEY (userid, k))")
    try:
        r = ctl(root, "move", "3", "--to", "s2", "--database", "app", check=False)
        assert r.returncode == 4 and "has no table app.extra" in r.stderr, r.stderr
    finally:
        S["s0"].sql("DROP TABLE extra")
    assert ctl(root, "dump-map").stdout == before
    assert "no moves" in ctl(root, "moves").stdout


def test_move_without_routers_copies_catches_up_and_flips():
    root = new_cluster()
    vbs = fill(root)
    moving = {2, 3, 5}
    src_acc = rows(S["s0"], "accounts", vbs, moving)
    assert len(src_acc) > 20
    # writes on the source during the copy (rate-limited to last seconds);
    # with no router to hold them they must end before the cutover
    r = subprocess.Popen([cluster.shardctl_path(), "--zk", ZK.hosts, "--root", root, "move",
                          "2-3,5", "--to", "s2", "--database", "app", "--rate", "40"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, SHARDWIRE_CONTROL_USER=cluster.CONTROL_USER,
                                  SHARDWIRE_CONTROL_PASSWORD=cluster.CONTROL_PASSWORD))
    changed = [u for u, vb in vbs.items() if vb in moving][:10]
    cluster.wait_for(lambda: S["s2"].sql("SELECT COUNT(*) FROM accounts")[0][0] > 0, 30,
                     "the copy started")
    for u in changed:
        S["s0"].sql("UPDATE accounts SET name = 'changed' WHERE userid = %s AND id = 0", (u,))
        S["s0"].sql("DELETE FROM accounts WHERE userid = %s AND id = 2", (u,))
        S["s0"].sql("INSERT INTO accounts VALUES (%s, 9, 'new', 1.5, NULL)", (u,))
        S["s0"].sql("INSERT INTO events (userid, body) VALUES (%s, 'during')", (u,))
    out, err = r.communicate(timeout=120)
    assert r.returncode == 0, (out, err)
    assert "done: vbuckets 2-3,5 moved from s0 to s2" in out, out
    dump = ctl(root, "dump-map").stdout
    assert "vb 2-3 s2\n" in dump and "vb 5 s2\n" in dump and "frozen" not in dump, dump
    # the source holds none of them after cleanup; the destination what the
    # source held plus the changes made during the move (one row deleted and
    # one inserted per changed user)
    for table in ("accounts", "events"):
        assert rows(S["s0"], table, vbs, moving) == [], table
    got = rows(S["s2"], "accounts", vbs, moving)
    assert len(got) == len(src_acc), (len(got), len(src_acc))
    untouched = [r for r in src_acc if r[0] not in changed]
    assert [r for r in got if r[0] not in changed] == untouched
    for u in changed:
        acc = {r[1]: r for r in got if r[0] == u}
        assert acc[0][2] == "changed" and 2 not in acc and acc[9][2] == "new", acc
    assert len([r for r in rows(S["s2"], "events", vbs, moving) if r[2] == "during"]) == 10
    # bytes and decimals arrive unchanged
    one = [r for r in got if r[0] not in changed][0]
    assert one[4] == bytes([0, 255, one[0] % 256, one[1]]) and "\u00e9" in one[2], one
    # rows of other vbuckets never moved
    others = [u for u, vb in vbs.items() if vb not in moving and vb < 8]
    assert S["s2"].sql("SELECT COUNT(*) FROM accounts WHERE userid IN (%s)"
                       % ",".join(map(str, others)))[0][0] == 0
    ms = json.loads(ctl(root, "--json", "moves").stdout)["moves"]
    assert [(m["phase"], m["vbuckets"], m["from"], m["to"]) for m in ms] == \
        [("done", "2-3,5", "s0", "s2")], ms


def test_abort_before_the_flip_removes_the_copy():
    root = new_cluster()
    vbs = fill(root)
    moving = {9, 10}
    before_map = map_body(root)
    before_src = rows(S["s1"], "accounts", vbs, moving)
    # a registration that never acknowledges (shardctl watch) keeps the move
    # before its flip; a real router acknowledges and holds statements for
    # the frozen vbuckets, each for move_hold_ms, then answers error 1205
    proc = subprocess.Popen([cluster.shardctl_path(), "--zk", ZK.hosts, "--root", root,
                             "watch", "r-silent"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    rt = cluster.Router({"zookeeper": ZK.hosts, "zk_root": root, "router_id": "r-real",
                         "move_hold_ms": 300})
    user = [u for u, vb in vbs.items() if vb == 9][0]
    other = [u for u, vb in vbs.items() if vb not in moving][0]
    seen = {}

    def probe():
        conn = rt.connect(read_timeout=10)
        while "done" not in seen:
            t0 = time.monotonic()
            try:
                with conn.cursor() as c:
                    c.execute("SELECT COUNT(*) FROM accounts WHERE userid = %s", (user,))
                    c.fetchall()
            except Exception as e:      # noqa: BLE001 - what the test looks for
                seen.setdefault("err", (e.args[0], str(e.args[1]), time.monotonic() - t0))
            time.sleep(0.02)
        conn.close()
    th = threading.Thread(target=probe, daemon=True)
    try:
        cluster.wait_for(lambda: ctl(root, "--json", "routers").stdout.count("r-") >= 2,
                         10, "watcher and router registered")
        th.start()
        r = ctl(root, "move", "9-10", "--to", "s2", "--database", "app", "--router-wait", "2",
                check=False)
        seen["done"] = True
        th.join(timeout=15)
        assert r.returncode == 5, (r.stdout, r.stderr)
        assert "r-silent did not acknowledge the freeze" in r.stderr, r.stderr
        assert "r-real" not in r.stderr.split("did not")[0], r.stderr   # it acknowledged
        assert "err" in seen, "no statement was held during the freeze"
        code, msg, took = seen["err"]
        assert code == 1205 and "vbucket 9" in msg and "being moved" in msg, seen
        assert 0.25 < took < 2.0, took
        # a vbucket that is not moving was never held; after the unfreeze
        # the moving one is served again (still by its owner)
        conn = rt.connect()
        with conn.cursor() as c:
            c.execute("SELECT COUNT(*) FROM accounts WHERE userid = %s", (other,))
            c.execute("SELECT COUNT(*) FROM accounts WHERE userid = %s", (user,))
            assert c.fetchall()[0][0] == 3
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        rt.stop()
    assert map_body(root) == before_map   # unfrozen, owners unchanged
    assert len(rows(S["s2"], "accounts", vbs, moving)) == len(before_src)
    ms = json.loads(ctl(root, "--json", "moves").stdout)["moves"]
    assert ms[0]["phase"] == "catchup" and "did not acknowledge" in ms[0]["error"], ms
    r = ctl(root, "move", "--abort", ms[0]["id"])
    assert "aborted" in r.stdout, r.stdout
    assert rows(S["s2"], "accounts", vbs, moving) == []
    assert rows(S["s2"], "events", vbs, moving) == []
    assert rows(S["s1"], "accounts", vbs, moving) == before_src
    assert map_body(root) == before_map
    assert json.loads(ctl(root, "--json", "moves").stdout)["moves"][0]["phase"] == "aborted"
    # the vbuckets are free to move again; an aborted move is not resumed
    r = ctl(root, "move", "--abort", ms[0]["id"])
    assert "already aborted" in r.stdout


def test_mover_killed_in_copy_resumes():
    root = new_cluster()
    vbs = fill(root, range(1, 400))
    moving = {0, 1}
    want = rows(S["s0"], "accounts", vbs, moving)
    argv = [cluster.shardctl_path(), "--zk", ZK.hosts, "--root", root, "move", "0-1", "--to",
            "s2", "--database", "app", "--rate", "50"]
    env = dict(os.environ, SHARDWIRE_CONTROL_USER=cluster.CONTROL_USER,
               SHARDWIRE_CONTROL_PASSWORD=cluster.CONTROL_PASSWORD)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    cluster.wait_for(lambda: S["s2"].sql("SELECT COUNT(*) FROM accounts")[0][0] > 0, 30,
                     "the copy started")
    p.kill()
    p.wait()
    ms = json.loads(ctl(root, "--json", "moves").stdout)["moves"]
    assert ms[0]["phase"] == "copy", ms
    r = ctl(root, "move", "0-1", "--to", "s2", "--database", "app")
    assert "resuming at phase copy" in r.stdout and "removed" in r.stdout, r.stdout
    assert rows(S["s2"], "accounts", vbs, moving) == want
    assert rows(S["s0"], "accounts", vbs, moving) == []
    assert "vb 0-1 s2" in ctl(root, "dump-map").stdout


def router(root, name):
    return cluster.Router({"zookeeper": ZK.hosts, "zk_root": root, "router_id": name,
                           "map_cache": os.path.join(cluster.tmp_root(), "%s-%s.map" % (
                               root.strip("/"), name)),
                           "pool_wait_timeout_ms": 3000, "move_hold_ms": 5000})


class Reader(threading.Thread):
    """Reads its users' ledger rows through a router, counting errors."""

    def __init__(self, r, users):
        super().__init__(daemon=True)
        self.r, self.users, self.reads, self.errors = r, users, 0, []
        self.stop = threading.Event()

    def run(self):
        conn = self.r.connect(read_timeout=15)
        i = 0
        while not self.stop.is_set():
            u = self.users[i % len(self.users)]
            i += 1
            try:
                with conn.cursor() as c:
                    c.execute("SELECT COUNT(*) FROM ledger WHERE userid = %s", (u,))
                    c.fetchall()
                self.reads += 1
            except Exception as e:      # noqa: BLE001 - counted, reported by the test
                self.errors.append(repr(e)[:120])
                conn = self.r.connect(read_timeout=15)
        conn.close()


def test_move_under_load_through_two_routers_loses_nothing():
    root = new_cluster()
    routers = [router(root, "ra"), router(root, "rb")]
    try:
        cluster.wait_for(lambda: len(json.loads(ctl(root, "--json", "routers").stdout)
                                     ["routers"]) == 2, 20, "both routers registered")
        users = list(range(1000, 1060))
        vbs = vbucket_of(users, root)
        moving = {v for v in vbs.values() if v < 8}
        writers = [Writer(i, routers[i % 2], userid_base=1000, users=60, pause=0.002)
                   for i in range(1, 5)]
        readers = [Reader(routers[i % 2], users) for i in range(2)]
        for t in writers + readers:
            t.start()
        time.sleep(1.0)
        r = ctl(root, "move", ",".join(str(v) for v in sorted(moving)), "--to", "s2",
                "--database", "app", "--router-wait", "10", check=False)
        time.sleep(1.0)
        for t in writers + readers:
            t.stop.set()
        for t in writers + readers:
            t.join(timeout=30)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert "done:" in r.stdout, r.stdout
        dump = ctl(root, "dump-map").stdout
        assert "frozen" not in dump, dump
        # every acknowledged row exactly once, on the shard the map names
        owner = {}
        for line in dump.splitlines():
            if line.startswith("vb "):
                rng, shard = line.split()[1], line.split()[2]
                lo, _, hi = rng.partition("-")
                for vb in range(int(lo), int(hi or lo) + 1):
                    owner[vb] = shard
        where = {}
        for name, db in S.items():
            for (u, i) in db.sql("SELECT userid, id FROM ledger"):
                assert (u, i) not in where, ("duplicate", (u, i), where[(u, i)], name)
                where[(u, i)] = name
        acked = sum(len(w.acked) for w in writers)
        assert acked > 200, acked
        assert lost_keys(writers, set(where)) == []
        wrong = [(k, n) for k, n in where.items() if owner[vbs[k[0]]] != n]
        assert wrong == [], wrong[:5]
        assert not any(where[k] == "s0" and vbs[k[0]] in moving for k in where)
        assert ledger_errors(writers) == {}, ledger_errors(writers)
        assert all(not rd.errors for rd in readers), [rd.errors[:3] for rd in readers]
        assert sum(rd.reads for rd in readers) > 50
        m = [l for l in r.stdout.splitlines() if "cutover: " in l and " ms" in l]
        assert m, r.stdout
        print("\n".join("    " + l for l in m))
    finally:
        for rt in routers:
            rt.stop()

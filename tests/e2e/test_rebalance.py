"""
tests/e2e/test_rebalance.py - `shardctl rebalance`, `shardctl remove-shard`
and moves running side by side (issue 13, docs/moves.md "Rebalancing")
against real MariaDB masters, a real ZooKeeper and two real routers, with a
write ledger through both routers during every move: none lost, none
duplicated, none left on a source, every destination holding exactly what
its source held. Bad requests change nothing.
"""

import json
import os
import pty
import select
import signal
import subprocess
import time

import cluster
from ledger import LEDGER_DDL, Writer, errors as ledger_errors, lost as lost_keys

ZK = None
S = {}            # shard name -> MariaDB
VB = 16
ROOT_N = [0]

DDL = ["CREATE TABLE accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL, "
       "name VARCHAR(100) CHARACTER SET utf8mb4, note BLOB, PRIMARY KEY (userid, id))",
       LEDGER_DDL]


def setup_module():
    global ZK
    ZK = cluster.ZooKeeper()
    S.update(cluster.move_masters(("s0", "s1", "s2"), DDL))


def teardown_module():
    for db in S.values():
        db.stop()
    ZK.stop()


def argv(root, *args):
    return [cluster.shardctl_path(), "--zk", ZK.hosts, "--root", root, "--timeout", "5"] + \
        list(args)


ENV = dict(os.environ, SHARDWIRE_CONTROL_USER=cluster.CONTROL_USER,
           SHARDWIRE_CONTROL_PASSWORD=cluster.CONTROL_PASSWORD)


def ctl(root, *args, check=True, timeout=180):
    r = subprocess.run(argv(root, *args), capture_output=True, text=True, timeout=timeout,
                       env=ENV)
    if check:
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r


def new_cluster(shards=("s0", "s1")):
    """A fresh root: <shards> own the vbuckets evenly, the others none."""
    ROOT_N[0] += 1
    root = "/rebal%d" % ROOT_N[0]
    spec = []
    for s in shards:
        spec += ["--shard", "%s=%s" % (s, cluster.addr(S[s]))]
    ctl(root, "init", "--acl", "open", "--vbuckets", str(VB), *spec)
    for s in S:
        if s not in shards:
            ctl(root, "add-shard", s, cluster.addr(S[s]))
    for db in S.values():
        db.sql("DELETE FROM accounts")
        db.sql("DELETE FROM ledger")
    return root


def owners(root):
    """{vbucket: shard} from dump-map, and whether any is frozen."""
    out, frozen = {}, False
    for line in ctl(root, "dump-map").stdout.splitlines():
        if line.startswith("vb "):
            f = line.split()
            lo, _, hi = f[1].partition("-")
            for vb in range(int(lo), int(hi or lo) + 1):
                out[vb] = f[2]
            frozen |= len(f) > 3
    return out, frozen


def vbucket_of(userids, root):
    path = os.path.join(cluster.tmp_root(), "rb-%s.map" % root.strip("/"))
    with open(path, "w") as f:
        f.write(ctl(root, "dump-map").stdout)
    res = cluster.explain(["SELECT * FROM accounts WHERE userid = %d" % u for u in userids], path)
    return {u: r["vbucket"] for u, r in zip(userids, res)}


def fill(root, users):
    """Three accounts rows per user on its owner; returns {userid: vbucket}."""
    vbs = vbucket_of(list(users), root)
    own, _ = owners(root)
    for name, db in S.items():
        mine = [u for u, vb in vbs.items() if own[vb] == name]
        if not mine:
            continue
        conn = db.connect()
        try:
            with conn.cursor() as c:
                c.executemany("INSERT INTO accounts VALUES (%s, %s, %s, %s)",
                              [(u, i, "n\u00e9-%d-%d" % (u, i), bytes([0, 255, u % 256, i]))
                               for u in mine for i in range(3)])
        finally:
            conn.close()
    return vbs


def accounts(vbs):
    """{shard: sorted accounts rows} of the filled users."""
    return {n: sorted(r for r in db.sql("SELECT * FROM accounts") if r[0] in vbs)
            for n, db in S.items()}


def router(root, name, admin=None):
    cfg = {"zookeeper": ZK.hosts, "zk_root": root, "router_id": name,
           "map_cache": os.path.join(cluster.tmp_root(), "%s-%s.map" % (root.strip("/"), name)),
           "pool_wait_timeout_ms": 3000, "move_hold_ms": 5000}
    if admin:
        cfg["admin_listen"] = "127.0.0.1:%d" % cluster.free_port()
    return cluster.Router(cfg)


class Load:
    """Ledger writers through two routers (registered in ZooKeeper)."""

    def __init__(self, root, users, admin=False):
        self.root = root
        self.routers = [router(root, "ra", admin), router(root, "rb", admin)]
        cluster.wait_for(lambda: len(json.loads(ctl(root, "--json", "routers").stdout)
                                     ["routers"]) == 2, 20, "both routers registered")
        self.vbs = vbucket_of(users, root)
        self.writers = [Writer(i, self.routers[i % 2], userid_base=users[0], users=len(users),
                               pause=0.003) for i in range(1, 5)]
        for w in self.writers:
            w.start()

    def stop(self):
        for w in self.writers:
            w.stop.set()
        for w in self.writers:
            w.join(timeout=30)
        for rt in self.routers:
            rt.stop()

    def check(self, min_acked=100):
        """Every acknowledged ledger row exactly once, on the shard the map names."""
        own, frozen = owners(self.root)
        assert not frozen
        where = {}
        for name, db in S.items():
            for (u, i) in db.sql("SELECT userid, id FROM ledger"):
                assert (u, i) not in where, ("duplicate", (u, i), where[(u, i)], name)
                where[(u, i)] = name
        acked = sum(len(w.acked) for w in self.writers)
        assert acked >= min_acked, acked
        assert lost_keys(self.writers, set(where)) == []
        wrong = [(k, n) for k, n in where.items() if own[self.vbs[k[0]]] != n]
        assert wrong == [], wrong[:5]
        assert ledger_errors(self.writers) == {}, ledger_errors(self.writers)
        return acked


def check_accounts(root, vbs, before):
    """Each filled row exactly once, on its vbucket's owner now, unchanged."""
    own, _ = owners(root)
    after = accounts(vbs)
    want = {n: sorted(r for rows in before.values() for r in rows if own[vbs[r[0]]] == n)
            for n in S}
    for n in S:
        assert after[n] == want[n], (n, len(after[n]), len(want[n]))


def ctl_on_tty(root, *args, timeout=180):
    """Runs shardctl with its output on a terminal: (exit code, output)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv(root, *args), stdout=slave, stderr=slave, env=ENV)
    os.close(slave)
    out, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:         # EIO: the child closed the terminal
                    break
                if not data:
                    break
                out.append(data.decode(errors="replace"))
            elif p.poll() is not None:
                break
        return p.wait(timeout=30), "".join(out)
    finally:
        os.close(master)


def counts(root):
    own, _ = owners(root)
    out = {}
    for s in own.values():
        out[s] = out.get(s, 0) + 1
    return out


def test_bad_requests_change_nothing():
    root = new_cluster()
    vbs = fill(root, range(1, 120))
    before_map = ctl(root, "dump-map").stdout
    cases = [
        (["remove-shard", "s9", "--database", "app"], 4, "unknown shard 's9'"),
        (["remove-shard", "--database", "app"], 1, "usage: remove-shard SHARD"),
        (["rebalance"], 1, "needs --database"),
        (["rebalance", "--database", "app", "--parallel", "0"], 1, "--parallel '0'"),
        (["rebalance", "--database", "app", "--weight", "fame"], 1, "--weight 'fame'"),
        (["move", "3", "--to", "s0", "--database", "app"], 4, "already belong to shard 's0'"),
        (["move", "3", "--to", "s7", "--database", "app"], 4, "unknown shard 's7'"),
    ]
    for args, code, text in cases:
        r = ctl(root, *args, check=False)
        assert r.returncode == code and text in r.stderr, (args, r.returncode, r.stderr)
    # the last shard cannot go
    one = "/rebal-one%d" % ROOT_N[0]
    ctl(one, "init", "--acl", "open", "--vbuckets", "4", "--shard", "s0=" + cluster.addr(S["s0"]))
    r = ctl(one, "remove-shard", "s0", "--database", "app", check=False)
    assert r.returncode == 4 and "is the last shard" in r.stderr, r.stderr
    # a dry run prints the plan and writes nothing
    r = ctl(root, "rebalance", "--database", "app", "--dry-run", "--weight", "vbuckets")
    assert "2 moves" in r.stdout and "s0 -> s2" in r.stdout and "s1 -> s2" in r.stdout, r.stdout
    plan = json.loads(ctl(root, "--json", "rebalance", "--dry-run").stdout)
    assert plan["event"] == "plan" and plan["weight"] == "vbuckets", plan
    assert sorted(s["after"] for s in plan["shards"]) == [5, 5, 6], plan
    # weighed by the rows each master stores (vbucket and row counts blended)
    plan = json.loads(ctl(root, "--json", "rebalance", "--dry-run", "--weight", "stored",
                          "--database", "app").stdout)
    assert plan["weight"] == "stored" and sum(s["after"] for s in plan["shards"]) == VB, plan
    assert "s2" in {m["to"] for m in plan["moves"]}, plan
    assert all(s["after"] > 0 for s in plan["shards"]), plan
    # a vbucket already moving: a second move and a remove-shard of its
    # source are refused before anything changes. The slow move writes to a
    # terminal: its copy shows a progress bar redrawn in place.
    master, slave = pty.openpty()
    slow = subprocess.Popen(argv(root, "move", "3", "--to", "s2", "--database", "app",
                                 "--rate", "2"), stdout=slave, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    os.close(slave)
    screen = []

    def bar():
        while select.select([master], [], [], 0)[0]:
            screen.append(os.read(master, 4096).decode(errors="replace"))
        return "] " in "".join(screen) and "rows/s" in "".join(screen)
    try:
        cluster.wait_for(lambda: "copy" in ctl(root, "moves").stdout, 30, "the slow move started")
        cluster.wait_for(bar, 30, "a progress bar")
        text = "".join(screen)
        assert "\r" in text and "copy [" in text and "%" in text, text
        assert "eta " in text, text
        for args, text in [(["move", "2-3", "--to", "s1", "--database", "app"],
                            "vbucket 3 is already moving"),
                           (["remove-shard", "s0", "--database", "app"],
                            "is in progress on shard 's0'")]:
            r = ctl(root, *args, check=False)
            assert r.returncode == 4 and text in r.stderr and "nothing was changed" in r.stderr, \
                (args, r.stderr)
        assert len(json.loads(ctl(root, "--json", "moves").stdout)["moves"]) == 1
    finally:
        slow.kill()
        slow.wait()
        os.close(master)
    mid = json.loads(ctl(root, "--json", "moves").stdout)["moves"][0]
    ctl(root, "move", "--abort", mid["id"])
    assert ctl(root, "dump-map").stdout == before_map
    before = accounts(vbs)
    assert before["s2"] == []


def test_failed_moves_stop_the_plan_until_abandoned():
    """A destination without a table: every move of the plan is refused
    before it writes anything; the plan stays unfinished (another plan is
    refused) until run again or abandoned."""
    root = new_cluster()
    before_map = ctl(root, "dump-map").stdout
    S["s2"].sql("RENAME TABLE accounts TO accounts_away")
    try:
        r = ctl(root, "rebalance", "--database", "app", "--weight", "vbuckets", check=False)
        assert r.returncode == 4, (r.stdout, r.stderr)
        assert "has no table app.accounts" in r.stderr and "rebalance stopped" in r.stderr, \
            r.stderr
        out = ctl(root, "moves").stdout
        assert out.startswith("unfinished plan: rebalance, 2 moves: 0 done, 0 unfinished, 2 "
                              "not started") and "no moves" in out, out
        plan = json.loads(ctl(root, "--json", "moves").stdout)["plan"]
        assert plan == {"kind": "rebalance", "shard": "", "moves": 2, "done": 0,
                        "unfinished": 0, "pending": 2, "stale": 0}, plan
        r = ctl(root, "remove-shard", "s1", "--database", "app", check=False)
        assert r.returncode == 4 and "an unfinished rebalance plan" in r.stderr, r.stderr
        r = ctl(root, "rebalance", "--dry-run")
        assert "resuming the plan" in r.stdout and "2 moves" in r.stdout, r.stdout
        r = ctl(root, "rebalance", "--abandon")
        assert "plan abandoned: 0 of its 2 moves were done" in r.stdout, r.stdout
        r = ctl(root, "rebalance", "--abandon")
        assert "no unfinished plan" in r.stdout, r.stdout
        assert "plan" not in json.loads(ctl(root, "--json", "moves").stdout)
    finally:
        S["s2"].sql("RENAME TABLE accounts_away TO accounts")
    assert ctl(root, "dump-map").stdout == before_map
    # a new plan is made now
    r = ctl(root, "rebalance", "--dry-run", "--weight", "vbuckets")
    assert "a new plan" in r.stdout, r.stdout


def test_overlapping_moves_started_together_one_goes_on():
    """Both pass the overlap check (held between it and the journal's
    creation); the journal numbered lower wins, the other refuses, nothing of
    it changed."""
    root = new_cluster()
    vbs = fill(root, range(1, 120))
    before = accounts(vbs)
    env = dict(ENV, SHARDCTL_TEST_PAUSE_MS="1500")
    ps = [subprocess.Popen(argv(root, "move", v, "--to", "s2", "--database", "app"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
          for v in ("3-4", "4-5")]
    outs = [p.communicate(timeout=120) for p in ps]
    codes = sorted(p.returncode for p in ps)
    assert codes == [0, 4], outs
    loser = outs[[p.returncode for p in ps].index(4)]
    assert "already moving" in loser[1] and "started just before this one" in loser[1] and \
        "nothing was changed" in loser[1], loser
    ms = json.loads(ctl(root, "--json", "moves").stdout)["moves"]
    assert sorted(m["phase"] for m in ms) == ["aborted", "done"], ms
    won = [m for m in ms if m["phase"] == "done"][0]
    lost_move = [m for m in ms if m["phase"] == "aborted"][0]
    assert won["id"] < lost_move["id"] and "started first" in lost_move["error"], ms
    moved = {int(x) for x in won["vbuckets"].split("-")}
    moved = set(range(min(moved), max(moved) + 1))
    own, frozen = owners(root)
    assert not frozen and {v for v in range(VB) if own[v] == "s2"} == moved, own
    check_accounts(root, vbs, before)


def test_two_moves_at_once_under_load():
    root = new_cluster()
    vbs = fill(root, range(1, 200))
    before = accounts(vbs)
    load = Load(root, list(range(1000, 1060)))
    try:
        time.sleep(0.5)
        a = subprocess.Popen(argv(root, "move", "0-2", "--to", "s2", "--database", "app"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        b = subprocess.Popen(argv(root, "move", "13-15", "--to", "s2", "--database", "app"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        outs = [p.communicate(timeout=180) for p in (a, b)]
        time.sleep(0.5)
    finally:
        load.stop()
    assert a.returncode == 0 and b.returncode == 0, outs
    own, _ = owners(root)
    assert [v for v in range(VB) if own[v] == "s2"] == [0, 1, 2, 13, 14, 15], own
    ms = json.loads(ctl(root, "--json", "moves").stdout)["moves"]
    assert sorted((m["vbuckets"], m["phase"]) for m in ms) == [("0-2", "done"),
                                                               ("13-15", "done")], ms
    # they overlapped in time: each started before the other was done
    assert ms[0]["started_ms"] < ms[1]["updated_ms"] and ms[1]["started_ms"] < ms[0]["updated_ms"]
    load.check()
    check_accounts(root, vbs, before)


def test_rebalance_two_to_three_under_load_killed_and_resumed():
    root = new_cluster()
    vbs = fill(root, range(1, 400))
    before = accounts(vbs)
    load = Load(root, list(range(2000, 2060)), admin=True)
    try:
        time.sleep(1.0)
        # measured load: the routers' /status weighs the plan
        plan = json.loads(ctl(root, "--json", "rebalance", "--dry-run").stdout)
        assert plan["weight"] == "bytes", plan
        assert sum(s["after"] for s in plan["shards"]) == VB
        assert ctl(root, "moves").stdout.startswith("no moves")
        # throttled so the kill lands in the copy
        p = subprocess.Popen(argv(root, "--json", "rebalance", "--database", "app", "--weight",
                                  "vbuckets", "--parallel", "2", "--rate", "40"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        events = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            events.append(json.loads(line))
            if events[-1]["event"] == "rows" and events[-1]["rows"] > 0:
                break
        p.kill()
        p.wait()
        assert events[0]["event"] == "plan" and len(events[0]["moves"]) == 2, events[:2]
        assert [m["vbuckets"] for m in events[0]["moves"]] == ["5-7", "14-15"], events[0]
        rows_ev = [e for e in events if e["event"] == "rows"]
        assert rows_ev and {"phase", "rows", "rate", "eta_s", "move"} <= set(rows_ev[0]), events
        # its moves died with it (SIGTERM on the parent's death), mid-copy
        def stopped():
            ms = json.loads(ctl(root, "--json", "moves").stdout)["moves"]
            return ms and all(m["phase"] == "copy" for m in ms) and ms
        cluster.wait_for(stopped, 10, "moves left in copy")
        copied = S["s2"].sql("SELECT COUNT(*) FROM accounts")[0][0]
        time.sleep(1.0)
        assert S["s2"].sql("SELECT COUNT(*) FROM accounts")[0][0] == copied, "a move still runs"
        assert owners(root)[0] == {v: ("s0" if v < 8 else "s1") for v in range(VB)}
        # run again: the same plan continues (no new plan on top)
        r = ctl(root, "rebalance", "--database", "app", "--parallel", "2")
        assert "resuming the plan" in r.stdout and "done: 2 moves" in r.stdout, r.stdout
        assert "resuming at phase copy" in r.stdout, r.stdout
        time.sleep(0.5)
    finally:
        load.stop()
    assert counts(root) == {"s0": 5, "s1": 6, "s2": 5}, counts(root)
    ms = json.loads(ctl(root, "--json", "moves").stdout)["moves"]
    assert sorted(m["phase"] for m in ms) == ["done", "done"], ms
    acked = load.check()
    check_accounts(root, vbs, before)
    # balanced now: nothing to do
    r = ctl(root, "rebalance", "--database", "app", "--weight", "vbuckets")
    assert "nothing to do" in r.stdout, r.stdout
    print("    %d ledger rows acknowledged during the rebalance" % acked)


def test_remove_shard_under_load():
    root = new_cluster(("s0", "s1", "s2"))
    vbs = fill(root, range(1, 200))
    before = accounts(vbs)
    load = Load(root, list(range(3000, 3060)))
    try:
        time.sleep(0.5)
        # on a terminal: a status line redrawn in place between the steps
        code, out = ctl_on_tty(root, "remove-shard", "s1", "--database", "app", "--parallel",
                               "2")
        time.sleep(0.5)
    finally:
        load.stop()
    assert code == 0, out
    assert "remove-shard: shard s1 removed from the map" in out, out
    assert "\r0/2 moves done | " in out and "\x1b[K" in out, out
    st = json.loads(ctl(root, "--json", "status").stdout)
    assert sorted(s["name"] for s in st["shards"]) == ["s0", "s2"], st["shards"]
    assert counts(root) == {"s0": 8, "s2": 8}, counts(root)
    assert S["s1"].sql("SELECT COUNT(*) FROM accounts")[0][0] == 0
    assert S["s1"].sql("SELECT COUNT(*) FROM ledger")[0][0] == 0
    load.check()
    check_accounts(root, vbs, before)
    # gone: a second remove names it unknown
    r = ctl(root, "remove-shard", "s1", "--database", "app", check=False)
    assert r.returncode == 4 and "unknown shard 's1'" in r.stderr, r.stderr

"""
tests/e2e/long_move_faults.py - the slow faults of `shardctl move` (issue
13), run by `tests/run long` only, each with the write ledger of
test_move_faults.py:

  * a router killed (kill -9) during the cutover before it acknowledged the
    freeze: the mover waits until its registration is gone (ZooKeeper's
    session timeout, 10 s) and its lease (map_lease_ms) has run out since
    the freeze, then flips; clients of the other router see no error;
  * ZooKeeper down in the middle of a move: the move waits for it
    ("waiting for ZooKeeper") and finishes once it is back; traffic
    through the routers goes on meanwhile, without an error (within their
    lease, map_lease_ms: past it they refuse writes, by design); once in
    the copy, once while the vbuckets are frozen (the flip waits, writes to
    other vbuckets go on, those to the frozen ones are held);
  * a router cut off from ZooKeeper (a real partition, tests/e2e/netpart.py:
    not killed, it goes on serving) before it saw the freeze: the mover
    waits until its registration is gone and its lease has run out, then
    flips; the cut router refuses writes once its lease is out, and none it
    acknowledged is written after the flip; healed, it follows the new map;
  * the same router cut off just after it acknowledged the freeze: the flip
    goes on without it; it holds the moving vbuckets' statements (its map
    still freezes them), refuses writes once its lease is out, and follows
    the new map once healed.

The partition tests need a network namespace (CAP_SYS_ADMIN): the module
runs in one when one of them is selected, and is skipped, saying why, where
none can be made.
"""

import json
import re
import signal
import subprocess
import threading
import time

import cluster
import netpart
import test_move_faults as mf
from ledger import Writer

NET = None


def setup_module():
    global NET
    # (the runner sets SELECTED_TESTS before this runs)
    if not any("_cut_off_" in t for t in globals().get("SELECTED_TESTS", ["_cut_off_"])):
        mf.setup_module()
        return
    NET = netpart.Net()             # first: before anything starts
    with NET.host("zk") as h:       # ZooKeeper (and the masters: never cut)
        mf.setup_module()
        h.ports.append(mf.ZK.port)


def teardown_module():
    if NET:
        NET.heal()
    mf.teardown_module()


def stay_writers(st):
    """The ledger's writers go through all users in turn, so each soon
    waits on a frozen vbucket: two more, one through each router, write
    only a user that stays (on s0, on s1). Started and added to the
    ledger's."""
    vbs = st.vbuckets(list(range(2000, 2048)))
    users = (min(u for u, vb in vbs.items() if 4 <= vb < 8),
             min(u for u, vb in vbs.items() if vb >= 8))
    stay = [Writer(5 + i, st.routers[i], userid_base=u, users=1, pause=0.003)
            for i, u in enumerate(users)]
    for w in stay:
        w.start()
    st.writers += stay
    return stay


def stopped(p):
    """Whether process <p> is stopped (SIGSTOP: a SHARDWIRE_MOVE_PAUSE point)."""
    try:
        with open("/proc/%d/stat" % p.pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


class Lines(threading.Thread):
    """Reads a running mover's stdout: every line with the moment it came."""

    def __init__(self, p):
        super().__init__(daemon=True)
        self.p, self.lines = p, []
        self.start()

    def run(self):
        for line in self.p.stdout:
            self.lines.append((time.monotonic(), line))

    def when(self, text):
        """When the first line holding <text> came, or None."""
        return next((t for t, l in self.lines if text in l), None)

    def text(self):
        return "".join(l for _, l in self.lines)


def fill(st):
    """Rows of s0's users (vbuckets 0-7) on s0, so the copy lasts a while."""
    mine = [u for u, vb in st.vbuckets(list(range(2000, 2048))).items() if vb < 8]
    conn = mf.S["s0"].connect()
    with conn.cursor() as c:
        c.executemany("INSERT INTO ledger VALUES (%s, %s, 0)",
                      [(u, i) for u in mine for i in range(20)])
    conn.close()


def test_router_killed_in_cutover_is_waited_out():
    st = mf.Setup(routers=False)
    for name in ("ra", "rb"):
        st.routers.append(cluster.Router({
            "zookeeper": mf.ZK.hosts, "zk_root": st.root, "router_id": name,
            "map_lease_ms": 3000, "pool_wait_timeout_ms": 3000, "move_hold_ms": 30000}))
    try:
        cluster.wait_for(lambda: len(json.loads(mf.ctl(st.root, "--json", "routers").stdout)
                                     ["routers"]) == 2, 20, "both routers registered")
        st.writers = [Writer(i, st.routers[0], userid_base=2000, users=48, pause=0.003)
                      for i in range(1, 4)]
        for w in st.writers:
            w.start()
        cluster.wait_for(lambda: all(len(w.acked) >= 10 for w in st.writers), 30, "writes")
        st.routers[1].kill(mf.signal.SIGSTOP)     # it cannot acknowledge any more
        p = subprocess.Popen(mf.argv(st.root, *mf.MOVE[:-1], "60"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=mf.env())
        cluster.wait_for(lambda: "frozen" in mf.ctl(st.root, "dump-map").stdout, 60,
                         "the freeze")
        st.routers[1].kill()
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, (out, err)
        m = re.search(r"frozen (\d+) ms", out)
        assert m and int(m.group(1)) >= 3000, out      # at least its lease
        assert [r["id"] for r in json.loads(mf.ctl(st.root, "--json", "routers").stdout)
                ["routers"]] == ["ra"]
        errs = st.check_ledger()
        assert errs == {}, errs
    finally:
        st.writers and [w.stop.set() for w in st.writers]
        st.routers[0].stop()


def test_zookeeper_down_mid_move_waits():
    # writes go on while the routers' lease lasts (ZooKeeper's restart
    # alone can take 10 s on a loaded machine; the default lease is 15 s)
    st = mf.Setup(router_config={"map_lease_ms": 120000})
    try:
        fill(st)
        st.start_writers()
        p = subprocess.Popen(mf.argv(st.root, *mf.MOVE, "--rate", "40"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=mf.env())
        cluster.wait_for(lambda: mf.S["s2"].sql("SELECT COUNT(*) FROM ledger")[0][0] > 0, 30,
                         "the copy started")
        mf.ZK.stop()
        acked = sum(len(w.acked) for w in st.writers)
        time.sleep(6)
        assert p.poll() is None
        assert sum(len(w.acked) for w in st.writers) > acked + 50   # traffic goes on
        mf.ZK.start()
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, (out, err)
        assert "waiting for ZooKeeper" in out and "done:" in out, out
        errs = st.check_ledger()
        assert errs == {}, errs
    finally:
        st.stop()


def test_zookeeper_down_while_frozen_waits():
    """ZooKeeper stopped while the vbuckets are frozen and every router has
    acknowledged: the flip waits for it; writes to other vbuckets go on,
    those to the frozen ones are held (move_hold_ms) and go to the
    destination after the flip."""
    st = mf.Setup(router_config={"map_lease_ms": 120000, "move_hold_ms": 120000})
    p = None
    try:
        st.start_writers()
        stay = stay_writers(st)
        p = mf.paused_move(st.root, "frozen", *mf.MOVE)
        mf.ZK.stop()
        out = Lines(p)
        p.send_signal(signal.SIGCONT)
        cluster.wait_for(lambda: out.when("waiting for ZooKeeper") or p.poll() is not None, 60,
                         "the mover waiting for ZooKeeper")
        assert p.poll() is None, out.text()
        acked = [len(w.acked) for w in stay]
        cluster.wait_for(lambda: all(len(w.acked) > n + 20 for w, n in zip(stay, acked)), 30,
                         "writes to the vbuckets that do not move, on s0 and s1")
        assert p.poll() is None and not out.when("names s2"), out.text()
        mf.ZK.start()
        p.wait(180)
        out.join(10)
        assert p.returncode == 0 and "done:" in out.text(), (p.returncode, out.text(),
                                                            p.stderr.read())
        errs = st.check_ledger()
        # a write held longer than the client's read timeout (15 s, while
        # ZooKeeper restarts on a loaded machine) is the only error allowed:
        # never acknowledged, so never lost either
        assert {code for code, _ in errs} <= {2013}, errs
    finally:
        if p and p.poll() is None:
            p.kill()
        if not mf.ZK.alive():
            mf.ZK.start()
        st.stop()


def test_router_cut_off_from_zookeeper_in_cutover_is_waited_out():
    """Router rb is cut off from ZooKeeper (not from the masters, nor from
    its clients) before the freeze: it never sees it. The mover waits until
    rb's registration is gone (ZooKeeper's session timeout) and its lease
    (3 s) has run out since the freeze, then flips. rb refuses writes once
    its lease is out (error 1290), so none it acknowledged is written after
    the flip; nothing acknowledged is lost; healed, rb takes the new map and
    writes moved users to the destination."""
    router_cut_off("catchup")


def test_router_cut_off_from_zookeeper_after_acknowledging():
    """Router rb is cut off from ZooKeeper once it acknowledged the freeze
    (the mover stopped at "frozen"): the flip goes on without it; rb never
    sees the flip, so it holds the moving vbuckets' statements (never
    sending them to the source) and refuses writes once its lease is out;
    healed, it takes the new map."""
    router_cut_off("frozen")


def router_cut_off(point):
    lease_ms = 3000
    st = mf.Setup(routers=False)
    p = None
    try:
        for name in ("ra", "rb"):
            with NET.host(name) as h:
                r = cluster.Router({
                    "zookeeper": mf.ZK.hosts, "zk_root": st.root, "router_id": name,
                    "map_lease_ms": lease_ms, "pool_wait_timeout_ms": 3000,
                    "move_hold_ms": 60000})
                h.ports.append(r.port)
            st.routers.append(r)
        ra, rb = st.routers
        cluster.wait_for(lambda: len(json.loads(mf.ctl(st.root, "--json", "routers").stdout)
                                     ["routers"]) == 2, 20, "both routers registered")
        st.start_writers()          # writers 1 and 3 through rb, 2 and 4 through ra
        stay_writers(st)            # 5 through ra, 6 through rb
        p = mf.paused_move(st.root, point, *mf.MOVE[:-1], "90")
        NET.cut("rb", "zk")
        t_cut = time.monotonic()
        out = Lines(p)
        p.send_signal(signal.SIGCONT)

        def ended():
            # the cutover's own catch-up rounds stop at "catchup" again
            if stopped(p):
                p.send_signal(signal.SIGCONT)
            return p.poll() is not None
        cluster.wait_for(ended, 90, "the move", log=out.text)
        out.join(10)
        assert p.returncode == 0 and "done:" in out.text(), (out.text(), p.stderr.read())
        t_flip = out.when("names s2 for vbuckets")
        m = re.search(r"map version (\d+) names s2", out.text())
        if point == "catchup":
            # flipped only once rb's registration was gone (a session
            # timeout after the cut, 10 s) and with it, its lease
            assert t_flip - t_cut > 8, (t_flip - t_cut, out.text())
        print("cut to flip %.1f s; %s" % (t_flip - t_cut, re.search(r"\(frozen .*\)",
                                                                   out.text()).group(0)))
        rb_writers = [w for w in st.writers if w.router is rb]
        # rb refused writes once its lease ran out (within its lease of the
        # cut, plus slack; and before the flip when the flip waited for it)
        cluster.wait_for(lambda: time.monotonic() > t_cut + lease_ms / 1000.0 + 2, 30, "lease")
        acked = sum(len(w.acked) for w in rb_writers)
        last_rb = max(t for w in rb_writers for _, t in w.acked)
        assert last_rb < t_cut + lease_ms / 1000.0 + 2, last_rb - t_cut
        if point == "catchup":
            assert last_rb < t_flip
            assert [r["id"] for r in json.loads(mf.ctl(st.root, "--json", "routers").stdout)
                    ["routers"]] == ["ra"]
        assert NET.dropped() > 0
        assert any(code == 1290 for w in rb_writers for code, _ in w.errors), \
            [w.errors for w in rb_writers]
        assert sum(len(w.acked) for w in rb_writers) == acked     # none since
        # healed: rb takes the new map (and its lease back) and writes a
        # moved user to the destination
        NET.heal()

        def rb_on_new_map():
            for r in json.loads(mf.ctl(st.root, "--json", "routers").stdout)["routers"]:
                if r["id"] == "rb" and int(r.get("map_version", 0)) >= int(m.group(1)):
                    return True
            return False
        cluster.wait_for(rb_on_new_map, 60, "rb registered again on the new map")
        moved = next(u for u, vb in st.vbuckets(list(range(5000, 5100))).items() if vb < 4)

        def write_through_rb():
            conn = rb.connect()
            try:
                with conn.cursor() as c:
                    c.execute("REPLACE INTO ledger (userid, id, writer) VALUES (%s, 1, 99)",
                              (moved,))
            finally:
                conn.close()
            return True
        cluster.wait_for(write_through_rb, 30, "a write through rb after healing")
        assert mf.S["s2"].sql("SELECT COUNT(*) FROM ledger WHERE userid = %s",
                              (moved,))[0][0] == 1
        assert mf.S["s0"].sql("SELECT COUNT(*) FROM ledger WHERE userid = %s",
                              (moved,))[0][0] == 0
        errs = st.check_ledger()
        assert all(code in (1290, 2013, 2003, 1205) for code, _ in errs), errs
        assert not any(w.errors for w in st.writers if w.router is ra), \
            [w.errors for w in st.writers if w.router is ra]
    finally:
        NET.heal()
        if p and p.poll() is None:
            p.kill()
        st.stop()

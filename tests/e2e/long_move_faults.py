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
    lease, map_lease_ms: past it they refuse writes, by design).
"""

import json
import re
import subprocess
import time

import cluster
import test_move_faults as mf
from ledger import Writer


def setup_module():
    mf.setup_module()


def teardown_module():
    mf.teardown_module()


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

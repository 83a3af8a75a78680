"""
tests/e2e/long_rebalance.py - a bigger rebalance, run by `tests/run long`
only (runner.py with SW_E2E_LONG=1): 1024 vbuckets and 120,000 rows on two
shards grown to three with `shardctl rebalance --parallel 2`, then the first
shard drained with `shardctl remove-shard`, both under a write ledger
through two routers. Checked as in test_rebalance (every row once, on its
owner, unchanged; every acknowledged ledger row once, none lost, no client
error); the times are printed.
"""

import json
import time

import test_rebalance as tr

USERS = range(1, 60001)      # two accounts rows each


def setup_module():
    tr.setup_module()
    tr.VB = 1024


def teardown_module():
    tr.teardown_module()


def vbuckets_of(root, users):
    out = {}
    users = list(users)
    for i in range(0, len(users), 5000):
        out.update(tr.vbucket_of(users[i:i + 5000], root))
    return out


def fill(root, vbs):
    own, _ = tr.owners(root)
    for name, db in tr.S.items():
        mine = [u for u, vb in vbs.items() if own[vb] == name]
        conn = db.connect()
        try:
            with conn.cursor() as c:
                for i in range(0, len(mine), 2000):
                    c.executemany("INSERT INTO accounts VALUES (%s, %s, %s, %s)",
                                  [(u, k, "user %d row %d" % (u, k), bytes([u % 256, k]))
                                   for u in mine[i:i + 2000] for k in range(2)])
            conn.commit()
        finally:
            conn.close()


def test_grow_two_to_three_then_remove_a_shard_under_load():
    root = tr.new_cluster()
    vbs = vbuckets_of(root, USERS)
    fill(root, vbs)
    before = tr.accounts(vbs)
    assert sum(len(r) for r in before.values()) == 2 * len(USERS)
    load = tr.Load(root, list(range(100000, 100100)))
    try:
        time.sleep(1.0)
        t0 = time.monotonic()
        r = tr.ctl(root, "rebalance", "--database", "app", "--weight", "vbuckets",
                   "--parallel", "2", timeout=1800)
        grow_s = time.monotonic() - t0
        assert "done: 2 moves" in r.stdout, r.stdout
        assert tr.counts(root) == {"s0": 341, "s1": 342, "s2": 341}, tr.counts(root)
        t0 = time.monotonic()
        r = tr.ctl(root, "remove-shard", "s0", "--database", "app", "--parallel", "2",
                   timeout=1800)
        remove_s = time.monotonic() - t0
        assert "shard s0 removed from the map" in r.stdout, r.stdout
        time.sleep(1.0)
    finally:
        load.stop()
    assert tr.counts(root) == {"s1": 512, "s2": 512}, tr.counts(root)
    assert tr.S["s0"].sql("SELECT COUNT(*) FROM accounts")[0][0] == 0
    acked = load.check(min_acked=1000)
    tr.check_accounts(root, vbs, before)
    ms = json.loads(tr.ctl(root, "--json", "moves").stdout)["moves"]
    cut = [l for l in r.stdout.splitlines() if "cutover: map version" in l]
    print("    2 -> 3 shards, %d rows: %.1f s; remove-shard: %.1f s; %d moves; %d ledger rows "
          "acknowledged meanwhile, 0 lost" % (2 * len(USERS), grow_s, remove_s, len(ms), acked))
    print("\n".join("    " + l for l in cut))

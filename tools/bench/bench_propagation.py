#!/usr/bin/python3
"""
tools/bench/bench_propagation.py - how fast a map change reaches routers.

Starts a real ZooKeeper, three MariaDB servers (s0's master flips between A
and B; s1 is C) and N routers on the ZooKeeper map. For each of K changes:
`shardctl set-master s0 <other>`; the clock starts when shardctl returns
and stops, per router, when a statement for a user of s0 sent through that
router is served by the new master (@@server_id inside one pinned
transaction). Reports p50, p90 and max over all (change, router) pairs.

    /usr/bin/python3 tools/bench/bench_propagation.py [--changes 100] [--routers 2]

A benchmark, not a test: it prints numbers and asserts nothing about time.
Target (issue 5): p50 under 50 ms on the 2-core CI machine.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "e2e"))
import cluster  # noqa: E402


def server_id_via(conn, userid):
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute("SELECT COUNT(*) FROM accounts WHERE userid = %d" % userid)
        cur.fetchall()
        cur.execute("SELECT @@server_id")
        sid = cur.fetchone()[0]
        cur.execute("ROLLBACK")
        return sid


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--routers", type=int, default=2)
    args = ap.parse_args()

    zk = cluster.ZooKeeper()
    dbs = {n: cluster.MariaDB(n) for n in ("a", "b", "c")}
    for db in dbs.values():
        db.sql("CREATE TABLE accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL, "
               "PRIMARY KEY (userid, id))")
    ctl = [cluster.shardctl_path(), "--zk", zk.hosts]
    subprocess.run(ctl + ["init", "--shard", "s0=127.0.0.1:%d" % dbs["a"].port,
                          "--shard", "s1=127.0.0.1:%d" % dbs["c"].port],
                   check=True, capture_output=True)
    routers = [cluster.Router({"zookeeper": zk.hosts, "router_id": "bench%d" % i,
                               "log_level": "warn"}) for i in range(args.routers)]
    out = subprocess.run(ctl + ["--json", "explain"] +
                         ["SELECT 1 FROM accounts WHERE userid = %d" % u for u in range(1, 50)],
                         check=True, capture_output=True, text=True).stdout.splitlines()
    user = next(u for u, line in zip(range(1, 50), out) if json.loads(line)["shard"] == "s0")
    conns = [r.connect() for r in routers]
    samples = []
    current = "a"
    try:
        for _ in range(args.changes):
            target = "b" if current == "a" else "a"
            want = dbs[target].server_id
            subprocess.run(ctl + ["set-master", "s0", "127.0.0.1:%d" % dbs[target].port],
                           check=True, capture_output=True)
            t0 = time.monotonic()
            took = [None] * len(conns)

            def poll(i):
                deadline = t0 + 10
                while time.monotonic() < deadline:
                    if server_id_via(conns[i], user) == want:
                        took[i] = time.monotonic() - t0
                        return
            threads = [threading.Thread(target=poll, args=(i,)) for i in range(len(conns))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if None in took:
                print("a router did not follow within 10 s", file=sys.stderr)
                return 1
            samples += took
            current = target
    finally:
        for c in conns:
            c.close()
        for r in routers:
            r.stop(check=False)
        for db in dbs.values():
            db.stop()
        zk.stop()
    samples.sort()
    ms = [s * 1000 for s in samples]
    print("propagation set-master -> router serving new master: %d samples "
          "(%d changes x %d routers)" % (len(ms), args.changes, args.routers))
    print("  p50 %.1f ms  p90 %.1f ms  max %.1f ms  (includes one poll round trip, "
          "~4 statements)" % (ms[len(ms) // 2], ms[int(len(ms) * 0.9)], ms[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

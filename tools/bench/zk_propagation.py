#!/usr/bin/python3
"""
tools/bench/zk_propagation.py - how fast a `shardctl set-master` reaches
every router (issue 5, item 7). A benchmark, not a test: it prints numbers
and judges nothing but the target it states.

  /usr/bin/python3 tools/bench/zk_propagation.py [--changes 100] [--routers 2]

Starts a standalone ZooKeeper, three MariaDB servers (s0, s1, and "spare")
and N routers on the ZooKeeper map (the e2e harness, tests/e2e/cluster.py;
binaries from $SW_BUILD_DIR, default build-test/). Then, <changes> times,
flips shard s0's master between s0 and spare with `shardctl set-master` and,
from the moment that command returns, polls every router with a routed query
(`SELECT @@server_id FROM accounts WHERE userid = U`) on a new client
connection each time, until each answers from the new master. Propagation
of one change = when the last router answered from the new master. Reports
p50, p90 and max, per router and overall. Target: p50 under 50 ms.

New connections, because that measures the map swap itself: a client
session that stays open may keep using the backend connection it already
has (router behaviour, not map propagation). Each probe therefore includes
a client connect to the router (about a millisecond here).

A negative or zero time is possible and real: a router's watch may fire
before the writer's own reply arrives.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import cluster  # noqa: E402

SCHEMA = ("CREATE TABLE accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL, "
          "PRIMARY KEY (userid, id))")
POLL_DEADLINE_S = 10.0


def ctl(zk, *args):
    argv = [cluster.shardctl_path(), "--zk", zk.hosts, "--timeout", "5"] + list(args)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        sys.exit("shardctl %s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout


def user_on(zk, shard):
    import json
    users = list(range(1, 200))
    out = ctl(zk, "--json", "explain",
              *["SELECT 1 FROM accounts WHERE userid = %d" % u for u in users])
    for u, line in zip(users, out.splitlines()):
        if json.loads(line).get("shard") == shard:
            return u
    sys.exit("no userid on shard %s among 1..199" % shard)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def fmt(xs):
    return "p50 %6.1f ms  p90 %6.1f ms  max %6.1f ms  (n=%d)" % (
        pct(xs, 50), pct(xs, 90), max(xs), len(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--routers", type=int, default=2)
    args = ap.parse_args()

    zk = cluster.ZooKeeper()
    dbs = {}
    for name in ("s0", "s1", "spare"):
        dbs[name] = cluster.MariaDB(name)
        dbs[name].sql(SCHEMA)
    ctl(zk, "init", "--acl", "open", "--shard", "s0=127.0.0.1:%d" % dbs["s0"].port,
        "--shard", "s1=127.0.0.1:%d" % dbs["s1"].port)
    u = user_on(zk, "s0")
    # the user's row on both candidate masters, so the probe returns a row
    for name in ("s0", "spare"):
        dbs[name].sql("INSERT INTO accounts (userid, id) VALUES (%d, 1)" % u)

    routers = []
    for i in range(args.routers):
        routers.append(cluster.Router({
            "zookeeper": zk.hosts, "router_id": "bench%d" % i,
            "map_cache": os.path.join(cluster.tmp_root(), "bench%d.cache" % i)}))
    probe = "SELECT @@server_id FROM accounts WHERE userid = %d" % u

    def server_id(router):
        c = router.connect()
        try:
            with c.cursor() as cur:
                cur.execute(probe)
                return cur.fetchone()[0]
        finally:
            c.close()

    for r in routers:
        assert server_id(r) == dbs["s0"].server_id

    overall, per_router = [], [[] for _ in routers]
    current = "s0"
    for n in range(args.changes):
        target = "spare" if current == "s0" else "s0"
        want = dbs[target].server_id
        ctl(zk, "set-master", "s0", "127.0.0.1:%d" % dbs[target].port)
        t0 = time.monotonic()
        pending = set(range(len(routers)))
        deadline = t0 + POLL_DEADLINE_S
        while pending:
            for i in list(pending):
                if server_id(routers[i]) == want:
                    per_router[i].append((time.monotonic() - t0) * 1000.0)
                    pending.discard(i)
            if time.monotonic() > deadline:
                sys.exit("change %d: routers %s still on the old master after %.0f s" % (
                    n + 1, sorted(pending), POLL_DEADLINE_S))
        overall.append(max(per_router[i][-1] for i in range(len(routers))))
        current = target

    print("propagation of shardctl set-master to %d routers over %d changes "
          "(from the command returning to every router answering from the new master):"
          % (len(routers), args.changes))
    for i, xs in enumerate(per_router):
        print("  router bench%d: %s" % (i, fmt(xs)))
    print("  all routers:  %s" % fmt(overall))
    p50 = pct(overall, 50)
    print("target p50 < 50 ms: %s (%.1f ms)" % ("met" if p50 < 50 else "MISSED", p50))
    for r in routers:
        r.stop(check=False)
    for db in dbs.values():
        db.stop()
    zk.stop()


if __name__ == "__main__":
    main()

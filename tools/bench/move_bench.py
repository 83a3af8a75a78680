#!/usr/bin/python3
"""
tools/bench/move_bench.py - online vbucket moves, measured (issue 13, item
6). A benchmark, not a test: it prints numbers and judges them only against
the targets it states.

  /usr/bin/python3 tools/bench/move_bench.py [--rows 1000000] [--moves 4]
                                             [--samples 12] [--writers 4]

Starts ZooKeeper, three MariaDB masters s0, s1, s2 and two routers (the e2e
harness, tests/e2e/cluster.py; binaries from $SW_SHARDWIRE / $SW_SHARDCTL,
default build-test/). A map of 1024 vbuckets gives s0 and s1 half each;
s2 owns nothing. <rows> rows of `accounts` (10 per user, about 100 bytes
each) are loaded on their owners. Through both routers, writers insert
ledger rows: half of them for users of the vbuckets about to move, half for
users of vbuckets that never move; every statement's latency is recorded.

  1. growth: a third of the vbuckets go to s2 in <moves> `shardctl move`
     calls (half from s0, half from s1), one after the other, under the
     load: total time from two to three shards, each move's copy rate and
     frozen time (and its parts, from shardctl's cutover line);
  2. dump and load: `mysqldump | mysql` of the rows of the first move's
     vbuckets into a scratch database on s2, timed, for comparison with
     the move's copy rate;
  3. pause samples: <samples> more moves of one vbucket each (s2 to s0 and
     back), writers aimed at that vbucket's users.

Per-vbucket write pause: the longest latency of a write to a moving vbucket
in flight at any moment of its freeze (shardctl's frozen time, ending when
its flip line is printed): held from the freeze until the router releases
it after the flip; one sample per move (all vbuckets of one move freeze
together).
Other vbuckets: p50/p99/max latency of the writes to vbuckets that never
move, before the moves and during them. At the end every acknowledged
ledger row must be on the shard the map names, exactly once.

Targets: pause p50 under 100 ms, p99 under 250 ms; copy at least as fast as
the dump and load; 0 rows lost.
"""

import argparse
import ctypes
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import cluster  # noqa: E402
from ledger import LEDGER_DDL  # noqa: E402

import pymysql  # noqa: E402

N_VB = 1024
ACCOUNTS = ("CREATE TABLE accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL, "
            "name VARCHAR(60) NOT NULL, balance DECIMAL(12,2) NOT NULL, note VARBINARY(40), "
            "PRIMARY KEY (userid, id))")

_xxh = ctypes.CDLL("libxxhash.so.0")
_xxh.XXH3_64bits.restype = ctypes.c_uint64
_xxh.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def vbucket(userid):
    """The router's placement (shardmap/vbucket.c): XXH3 of the canonical key text."""
    b = str(userid).encode()
    return _xxh.XXH3_64bits(b, len(b)) % N_VB


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


class Load(threading.Thread):
    """Inserts ledger rows for users picked from a shared list through one
    router; records (start, latency, vbucket, ok) per statement."""

    def __init__(self, wid, router, users, lock):
        super().__init__(daemon=True)
        self.wid, self.router, self.users, self.lock = wid, router, users, lock
        self.samples, self.acked, self.errors = [], [], {}
        self.stop = threading.Event()

    def run(self):
        conn, n = None, 0
        while not self.stop.is_set():
            n += 1
            with self.lock:
                us = self.users[0]
            if not us:
                time.sleep(0.01)
                continue
            u = us[(n * 7919 + self.wid) % len(us)]
            key = (u, self.wid * 100000000 + n)
            t0 = time.monotonic()
            ok = False
            try:
                if conn is None:
                    conn = self.router.connect(connect_timeout=5, read_timeout=30,
                                               write_timeout=30)
                with conn.cursor() as c:
                    c.execute("INSERT INTO ledger (userid, id, writer) VALUES (%s, %s, %s)",
                              (key[0], key[1], self.wid))
                ok = True
                self.acked.append(key)
            except pymysql.err.MySQLError as e:
                what = (e.args[0], str(e.args[1] if len(e.args) > 1 else e)[:60])
                self.errors[what] = self.errors.get(what, 0) + 1
                try:
                    conn and conn.close()
                except Exception:
                    pass
                conn = None
                time.sleep(0.01)
            self.samples.append((t0, time.monotonic() - t0, vbucket(u), ok))
            time.sleep(0.002)
        if conn:
            conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--moves", type=int, default=4, help="moves for the growth (even)")
    ap.add_argument("--samples", type=int, default=12, help="single-vbucket moves")
    ap.add_argument("--writers", type=int, default=4, help="per group (moving, other)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    zk = cluster.ZooKeeper()
    dbs = {}
    for name in ("s0", "s1", "s2"):
        db = cluster.MariaDB(name)
        for stmt in (ACCOUNTS, LEDGER_DDL):
            db.sql(stmt)
        db.sql("GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO '%s'@'127.0.0.1'"
               % cluster.CONTROL_USER)
        db.sql("GRANT REPLICATION SLAVE ON *.* TO '%s'@'127.0.0.1'" % cluster.CONTROL_USER)
        dbs[name] = db
    root = "/bench"
    env = dict(os.environ, SHARDWIRE_CONTROL_USER=cluster.CONTROL_USER,
               SHARDWIRE_CONTROL_PASSWORD=cluster.CONTROL_PASSWORD)

    def ctl(*a, check=True):
        r = subprocess.run([cluster.shardctl_path(), "--zk", zk.hosts, "--root", root,
                            "--timeout", "10"] + list(a), capture_output=True, text=True,
                           timeout=3600, env=env)
        if check and r.returncode != 0:
            raise SystemExit("shardctl %s: rc=%d\n%s%s" % (a, r.returncode, r.stdout, r.stderr))
        return r

    ctl("init", "--acl", "open", "--vbuckets", str(N_VB), "--shard",
        "s0=" + cluster.addr(dbs["s0"]), "--shard", "s1=" + cluster.addr(dbs["s1"]))
    ctl("add-shard", "s2", cluster.addr(dbs["s2"]))

    def owners():
        return cluster.map_owners(ctl("dump-map").stdout)

    own = owners()
    # placement check against the router's own code, on a few users
    path = os.path.join(cluster.tmp_root(), "bench.map")
    with open(path, "w") as f:
        f.write(ctl("dump-map").stdout)
    probe = [1, 77, 123456]
    got = cluster.explain(["SELECT * FROM accounts WHERE userid = %d" % u for u in probe], path)
    assert [g["vbucket"] for g in got] == [vbucket(u) for u in probe], got

    # ---- rows: 10 per user, on the owner
    n_users = max(1, args.rows // 10)
    t0 = time.monotonic()
    by_shard = {"s0": [], "s1": []}
    users_of_vb = {}
    for u in range(1, n_users + 1):
        vb = vbucket(u)
        by_shard[own[vb]].append(u)
        users_of_vb.setdefault(vb, []).append(u)
    for name, us in by_shard.items():
        conn = dbs[name].connect()
        with conn.cursor() as c:
            c.execute("CREATE TABLE tmp_users (u BIGINT PRIMARY KEY)")
            for i in range(0, len(us), 5000):
                c.execute("INSERT INTO tmp_users VALUES " +
                          ",".join("(%d)" % u for u in us[i:i + 5000]))
            c.execute("INSERT INTO accounts SELECT u, seq, CONCAT('user-', u, '-', seq, "
                      "'-', REPEAT('x', 20)), u % 1000 + seq / 100, UNHEX(SHA1(u * 10 + seq)) "
                      "FROM tmp_users JOIN seq_1_to_10")
            c.execute("DROP TABLE tmp_users")
        conn.commit()
        conn.close()
    total_rows = sum(dbs[n].sql("SELECT COUNT(*) FROM accounts")[0][0] for n in ("s0", "s1"))
    print("loaded %d rows (%d users) in %.1f s" % (total_rows, n_users, time.monotonic() - t0))

    routers = [cluster.Router({"zookeeper": zk.hosts, "zk_root": root, "router_id": n,
                               "move_hold_ms": 10000, "pool_wait_timeout_ms": 10000})
               for n in ("ra", "rb")]
    cluster.wait_for(lambda: len(json.loads(ctl("--json", "routers").stdout)["routers"]) == 2,
                     30, "routers registered")

    # ---- the growth plan: a third of the vbuckets to s2, half from each
    want = N_VB // 3
    from_s0 = [vb for vb in range(N_VB) if own[vb] == "s0"][:want // 2]
    from_s1 = [vb for vb in range(N_VB) if own[vb] == "s1"][:want - want // 2]
    k = max(1, args.moves // 2)
    plan = []
    for src in (from_s0, from_s1):
        step = (len(src) + k - 1) // k
        plan += [src[i:i + step] for i in range(0, len(src), step)]
    moving_vbs = set(from_s0) | set(from_s1)
    other_vbs = [vb for vb in range(N_VB) if vb not in moving_vbs]
    moving_users = [u for vb in sorted(moving_vbs) for u in users_of_vb.get(vb, [])[:3]]
    other_users = [u for vb in other_vbs for u in users_of_vb.get(vb, [])[:3]]

    lock = threading.Lock()
    hot, cold = [moving_users], [other_users]
    loads = [Load(i + 1, routers[i % 2], hot, lock) for i in range(args.writers)] + \
            [Load(100 + i, routers[i % 2], cold, lock) for i in range(args.writers)]
    for w in loads:
        w.start()
    time.sleep(8)
    t_base_end = time.monotonic()

    def samples(group, t_from, t_to):
        ws = loads[:args.writers] if group == "hot" else loads[args.writers:]
        return [s for w in ws for s in w.samples if t_from <= s[0] < t_to]

    move_re = re.compile(r"copy: (\d+) rows in ([\d.]+) s")
    cut_re = re.compile(r"frozen (\d+) ms: freeze (\d+), routers (\d+), drain (\d+) \((\d+) rows\), "
                        r"check (\d+), flip (\d+)")
    moves = []

    check_failures = []

    def run_move(vbs, to, kind, retries=0):
        spec = ",".join(str(v) for v in vbs)
        t_a = time.monotonic()
        p = subprocess.Popen([cluster.shardctl_path(), "--zk", zk.hosts, "--root", root,
                              "--timeout", "10", "move", spec, "--to", to, "--database", "app",
                              "--router-wait", "30"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
        lines = []
        for line in p.stdout:      # timestamped as they come: the flip's line ends the freeze
            lines.append((time.monotonic(), line))
        err = p.stderr.read()
        if p.wait() == 5 and "check failed" in err and retries < 2:
            # the row check refused the flip (nothing changed): say so, rerun
            print("  move %s: %s" % (spec, err.strip().splitlines()[0]))
            check_failures.append(err.strip().splitlines()[0])
            return run_move(vbs, to, kind, retries + 1)
        if p.returncode != 0:
            raise SystemExit("shardctl move %s: rc=%d\n%s%s" % (spec, p.returncode,
                                                                  "".join(l for _, l in lines), err))
        t_b = time.monotonic()
        out = "".join(l for _, l in lines)
        m = move_re.search(out)
        c = cut_re.search(out)
        if not m or not c:
            raise SystemExit("unexpected shardctl output:\n" + out)
        t_flip = [t for t, l in lines if "rows equal on both sides" in l][0]
        t_freeze = t_flip - int(c.group(1)) / 1000.0
        vbset = set(vbs)
        # a write to a moving vbucket in flight at any moment of the freeze
        held = [s[1] for s in samples("hot", t_a, t_b)
                if s[2] in vbset and s[0] < t_flip and s[0] + s[1] > t_freeze]
        moves.append({"kind": kind, "vbuckets": len(vbs), "rows": int(m.group(1)),
                      "copy_s": float(m.group(2)), "total_s": t_b - t_a,
                      "frozen_ms": int(c.group(1)),
                      "parts_ms": dict(zip(("freeze", "routers", "drain", "drain_rows",
                                            "check", "flip"), map(int, c.groups()[1:]))),
                      "pause_ms": 1000 * max(held) if held else None,
                      "writes_held": len(held)})
        mv = moves[-1]
        print("  move %-6s %3d vbuckets to %s: %7d rows, copy %.1f s (%.0f rows/s), "
              "frozen %d ms %s, client pause %s ms, total %.1f s" % (
                  kind, len(vbs), to, mv["rows"], mv["copy_s"],
                  mv["rows"] / mv["copy_s"] if mv["copy_s"] else 0, mv["frozen_ms"],
                  mv["parts_ms"], "%.0f" % mv["pause_ms"] if mv["pause_ms"] else "-",
                  mv["total_s"]))
        return out

    # ---- mysqldump | mysql of the first move's rows (from their owner, under the
    # same load) into a scratch database on s2
    first = set(plan[0])
    first_users = [u for vb in first for u in users_of_vb.get(vb, [])]
    src = dbs[own[plan[0][0]]]
    dbs["s2"].sql("CREATE DATABASE dumpcmp", database=None)
    dbs["s2"].sql(ACCOUNTS.replace("TABLE accounts", "TABLE dumpcmp.accounts"), database=None)
    where = "userid IN (%s)" % ",".join(map(str, first_users))
    wfile = os.path.join(cluster.tmp_root(), "where.txt")
    with open(wfile, "w") as f:
        f.write(where)
    sh = ("set -o pipefail; mysqldump -S %s -uroot --single-transaction --no-create-info "
          "--skip-add-locks --where=\"$(cat %s)\" app accounts | mysql -S %s -uroot "
          "dumpcmp" % (src.socket, wfile, dbs["s2"].socket))
    t_d = time.monotonic()
    subprocess.run(["bash", "-c", sh], check=True, timeout=3600)
    dump_s = time.monotonic() - t_d
    dump_rows = dbs["s2"].sql("SELECT COUNT(*) FROM dumpcmp.accounts", database=None)[0][0]
    row_bytes = float(dbs["s2"].sql(
        "SELECT AVG(16 + LENGTH(name) + LENGTH(balance) + COALESCE(LENGTH(note), 0)) "
        "FROM dumpcmp.accounts", database=None)[0][0])
    dbs["s2"].sql("DROP DATABASE dumpcmp", database=None)

    print("growth: %d vbuckets to s2 in %d moves" % (len(moving_vbs), len(plan)))
    t_grow = time.monotonic()
    for vbs in plan:
        run_move(vbs, "s2", "growth")
    t_grown = time.monotonic()
    grow_s = t_grown - t_grow

    # ---- pause samples: one vbucket at a time, writers on its users
    print("pause samples: %d single-vbucket moves" % args.samples)
    t_samp = time.monotonic()
    pool = sorted(moving_vbs)
    for i in range(args.samples):
        vb = pool[(i * 37) % len(pool)]
        with lock:
            hot[0] = users_of_vb.get(vb, [])[:20]
        run_move([vb], "s0", "sample")
        run_move([vb], "s2", "sample")
    t_samp_end = time.monotonic()
    for w in loads:
        w.stop.set()
    for w in loads:
        w.join(60)
    for r in routers:
        r.stop()

    # ---- ledger: every acknowledged row once, on its owner
    own = owners()
    where_row = {}
    dup = 0
    for name, db in dbs.items():
        for (u, i) in db.sql("SELECT userid, id FROM ledger"):
            if (u, i) in where_row:
                dup += 1
            where_row[(u, i)] = name
    acked = [k for w in loads for k in w.acked]
    lost = [k for k in acked if k not in where_row]
    misplaced = [k for k in acked if k in where_row and where_row[k] != own[vbucket(k[0])]]
    errors = {}
    for w in loads:
        for k, v in w.errors.items():
            errors[k] = errors.get(k, 0) + v

    pauses = [m["pause_ms"] for m in moves if m["pause_ms"] is not None]
    frozen = [m["frozen_ms"] for m in moves]
    growth = [m for m in moves if m["kind"] == "growth"]
    copy_rows = sum(m["rows"] for m in growth)
    copy_s = sum(m["copy_s"] for m in growth)
    base = [s[1] * 1000 for s in samples("cold", 0, t_base_end) if s[3]]
    during = [s[1] * 1000 for s in samples("cold", t_grow, t_grown) if s[3]]
    out = {
        "rows": total_rows, "moves": len(moves), "growth_s": grow_s,
        "growth_moves": len(growth), "vbuckets_moved": len(moving_vbs),
        "pause_ms": {"p50": pct(pauses, 50), "p99": pct(pauses, 99), "max": max(pauses),
                     "n": len(pauses)},
        "frozen_ms": {"p50": pct(frozen, 50), "p99": pct(frozen, 99), "max": max(frozen)},
        "frozen_parts_ms_p50": {k: pct([m["parts_ms"][k] for m in moves], 50)
                                for k in moves[0]["parts_ms"]},
        "copy": {"rows": copy_rows, "s": copy_s, "rows_per_s": copy_rows / copy_s,
                 "mb_per_s": copy_rows * row_bytes / copy_s / 1e6},
        "dump_load": {"rows": dump_rows, "s": dump_s, "rows_per_s": dump_rows / dump_s,
                      "mb_per_s": dump_rows * row_bytes / dump_s / 1e6},
        "other_vbuckets_ms": {
            "before": {"p50": pct(base, 50), "p99": pct(base, 99), "max": max(base), "n": len(base)},
            "during": {"p50": pct(during, 50), "p99": pct(during, 99), "max": max(during),
                       "n": len(during)}},
        "ledger": {"acked": len(acked), "lost": len(lost), "duplicated": dup,
                   "misplaced": len(misplaced)},
        "client_errors": {"%s %s" % k: v for k, v in errors.items()},
        "check_failures": check_failures,
        "samples_s": t_samp_end - t_samp,
    }
    print(json.dumps(out, indent=2, default=str))
    print("\nper-vbucket write pause (client, %d moves): p50 %.0f ms, p99 %.0f ms, max %.0f ms "
          "(target p50 < 100, p99 < 250)" % (len(pauses), out["pause_ms"]["p50"],
                                             out["pause_ms"]["p99"], out["pause_ms"]["max"]))
    print("copy %.0f rows/s (%.1f MB/s) vs mysqldump | mysql %.0f rows/s (%.1f MB/s)" % (
        out["copy"]["rows_per_s"], out["copy"]["mb_per_s"], out["dump_load"]["rows_per_s"],
        out["dump_load"]["mb_per_s"]))
    print("two to three shards: %.1f s for %d rows; rows lost %d, duplicated %d, misplaced %d" % (
        grow_s, total_rows, len(lost), dup, len(misplaced)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2, default=str)
    for db in dbs.values():
        db.stop()
    zk.stop()
    return 0 if not lost and not dup and not misplaced else 1


if __name__ == "__main__":
    sys.exit(main())

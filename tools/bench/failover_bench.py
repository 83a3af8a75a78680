#!/usr/bin/python3
"""
tools/bench/failover_bench.py - automatic failover, measured over repeated
master kills (issue 10, item 12). A benchmark, not a test: it prints numbers
and judges them only against the targets it states.

  /usr/bin/python3 tools/bench/failover_bench.py [--kills 20] [--routers 3]
                                                [--switchovers 10]

Starts a standalone ZooKeeper, one shard of three servers (a lossless
semi-sync master and two GTID standbys) and N routers with auto_failover on
(the e2e harness, tests/e2e/cluster.py; binaries from $SW_BUILD_DIR, default
build-test/). Writers insert unique rows through every router and record
each acknowledged row. Then, <kills> times: kill -9 the shard's master and
measure
  detection  from the kill to the coordinator's "decision=failed" log line,
  writable   from the kill to its "writable: ... is the master" log line,
  first ack  from the kill to the first write acknowledged after the
             decision (only the new master can acknowledge one then),
then restart the dead server with --init-rpl-role=SLAVE and `shardctl rejoin`
it, so the shard has two standbys again. At the end every acknowledged row
must be on the last master: writes lost must be 0.

Then <switchovers> times `shardctl switchover s0` (to the first standby that
is caught up) under the same writers, measuring
  pause      the time the shard was paused in the map (shardctl's pause_ms),
  gap        the longest time no writer got an acknowledgement around it,
  errors     the writes that failed during it.

Targets on this machine: failover (first ack) p50 under 3 s; switchover
pause under 1 s with 0 client errors; 0 writes lost.
"""

import argparse
import datetime
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import cluster  # noqa: E402
from cluster import addr  # noqa: E402
from ledger import LEDGER_DDL, Writer  # noqa: E402



def logged_at(routers, logs_at, pattern, timeout=60):
    """Wall-clock time (s) of the first router log line matching <pattern>
    written after the offsets <logs_at>; waits up to <timeout> for it."""
    found = []

    def seen():
        for r, pos in zip(routers, logs_at):
            with open(r.log_path, errors="replace") as f:
                f.seek(pos)
                for line in f:
                    if re.search(pattern, line):
                        ts = datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f")
                        found.append(ts.replace(tzinfo=datetime.timezone.utc).timestamp())
                        break
        return bool(found)
    cluster.wait_for(seen, timeout, pattern)
    return min(found)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--routers", type=int, default=3)
    ap.add_argument("--switchovers", type=int, default=10)
    args = ap.parse_args()
    # SIGTERM ends the run through the finally below, which stops every
    # server and router it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    zk = cluster.ZooKeeper()
    master, standbys = cluster.replicated_shard("m", 2, [LEDGER_DDL])
    servers = [master] + standbys
    env = dict(os.environ, SHARDWIRE_CONTROL_USER=cluster.CONTROL_USER,
               SHARDWIRE_CONTROL_PASSWORD=cluster.CONTROL_PASSWORD,
               SHARDWIRE_REPL_USER=cluster.REPL_USER,
               SHARDWIRE_REPL_PASSWORD=cluster.REPL_PASSWORD)

    def ctl(*a):
        r = subprocess.run([cluster.shardctl_path(), "--zk", zk.hosts, "--timeout", "5"] +
                           list(a), capture_output=True, text=True, timeout=180, env=env)
        if r.returncode != 0:
            raise RuntimeError("shardctl %s: %s%s" % (a[0], r.stdout, r.stderr))
        return r.stdout

    def master_addr():
        return json.loads(ctl("--json", "status"))["shards"][0]["master"]

    ctl("init", "--acl", "open", "--shard", cluster.shard_spec("s0", master, standbys))
    routers = []
    for i in range(args.routers):
        routers.append(cluster.Router({
            "zookeeper": zk.hosts, "router_id": "r%d" % i,
            "map_cache": os.path.join(cluster.tmp_root(), "r%d.cache" % i),
            "control_user": cluster.CONTROL_USER, "control_password": cluster.CONTROL_PASSWORD,
            "health_interval_ms": 200, "health_timeout_ms": 500,
            "health_down_after_fails": 3, "health_down_after_ms": 1000,
            "auto_failover": "on", "failover_flap_window_ms": 0,
            "failover_router_wait_ms": 3000, "pool_wait_timeout_ms": 2000,
            "connect_timeout_ms": 1000}))
    writers = [Writer(i, routers[i % len(routers)], userid_base=0, users=100, pause=0.005)
               for i in range(len(routers))]
    for w in writers:
        w.start()
    by_addr = {addr(s): s for s in servers}
    detect, writable, first = [], [], []
    try:
        for k in range(args.kills):
            cluster.wait_for(lambda: all(len(w.acked) > 0 for w in writers), 30, "writes")
            old = by_addr[master_addr()]
            logs_at = [os.path.getsize(r.log_path) for r in routers]
            t0, wall0 = time.monotonic(), time.time()
            old.kill(signal.SIGKILL)
            # Times come from the coordinator's log lines (polling shardctl
            # status would add its own run time, a second or more on a
            # loaded machine, to every measure).
            t_detect = logged_at(routers, logs_at, r"decision=failed") - wall0
            t_writable = logged_at(routers, logs_at, r"writable: \S+ is the master") - wall0
            cluster.wait_for(lambda: master_addr() != addr(old), 60, "a new master")
            new = by_addr[master_addr()]
            cluster.wait_for(lambda: new.sql("SELECT @@read_only")[0][0] == 0, 60, "writable")
            # After the decision only the new master can acknowledge a write
            # (an ack timed just after the kill came from the old one).
            t_ack = None
            deadline = time.monotonic() + 60
            while t_ack is None and time.monotonic() < deadline:
                acks = [t for w in writers for _, t in w.acked if t > t0 + t_detect]
                t_ack = min(acks) - t0 if acks else None
                time.sleep(0.02)
            detect.append(t_detect)
            writable.append(t_writable)
            first.append(t_ack if t_ack is not None else float("nan"))
            print("kill %2d: detected %.2f s, writable %.2f s, first ack %.2f s" % (
                k + 1, t_detect, t_writable, first[-1]), flush=True)
            # The old master rejoins as a standby for the next round.
            if "--init-rpl-role=SLAVE" not in old.extra_args:
                old.extra_args.append("--init-rpl-role=SLAVE")
            old.start()
            ctl("rejoin", "s0", addr(old))
        pauses, gaps, sw_errors = [], [], []
        for k in range(args.switchovers):
            cluster.wait_for(lambda: all(len(w.acked) > 0 for w in writers), 30, "writes")
            time.sleep(0.5)
            failed0 = sum(w.failed for w in writers)
            t0 = time.monotonic()
            out = ctl("--json", "switchover", "s0")
            t1 = time.monotonic()
            done = json.loads(out.splitlines()[-1])
            time.sleep(0.5)
            acks = sorted(t for w in writers for _, t in w.acked if t0 - 0.5 <= t <= t1 + 0.5)
            gap = max((b - a for a, b in zip(acks, acks[1:])), default=float("nan"))
            pauses.append(done["pause_ms"] / 1000.0)
            gaps.append(gap)
            sw_errors.append(sum(w.failed for w in writers) - failed0)
            steps = [json.loads(l).get("line", "")[len("timing: "):]
                     for l in out.splitlines() if '"line":"timing: ' in l]
            print("switchover %2d: %s -> %s, paused %.2f s, longest gap in acks %.2f s, "
                  "%d errors (%s)" % (k + 1, done["standby"], done["master"], pauses[-1], gap,
                                      sw_errors[-1], "; ".join(steps)), flush=True)
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(30)
        last = by_addr[master_addr()]
        rows = {(u, i) for u, i in last.sql("SELECT userid, id FROM ledger")}
        acked = [key for w in writers for key, _ in w.acked]
        lost = sum(1 for key in acked if key not in rows)

        def q(v):
            v = sorted(v)
            return "p50 %.2f s, max %.2f s" % (statistics.median(v), v[-1])
        print()
        print("kills: %d, routers: %d" % (args.kills, args.routers))
        if detect:
            print("detection (kill -> majority decision):   " + q(detect))
            print("writable (kill -> new master writable):  " + q(writable))
            print("first ack (kill -> first write on it):   " + q(first))
        if pauses:
            print("switchover pause (map paused):           " + q(pauses))
            print("switchover gap (no write acknowledged):  " + q(gaps))
            print("switchover client errors: %d in %d switchovers" % (sum(sw_errors),
                                                                     len(sw_errors)))
            print("target: switchover pause < 1 s with 0 errors: %s" % (
                "met" if max(pauses) < 1 and sum(sw_errors) == 0 else "MISSED"))
        print("writes acknowledged: %d, failed: %d, lost: %d" % (
            len(acked), sum(w.failed for w in writers), lost))
        print("target: first ack p50 < 3 s: %s; lost = 0: %s" % (
            "met" if not first or statistics.median(first) < 3 else "MISSED",
            "met" if lost == 0 else "MISSED"))
    finally:
        for r in routers:
            r.stop(check=False)
        for s in servers:
            s.stop()
        zk.stop()
        cluster.cleanup()


if __name__ == "__main__":
    main()

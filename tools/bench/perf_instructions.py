#!/usr/bin/python3
"""
tools/bench/perf_instructions.py - user-space instructions the router spends
per statement, counted by callgrind: a number that does not move with the
load of a shared machine (docs/performance.md). A benchmark, not a test.

  /usr/bin/python3 tools/bench/perf_instructions.py [--build-dir build-rel]
      [--workload point|oltp] [--mode text|ps] [--shards 1] [--vbuckets 1024]
      [--keep DIR]

Starts one MariaDB (listening on 127.0.0.1..N for N shards, a map names
each address once) with the tables of tools/bench/perf.py, then twice a
router with 1 worker under `valgrind --tool=callgrind` (map file, no
ZooKeeper thread) and sysbench with 4 threads for 300 and then 1,300
events; prints (instructions of the second - of the first) / 1,000, so
start-up and shutdown cancel out. Needs valgrind and sysbench.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
sys.path.insert(0, HERE)

import perf     # noqa: E402  (build(), the workloads)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build-rel"))
    ap.add_argument("--workload", default="point", choices=sorted(perf.WORKLOADS))
    ap.add_argument("--mode", default="text", choices=sorted(perf.PSMODE))
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--vbuckets", type=int, default=1024)
    ap.add_argument("--keep", metavar="DIR",
                    help="copy the two callgrind outputs to DIR (for callgrind_annotate)")
    args = ap.parse_args()
    build_dir = os.path.abspath(args.build_dir)
    perf.build(build_dir)
    os.environ["SW_BUILD_DIR"] = build_dir
    import cluster
    db = cluster.MariaDB("shard", start=False)
    os.makedirs(os.path.join(db.dir, "tmp"))
    db.extra_args = [
        "--skip-log-bin", "--sync-binlog=0", "--innodb-flush-log-at-trx-commit=2",
        "--tmpdir=" + os.path.join(db.dir, "tmp"),
        "--bind-address=" + ",".join("127.0.0.%d" % (i + 1) for i in range(args.shards))]
    db.start()
    perf.load_shard(db, 10000)
    shards = [("s%02d" % i, "127.0.0.%d:%d" % (i + 1, db.port)) for i in range(args.shards)]
    total = {}
    for events in (300, 1300):
        r = cluster.Router({"workers": 1, "log_level": "warn"},
                           map_text=cluster.map_text(shards, n_vbuckets=args.vbuckets),
                           start=False)
        out = os.path.join(r.dir, "callgrind.out")
        r.proc = cluster.Proc(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                               os.path.join(build_dir, "router", "shardwire"), "-c",
                               r.config_path], r.log_path, cwd=r.dir)
        cluster.wait_for(lambda: cluster._read_handshake(r.port), 120, "router under valgrind",
                         proc=r.proc, log=r.log_tail)
        subprocess.run(["sysbench", os.path.join(HERE, perf.WORKLOADS[args.workload]),
                        "--mysql-host=127.0.0.1", "--mysql-port=%d" % r.port,
                        "--mysql-user=" + cluster.APP_USER,
                        "--mysql-password=" + cluster.APP_PASSWORD, "--mysql-db=app",
                        "--db-ps-mode=" + perf.PSMODE[args.mode], "--threads=4",
                        "--events=%d" % events, "--time=0", "--users=10000", "run"],
                       stdout=subprocess.DEVNULL, check=True)
        r.proc.stop()
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            shutil.copy(out, os.path.join(args.keep, "callgrind.out.%d" % events))
        with open(out) as f:
            m = re.search(r"^(?:summary|totals):\s+(\d+)", f.read(), re.M)
        total[events] = int(m.group(1))
    print("%s %s, %d shards, %d vbuckets: %.0f instructions per event "
          "(%d for 300 events, %d for 1,300)" % (
              args.workload, args.mode, args.shards, args.vbuckets,
              (total[1300] - total[300]) / 1000, total[300], total[1300]))


if __name__ == "__main__":
    main()

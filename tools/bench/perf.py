#!/usr/bin/python3
"""
tools/bench/perf.py - shardwire side by side with HAProxy (TCP mode, the L4
floor) and a direct connection, on one loaded MariaDB shard (issue 11). A
benchmark, not a test: it prints numbers and judges nothing.

  /usr/bin/python3 tools/bench/perf.py [--threads 1,8,32,128]
      [--workloads point:text,point:ps,oltp:text] [--time 12] [--rounds 2]
      [--targets direct,haproxy,shardwire] [--build-dir build-rel]
      [--router-config KEY=VALUE ...] [--variant NAME:KEY=VALUE;...]
      [--shards 1] [--vbuckets 1024] [--count] [--record [proxy,shard]] [--out DIR]

What it starts (e2e harness, tests/e2e/cluster.py: free loopback ports,
temp dirs, everything killed at exit):
  - a release build of shardwire in --build-dir (meson buildtype=release,
    made here if missing; never build-test/, whose sanitizers cost ~3x);
  - one MariaDB shard (no binlog, innodb_flush_log_at_trx_commit=2: the
    shard works on statements, not fsyncs) with tables users (--users x 2
    rows) and items (5 per user), loaded server-side;
  - a standalone ZooKeeper with the map (`shardctl init --acl open`):
    --shards shards (all the one MariaDB, listening on 127.0.0.1..N, so the
    router's per-shard cost can be scaled without more servers) over
    --vbuckets vbuckets;
  - HAProxy in TCP mode with nbthread = cores, and shardwire with its
    defaults (workers = cores) and pool_max_per_shard = 64 (so 32 client
    threads' transactions fit under the pinned cap, 48, and 128 do not: a
    transaction refused with 1203 is retried by sysbench and counted as an
    error) plus --router-config. Each --variant starts one more router
    with settings on top (build=DIR: the shardwire of another build dir,
    e.g. of an older commit, for before/after in one interleaved run).

Workloads (sysbench with tools/bench/userid_*.lua): point = one primary-key
SELECT by userid per event; oltp = BEGIN, 3 SELECTs, UPDATE, INSERT, COMMIT
of one user (7 queries per event). :text sends COM_QUERY, :ps server-side
prepared statements. Rounds interleave the targets, the order reversed every
other round, so a load change on the shared machine hits all of them.

Per run it reads, around the sysbench run: utime+stime of the proxy and of
mariadbd from /proc/PID/stat (CPU per query), the shard's Questions and
Com_* counters (backend statements per client query), and sysbench's QPS
and p99. The table gives shardwire / HAProxy ratios from the same rounds
(CPU and statements summed over rounds, QPS and p99 averaged).

--count instead attaches `perf stat` (software events and syscall
tracepoints, no hardware counters needed) to the proxy and to mariadbd for
each run and prints per client query: syscalls, epoll_ctl, epoll_wait,
reads, writes, context switches, wakeups. perf slows the traced process:
use --count runs for counts, not for QPS. --record attaches `perf record`
(cpu-clock samples with stacks) to the proxy (`--record proxy,shard`: and
to mariadbd) and writes LOG.proxy.report (LOG.shard.report):
its time by library (kernel, libc, libevent, shardwire) and by symbol.
"""

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))

HZ = os.sysconf("SC_CLK_TCK")
WORKLOADS = {"point": "userid_point_select.lua", "oltp": "userid_oltp.lua"}
PSMODE = {"text": "disable", "ps": "auto"}
COUNT_EVENTS = ["raw_syscalls:sys_enter", "syscalls:sys_enter_epoll_ctl",
                "syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_read",
                "syscalls:sys_enter_readv", "syscalls:sys_enter_recvfrom",
                "syscalls:sys_enter_ioctl", "syscalls:sys_enter_write",
                "syscalls:sys_enter_writev", "syscalls:sys_enter_sendto",
                "syscalls:sys_enter_sendmsg", "syscalls:sys_enter_futex",
                "context-switches", "sched:sched_wakeup"]


def log(msg):
    print("[perf %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def build(build_dir):
    """Configures a release build in <build_dir> if needed; compiles."""
    if not os.path.exists(os.path.join(build_dir, "build.ninja")):
        subprocess.run(["meson", "setup", build_dir, "--buildtype=release"], cwd=REPO,
                       check=True, stdout=subprocess.DEVNULL)
    else:
        bt = subprocess.run(["meson", "introspect", "--buildoptions", build_dir],
                            capture_output=True, text=True, cwd=REPO).stdout
        opts = {o["name"]: o["value"] for o in json.loads(bt or "[]")}
        if opts.get("buildtype") != "release" or opts.get("b_sanitize", "none") != "none":
            sys.exit("%s is not a plain release build (buildtype=%s, b_sanitize=%s)" % (
                build_dir, opts.get("buildtype"), opts.get("b_sanitize")))
    subprocess.run(["ninja", "-C", build_dir, "router/shardwire", "tools/shardctl"],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def cpu_ticks(pid, user_only=False):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + (0 if user_only else int(fields[12]))     # utime, stime


def load_shard(db, users):
    log("loading %d users into the shard" % users)
    db.sql("""CREATE TABLE users (
        userid BIGINT NOT NULL, id BIGINT NOT NULL, name VARCHAR(64) NOT NULL,
        balance BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (userid, id)) ENGINE=InnoDB""")
    db.sql("""CREATE TABLE items (
        userid BIGINT NOT NULL, item_id BIGINT NOT NULL AUTO_INCREMENT,
        payload VARCHAR(255) NOT NULL, created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        PRIMARY KEY (item_id), KEY k_userid (userid)) ENGINE=InnoDB""")
    db.sql("INSERT INTO users (userid, id, name, balance) SELECT u.seq, r.seq, "
           "CONCAT('user-', u.seq, '-', r.seq), 1000 FROM seq_1_to_%d u, seq_1_to_2 r" % users)
    db.sql("INSERT INTO items (userid, payload, created) SELECT u.seq, CONCAT('payload for "
           "user ', u.seq, ' item ', r.seq, ' ', REPEAT('x', 64)), NOW() "
           "FROM seq_1_to_%d u, seq_1_to_5 r ORDER BY r.seq, u.seq" % users)
    db.sql("ANALYZE TABLE users, items")


def start_haproxy(cluster, backend_port, nbthread):
    require_bin("haproxy", "haproxy")
    d = cluster._new_dir("haproxy")
    port = cluster.free_port()
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("global\n    maxconn 4000\n    nbthread %d\n"
                "defaults\n    mode tcp\n    timeout connect 5s\n"
                "    timeout client 1h\n    timeout server 1h\n"
                "frontend fe\n    bind 127.0.0.1:%d\n    default_backend be\n"
                "backend be\n    server shard0 127.0.0.1:%d maxconn 2000\n"
                % (nbthread, port, backend_port))
    proc = cluster.Proc(["haproxy", "-db", "-f", cfg], os.path.join(d, "haproxy.log"))
    cluster.wait_for(lambda: cluster._read_handshake(port), 20, "haproxy", proc=proc)
    return proc, port


def require_bin(name, package):
    if not shutil.which(name):
        sys.exit("perf.py: %s not found (Debian package %s)" % (name, package))


class Target:
    def __init__(self, name, port, pid, user, password):
        self.name, self.port, self.pid = name, port, pid
        self.user, self.password = user, password


def shard_status(db):
    """Global status counters of the shard: Questions and every Com_*."""
    rows = db.sql("SHOW GLOBAL STATUS WHERE Variable_name = 'Questions' "
                  "OR Variable_name LIKE 'Com\\_%'")
    return {k: int(v) for k, v in rows}


def parse_perf_stat(path):
    out = {}
    try:
        text = open(path).read()
    except OSError:
        return out
    for line in text.splitlines():
        m = re.match(r"\s*([\d,.]+|<not counted>|<not supported>)\s+(\S+)", line)
        if m and m.group(1)[0].isdigit():
            out[m.group(2)] = float(m.group(1).replace(",", ""))
    return out


def run_one(args, tgt, wl, mode, threads, db, outdir, tag, seconds=None):
    seconds = seconds or args.time
    logf = os.path.join(outdir, "%s-%s-%s-%s-%d.log" % (tag, tgt.name, wl, mode, threads))
    s0 = shard_status(db)
    p0 = cpu_ticks(tgt.pid) if tgt.pid else 0
    u0 = cpu_ticks(tgt.pid, True) if tgt.pid else 0
    b0 = cpu_ticks(db.proc.pid)
    perfs = []
    if args.count and tag != "warm":
        for who, pid in (("proxy", tgt.pid), ("shard", db.proc.pid)):
            if not pid:
                continue
            pf = logf + "." + who + ".perf"
            perfs.append((who, pf, subprocess.Popen(
                ["perf", "stat", "-x", " ", "--no-big-num", "-e", ",".join(COUNT_EVENTS),
                 "-p", str(pid), "-o", pf], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)))
    for who, pid in (("proxy", tgt.pid), ("shard", db.proc.pid)):
        # where a process's time goes: cpu-clock samples (no hardware
        # counters on this VM), kernel and user stacks
        if who in (args.record or ()) and tag != "warm" and pid:
            pf = logf + "." + who + ".data"
            perfs.append(("record-" + who, pf, subprocess.Popen(
                ["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-p", str(pid),
                 "-o", pf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
    if perfs:
        time.sleep(0.5)
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(logf, "w") as f:
        subprocess.run(["sysbench", os.path.join(HERE, WORKLOADS[wl]),
                        "--mysql-host=127.0.0.1", "--mysql-port=%d" % tgt.port,
                        "--mysql-user=" + tgt.user, "--mysql-password=" + tgt.password,
                        "--mysql-db=app", "--db-ps-mode=" + PSMODE[mode],
                        "--threads=%d" % threads, "--time=%d" % seconds,
                        "--users=%d" % args.users, "--percentile=99",
                        # a transaction past pool_max_pinned_per_shard gets 1203
                        # and is retried, as deadlocks and lock waits are
                        "--mysql-ignore-errors=1213,1020,1205,1203",
                        "--report-interval=0", "run"],
                       stdout=f, stderr=subprocess.STDOUT, timeout=seconds + 120)
    # the load generator's own CPU: a proxy that makes clients work harder
    # (more packets, metadata to parse again) costs them, not itself
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _, _, p in perfs:
        p.send_signal(signal.SIGINT)
    for _, _, p in perfs:
        p.wait(30)
    p1 = cpu_ticks(tgt.pid) if tgt.pid else 0
    u1 = cpu_ticks(tgt.pid, True) if tgt.pid else 0
    b1 = cpu_ticks(db.proc.pid)
    s1 = shard_status(db)
    text = open(logf, errors="replace").read()

    def grab(pat):
        m = re.search(pat, text)
        return float(m.group(1)) if m else 0.0
    r = {"round": tag, "target": tgt.name, "workload": wl, "mode": mode, "threads": threads,
         "qps": grab(r"queries:\s+\d+\s+\(([\d.]+) per sec"),
         "queries": grab(r"queries:\s+(\d+)"),
         "errors": grab(r"ignored errors:\s+(\d+)"),
         "p99_ms": grab(r"99th percentile:\s+([\d.]+)"),
         "proxy_ticks": p1 - p0, "proxy_user_ticks": u1 - u0, "shard_ticks": b1 - b0,
         "client_ticks": (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime) * HZ,
         # the two SHOW STATUS statements are counted once each
         "shard_questions": s1.get("Questions", 0) - s0.get("Questions", 0) - 1,
         "shard_com": {k: s1[k] - s0.get(k, 0) for k in s1
                       if k.startswith("Com_") and s1[k] - s0.get(k, 0) > 0
                       and k != "Com_show_status"}}
    for who, pf, _ in perfs:
        if who.startswith("record-"):
            rep = "%s.%s.report" % (logf, who[7:])
            with open(rep, "w") as f:
                for sort in ("dso", "dso,sym"):
                    f.write(subprocess.run(
                        ["perf", "report", "-i", pf, "--stdio", "--no-children", "-g", "none",
                         "--percent-limit", "0.5", "--sort", sort], capture_output=True,
                        text=True).stdout)
            r[who] = rep
            continue
        r["count_" + who] = parse_perf_stat(pf)
    if "FATAL" in text or not r["queries"]:
        log("sysbench failed against %s, see %s" % (tgt.name, logf))
    return r


def us_per_q(ticks, queries):
    return ticks / HZ / queries * 1e6 if queries else float("nan")


def fmt_ratio(a, b):
    return "%.2f" % (a / b) if b and a == a and b == b else "-"


def report(results, args):
    """Markdown tables, one row per workload and thread count."""
    lines = []
    keys = []
    for r in results:
        k = (r["workload"], r["mode"], r["threads"])
        if k not in keys:
            keys.append(k)

    def agg(tname, k):
        rs = [r for r in results if r["target"] == tname and
              (r["workload"], r["mode"], r["threads"]) == k]
        if not rs:
            return None
        q = sum(r["queries"] for r in rs)
        return {"qps": sum(r["qps"] for r in rs) / len(rs),
                "p99": sum(r["p99_ms"] for r in rs) / len(rs),
                "proxy_us": us_per_q(sum(r["proxy_ticks"] for r in rs), q),
                "proxy_user_us": us_per_q(sum(r.get("proxy_user_ticks", 0) for r in rs), q),
                "shard_us": us_per_q(sum(r["shard_ticks"] for r in rs), q),
                "client_us": us_per_q(sum(r.get("client_ticks", 0) for r in rs), q),
                "stmts": sum(r["shard_questions"] for r in rs) / q if q else float("nan"),
                "errors": sum(r["errors"] for r in rs)}
    routers = []
    for r in results:
        if r["target"] not in ("direct", "haproxy") and r["target"] not in routers:
            routers.append(r["target"])
    lines.append("| workload | threads | router | QPS sw/hap | router CPU/q sw/hap "
                 "| shard CPU/q sw/hap | p99 sw/hap | shard stmts/q sw, hap "
                 "| QPS direct, hap, sw | proxy µs/q (user) hap, sw | shard µs/q direct, hap, sw "
                 "| p99 ms direct, hap, sw | client µs/q direct, hap, sw |")
    lines.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, rname in [(k, rn) for k in keys for rn in routers]:
        d, h, s = agg("direct", k), agg("haproxy", k), agg(rname, k)
        z = {"qps": float("nan"), "p99": float("nan"), "proxy_us": float("nan"),
             "proxy_user_us": float("nan"),
             "shard_us": float("nan"), "client_us": float("nan"), "stmts": float("nan"),
             "errors": 0}
        d, h, s = d or z, h or z, s or z
        lines.append("| %s %s | %d | %s | %s | %s | %s | %s | %.2f, %.2f | %.0f, %.0f, %.0f "
                     "| %.1f (%.1f), %.1f (%.1f) | %.1f, %.1f, %.1f | %.2f, %.2f, %.2f "
                     "| %.1f, %.1f, %.1f |%s" % (
                         k[0], k[1], k[2], rname, fmt_ratio(s["qps"], h["qps"]),
                         fmt_ratio(s["proxy_us"], h["proxy_us"]),
                         fmt_ratio(s["shard_us"], h["shard_us"]),
                         fmt_ratio(s["p99"], h["p99"]), s["stmts"], h["stmts"],
                         d["qps"], h["qps"], s["qps"], h["proxy_us"], h["proxy_user_us"],
                         s["proxy_us"], s["proxy_user_us"],
                         d["shard_us"], h["shard_us"], s["shard_us"],
                         d["p99"], h["p99"], s["p99"],
                         d["client_us"], h["client_us"], s["client_us"],
                         " errors: %d" % (s["errors"] + h["errors"] + d["errors"])
                         if s["errors"] + h["errors"] + d["errors"] else ""))
    if args.count:
        lines.append("")
        lines.append("Per client query (perf stat; sw = shardwire, hap = HAProxy):")
        lines.append("")
        short = [e.split(":")[-1].replace("sys_enter_", "") for e in COUNT_EVENTS]
        lines.append("| workload | threads | process | " + " | ".join(short) + " |")
        lines.append("|---|---:|---|" + "---:|" * len(short))
        for k in keys:
            for tname in ["haproxy"] + routers + ["direct"]:
                for who in ("proxy", "shard"):
                    rs = [r for r in results if r["target"] == tname and
                          (r["workload"], r["mode"], r["threads"]) == k and
                          r.get("count_" + who)]
                    if not rs:
                        continue
                    q = sum(r["queries"] for r in rs)
                    vals = ["%.2f" % (sum(r["count_" + who].get(e, 0) for r in rs) / q)
                            for e in COUNT_EVENTS]
                    lines.append("| %s %s | %d | %s %s | %s |" % (
                        k[0], k[1], k[2], tname, who, " | ".join(vals)))
        lines.append("")
        lines.append("Shard statements per client query, by Com_* counter:")
        lines.append("")
        for k in keys:
            for tname in ["haproxy"] + routers:
                rs = [r for r in results if r["target"] == tname and
                      (r["workload"], r["mode"], r["threads"]) == k]
                q = sum(r["queries"] for r in rs)
                if not q:
                    continue
                com = {}
                for r in rs:
                    for c, v in r["shard_com"].items():
                        com[c] = com.get(c, 0) + v
                lines.append("- %s %s %d threads, %s: %s" % (
                    k[0], k[1], k[2], tname, ", ".join(
                        "%s %.3f" % (c[4:], v / q) for c, v in sorted(com.items())
                        if v / q >= 0.001)))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,8,32,128")
    ap.add_argument("--workloads", default="point:text,point:ps,oltp:text")
    ap.add_argument("--time", type=int, default=12, help="seconds per run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--targets", default="direct,haproxy,shardwire")
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build-rel"))
    ap.add_argument("--router-config", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE[;...]",
                    help="another router, NAME, with these settings on top (e.g. "
                         "'sw-1w:workers=1'; shards=N and vbuckets=N give it a map of its "
                         "own; build=DIR runs the shardwire of build dir DIR, "
                         "e.g. one configured in a checkout of an older commit); NAME "
                         "joins the targets")
    ap.add_argument("--users", type=int, default=100000)
    ap.add_argument("--shards", type=int, default=1,
                    help="shard names in the map (all on the one MariaDB)")
    ap.add_argument("--vbuckets", type=int, default=1024)
    ap.add_argument("--haproxy-threads", type=int, default=os.cpu_count())
    ap.add_argument("--count", action="store_true",
                    help="perf stat syscall/switch counts per query (slows the proxies)")
    ap.add_argument("--record", nargs="?", const="proxy", default=None,
                    type=lambda v: v.split(","),
                    help="perf record per run of the proxy (default) or of proxy,shard: "
                         "LOG.proxy.report / LOG.shard.report have its time by library and by "
                         "symbol (slows what it records)")
    ap.add_argument("--out", default=None, help="directory for sysbench logs and results")
    args = ap.parse_args()
    require_bin("sysbench", "sysbench")
    if args.count or args.record:
        require_bin("perf", "linux-perf")

    build_dir = os.path.abspath(args.build_dir)
    log("building %s (release)" % build_dir)
    build(build_dir)
    os.environ["SW_BUILD_DIR"] = build_dir
    os.environ["SW_SHARDWIRE"] = os.path.join(build_dir, "router", "shardwire")
    os.environ["SW_SHARDCTL"] = os.path.join(build_dir, "tools", "shardctl")
    import cluster
    outdir = args.out or os.path.join(build_dir, "perf-" + time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(outdir, exist_ok=True)

    targets = args.targets.split(",")
    # Shard i of a map is 127.0.0.(i+1): a map names each address once, and
    # the one MariaDB listens on all of them (the whole of 127/8 is loopback).
    max_shards = max([args.shards] + [int(kv.split("=", 1)[1]) for v in args.variant
                                      for kv in v.partition(":")[2].split(";")
                                      if kv.startswith("shards=")])
    db = cluster.MariaDB("shard", start=False)
    os.makedirs(os.path.join(db.dir, "tmp"))    # not /tmp, which others may sweep
    db.extra_args = [
        "--skip-log-bin", "--sync-binlog=0", "--innodb-flush-log-at-trx-commit=2",
        "--innodb-buffer-pool-size=256M", "--innodb-log-file-size=256M",
        "--max-connections=1000", "--thread-cache-size=256", "--table-open-cache=2000",
        "--tmpdir=" + os.path.join(db.dir, "tmp"),
        "--bind-address=" + ",".join("127.0.0.%d" % (i + 1) for i in range(max_shards))]
    db.start()
    load_shard(db, args.users)
    tg = {"direct": Target("direct", db.port, None, cluster.BACKEND_USER,
                           cluster.BACKEND_PASSWORD)}
    if "haproxy" in targets:
        hp, hport = start_haproxy(cluster, db.port, args.haproxy_threads)
        tg["haproxy"] = Target("haproxy", hport, hp.pid, cluster.BACKEND_USER,
                               cluster.BACKEND_PASSWORD)
    variants = [("shardwire", {})]
    for v in args.variant:
        name, _, kvs = v.partition(":")
        variants.append((name, dict(kv.split("=", 1) for kv in kvs.split(";") if kv)))
        targets.append(name)
    if any(n in targets for n, _ in variants):
        zk = cluster.ZooKeeper()
        for name, extra in variants:
            if name not in targets:
                continue
            # pinned cap 48 (3/4 of 64): 32 threads' transactions fit, 128 do not
            cfg = {"zookeeper": zk.hosts, "log_level": "warn", "pool_max_per_shard": "64"}
            for kv in args.router_config:
                k, _, v = kv.partition("=")
                cfg[k.strip()] = v.strip()
            extra = dict(extra)
            # each router its own map (a cluster root of its own in ZooKeeper)
            root = "/shardwire" if name == "shardwire" else "/sw-" + name
            n_shards = int(extra.pop("shards", args.shards))
            spec = []
            for i in range(n_shards):
                spec += ["--shard", "s%02d=127.0.0.%d:%d" % (i, i + 1, db.port)]
            subprocess.run([os.environ["SW_SHARDCTL"], "--zk", zk.hosts, "--root", root,
                            "--timeout", "10", "init", "--acl", "open", "--vbuckets",
                            str(extra.pop("vbuckets", args.vbuckets))] + spec,
                           check=True, stdout=subprocess.DEVNULL)
            extra["zk_root"] = root
            binary = os.environ["SW_SHARDWIRE"]
            if "build" in extra:    # another build of shardwire, e.g. an older commit's
                bdir = os.path.abspath(extra.pop("build"))
                build(bdir)
                binary = os.path.join(bdir, "router", "shardwire")
            cfg.update(extra)
            router = cluster.Router(cfg, start=False)
            if "workers" not in cfg:
                del router.config["workers"]    # the router's default: one per core
            router.write_config()
            saved, os.environ["SW_SHARDWIRE"] = os.environ["SW_SHARDWIRE"], binary
            try:
                router.start()
            finally:
                os.environ["SW_SHARDWIRE"] = saved
            tg[name] = Target(name, router.port, router.proc.pid, cluster.APP_USER,
                              cluster.APP_PASSWORD)
    with open(os.path.join(outdir, "env.txt"), "w") as f:
        env = ["date: " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
               "host: %s, %d cores" % (os.uname().release, os.cpu_count()),
               "commit: " + subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h %s"],
                                           capture_output=True, text=True).stdout.strip() +
               (" (with uncommitted changes)" if subprocess.run(
                   ["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                   capture_output=True, text=True).stdout.strip() else ""),
               "args: " + " ".join(sys.argv[1:])]
        f.write("\n".join(env) + "\n")
    for line in env:
        log(line)

    workloads = [w.split(":") for w in args.workloads.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    order = [t for t in targets if t in tg]
    log("warming up (5 s per target)")
    for t in order:
        for wl, mode in workloads:
            run_one(args, tg[t], wl, mode, 8, db, outdir, "warm", seconds=3)
    results = []
    for rnd in range(1, args.rounds + 1):
        ordr = order if rnd % 2 else order[::-1]
        for th in threads:
            for wl, mode in workloads:
                for t in ordr:
                    r = run_one(args, tg[t], wl, mode, th, db, outdir, "r%d" % rnd)
                    results.append(r)
                    log("round %d %s %s:%s %d threads: %.0f q/s p99 %.2f ms proxy %.1f us/q "
                        "shard %.1f us/q client %.1f us/q, %.2f shard stmts/q" % (
                            rnd, t, wl, mode, th, r["qps"], r["p99_ms"],
                            us_per_q(r["proxy_ticks"], r["queries"]),
                            us_per_q(r["shard_ticks"], r["queries"]),
                            us_per_q(r["client_ticks"], r["queries"]),
                            r["shard_questions"] / r["queries"] if r["queries"] else 0))
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    text = report(results, args)
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write(text + "\n")
    print("\n".join(env))
    print()
    print(text)
    log("logs and results in %s" % outdir)


if __name__ == "__main__":
    main()

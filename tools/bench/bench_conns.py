#!/usr/bin/python3
"""
tools/bench/bench_conns.py - many mostly idle client connections through one
router (issue 4 item 6). A benchmark, not a test: it prints numbers and
asserts nothing about them.

  /usr/bin/python3 tools/bench/bench_conns.py [--build-dir DIR] [--conns 5000]
        [--duration 30] [--min-interval 2] [--max-interval 5] [--shards 2]

Starts a cluster with tests/e2e/cluster.py (N MariaDB shards + shardwire
from DIR/router/shardwire; use a release build, sanitizers inflate memory),
fills a small `bench` table, then opens --conns client connections with an
asyncio MySQL client (mysql_native_password, text protocol). Each connection
runs a point SELECT by userid every --min-interval..--max-interval seconds
(first one at a random moment, so the load is spread over time) for
--duration seconds. Reports:
  - router RSS (VmRSS) before connecting, with every client connected and
    idle, after the load, after disconnecting; KB per idle client
    connection = (connected - before) / conns
  - backend connections per shard (information_schema.processlist rows of
    user 'shardwire'): when idle-connected, the peak sampled during the load,
    and after it
  - statements done, errors (by errno or kind), latency percentiles
Targets from issue 4: < 64 backend connections per shard, < 20 KB per idle
client connection.
"""

import argparse
import asyncio
import os
import random
import resource
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
E2E = os.path.join(REPO, "tests", "e2e")

CAPS = (0x1 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x80000)   # long pw, flags,
# with db, protocol 41, transactions, secure conn, plugin auth; no DEPRECATE_EOF


def native_token(scramble, password):
    import hashlib
    if not password:
        return b""
    s1 = hashlib.sha1(password.encode()).digest()
    s2 = hashlib.sha1(s1).digest()
    h = hashlib.sha1(scramble + s2).digest()
    return bytes(a ^ b for a, b in zip(s1, h))


class ProtocolError(Exception):
    pass


class ServerError(Exception):
    def __init__(self, errno, msg):
        super().__init__("%d %s" % (errno, msg))
        self.errno = errno


class Conn:
    """One asyncio MySQL client connection (just enough for point SELECTs)."""

    def __init__(self, reader, writer):
        self.r, self.w = reader, writer

    async def packet(self):
        hdr = await self.r.readexactly(4)
        n = hdr[0] | hdr[1] << 8 | hdr[2] << 16
        return hdr[3], await self.r.readexactly(n)

    def send(self, payload, seq):
        self.w.write(struct.pack("<I", len(payload))[:3] + bytes([seq & 0xff]) + payload)

    @staticmethod
    def err(p):
        errno = p[1] | p[2] << 8
        msg = p[9:] if p[3:4] == b"#" else p[3:]
        return ServerError(errno, msg.decode("utf-8", "replace"))

    @classmethod
    async def open(cls, host, port, user, password, db):
        reader, writer = await asyncio.open_connection(host, port)
        c = cls(reader, writer)
        try:
            _, p = await c.packet()
            if p[0] == 0xff:
                raise cls.err(p)
            if p[0] != 10:
                raise ProtocolError("greeting protocol %d" % p[0])
            pos = p.index(b"\0", 1) + 1 + 4
            s1 = p[pos:pos + 8]
            pos += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10
            scramble = s1 + p[pos:pos + 12]
            tok = native_token(scramble, password)
            body = (struct.pack("<IIB23x", CAPS, 1 << 24, 45) + user.encode() + b"\0" +
                    bytes([len(tok)]) + tok + db.encode() + b"\0" + b"mysql_native_password\0")
            c.send(body, 1)
            await writer.drain()
            seq, p = await c.packet()
            if p[0] == 0xfe:          # auth switch
                end = p.index(b"\0", 1)
                c.send(native_token(p[end + 1:end + 21], password), seq + 1)
                await writer.drain()
                seq, p = await c.packet()
            if p[0] == 0xff:
                raise cls.err(p)
            if p[0] != 0:
                raise ProtocolError("login reply 0x%02x" % p[0])
            return c
        except BaseException:
            writer.close()
            raise

    async def query(self, sql):
        """Runs a text query; returns the number of rows (or affected rows)."""
        self.send(b"\x03" + sql.encode(), 0)
        await self.w.drain()
        _, p = await self.packet()
        if p[0] == 0xff:
            raise self.err(p)
        if p[0] == 0:
            return 0
        ncols = p[0]
        for _ in range(ncols):
            await self.packet()
        _, p = await self.packet()       # EOF after the column definitions
        rows = 0
        while True:
            _, p = await self.packet()
            if p[0] == 0xfe and len(p) < 9:
                return rows
            if p[0] == 0xff:
                raise self.err(p)
            rows += 1

    def close(self):
        try:
            self.send(b"\x01", 0)         # COM_QUIT
        except Exception:
            pass
        self.w.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, need)
    if hard != resource.RLIM_INFINITY and want > hard:
        try:                               # root may raise the hard limit too
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def backend_conns(c):
    """{shard: number of connections of user 'shardwire'} right now."""
    out = {}
    for name, db in c.shards.items():
        rows = db.sql("SELECT COUNT(*) FROM information_schema.processlist WHERE user = %s",
                      ("shardwire",))
        out[name] = int(rows[0][0])
    return out


async def run(args, c):
    host, port = c.router.host, c.router.port
    import cluster
    pid = c.router.proc.pid
    stats = {"ok": 0, "errors": {}, "lat": [], "connect_errors": {}, "inflight": 0,
             "max_inflight": 0}

    def count(d, key):
        d[key] = d.get(key, 0) + 1

    report = []

    def note(label, value):
        report.append((label, value))
        print("  %-48s %s" % (label, value), flush=True)

    rss0 = rss_kb(pid)
    note("router RSS before connecting", "%d KB" % rss0)
    note("backend connections per shard, no clients", backend_conns(c))

    # ---- connect everyone (bounded concurrency: the listen backlog is finite)
    conns = []
    sem = asyncio.Semaphore(args.connect_concurrency)

    async def one():
        async with sem:
            try:
                conns.append(await asyncio.wait_for(
                    Conn.open(host, port, cluster.APP_USER, cluster.APP_PASSWORD, cluster.APP_DB),
                    30))
            except ServerError as e:
                count(stats["connect_errors"], "errno %d" % e.errno)
            except Exception as e:
                count(stats["connect_errors"], type(e).__name__)

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(args.conns)))
    note("client connections open", "%d of %d in %.1f s" % (len(conns), args.conns,
                                                             time.monotonic() - t0))
    if stats["connect_errors"]:
        note("connect errors", stats["connect_errors"])
    # let the router settle, then measure the idle-connected state
    await asyncio.sleep(1.0)
    rss1 = rss_kb(pid)
    note("router RSS with all clients connected, idle", "%d KB" % rss1)
    if conns:
        note("KB per idle client connection", "%.2f KB  (target < 20)" %
             ((rss1 - rss0) / len(conns)))
    note("backend connections per shard, clients idle", backend_conns(c))

    # ---- load: each connection runs a point SELECT now and then
    deadline = time.monotonic() + args.duration
    users = args.users

    async def worker(conn):
        await asyncio.sleep(random.uniform(0, args.max_interval))
        while time.monotonic() < deadline:
            u = random.randint(1, users)
            t = time.monotonic()
            stats["inflight"] += 1
            stats["max_inflight"] = max(stats["max_inflight"], stats["inflight"])
            try:
                n = await asyncio.wait_for(
                    conn.query("SELECT v FROM bench WHERE userid = %d" % u), 30)
                if n != 1:
                    count(stats["errors"], "wrong row count %d" % n)
                else:
                    stats["ok"] += 1
                    stats["lat"].append(time.monotonic() - t)
            except ServerError as e:
                count(stats["errors"], "errno %d" % e.errno)
            except Exception as e:
                count(stats["errors"], type(e).__name__)
                return          # the connection is gone
            finally:
                stats["inflight"] -= 1
            await asyncio.sleep(random.uniform(args.min_interval, args.max_interval))

    peak = {n: 0 for n in c.shards}

    async def sampler():
        loop = asyncio.get_running_loop()
        while time.monotonic() < deadline:
            cur = await loop.run_in_executor(None, backend_conns, c)
            for n, v in cur.items():
                peak[n] = max(peak[n], v)
            await asyncio.sleep(1.0)

    t0 = time.monotonic()
    await asyncio.gather(sampler(), *(worker(x) for x in conns))
    took = time.monotonic() - t0
    lat = sorted(stats["lat"])

    def pct(p):
        return "%.2f ms" % (1000 * lat[min(len(lat) - 1, int(p * len(lat)))]) if lat else "-"

    note("load duration", "%.1f s" % took)
    note("statements done", "%d (%.0f/s)" % (stats["ok"], stats["ok"] / took if took else 0))
    note("statement errors", stats["errors"] or 0)
    note("latency p50 / p99 / max", "%s / %s / %s" % (pct(0.5), pct(0.99), pct(1.0)))
    note("statements in flight at once, client side, max", stats["max_inflight"])
    note("backend connections per shard, peak sampled", "%s  (target < 64)" % peak)
    note("backend connections per shard, after the load", backend_conns(c))
    rss2 = rss_kb(pid)
    note("router RSS after the load", "%d KB" % rss2)
    if conns:
        note("KB per client connection after the load", "%.2f KB" % ((rss2 - rss0) / len(conns)))
    for x in conns:
        x.close()
    await asyncio.sleep(1.0)
    note("router RSS after disconnecting", "%d KB" % rss_kb(pid))
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.environ.get("SW_BUILD_DIR"),
                    help="meson build dir with router/ and tools/ (default: $SW_BUILD_DIR or "
                         "build-test)")
    ap.add_argument("--conns", type=int, default=5000)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--min-interval", type=float, default=2.0)
    ap.add_argument("--max-interval", type=float, default=5.0)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--users", type=int, default=1000, help="rows in the bench table")
    ap.add_argument("--workers", type=int, default=2, help="router worker threads")
    ap.add_argument("--connect-concurrency", type=int, default=64)
    ap.add_argument("--router-config", action="append", default=[], metavar="KEY=VALUE",
                    help="extra router config (repeatable), e.g. pool_max_per_shard=32")
    args = ap.parse_args()
    if args.build_dir:
        os.environ["SW_BUILD_DIR"] = os.path.abspath(args.build_dir)
    sys.path.insert(0, E2E)
    import cluster

    # Before anything starts: the router inherits this limit.
    nofile = raise_nofile(args.conns * 2 + 2048)
    print("bench_conns: %d connections, %.0f s, a SELECT every %.1f-%.1f s each; "
          "RLIMIT_NOFILE %d; router %s" % (args.conns, args.duration, args.min_interval,
                                           args.max_interval, nofile, cluster.shardwire_path()),
          flush=True)
    cfg = {"max_client_connections": args.conns + 100, "workers": args.workers,
           "log_level": "warn"}
    for kv in args.router_config:
        k, _, v = kv.partition("=")
        cfg[k.strip()] = v.strip()
    c = cluster.Cluster(args.shards, start_router=False)
    try:
        c.create_schema(["CREATE TABLE bench (userid BIGINT NOT NULL PRIMARY KEY, v INT NOT NULL)"])
        users = list(range(1, args.users + 1))
        owners = c.shards_of(users)
        for name, db in c.shards.items():
            mine = [(u, u % 1000) for u, o in zip(users, owners) if o == name]
            conn = db.connect()
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO bench (userid, v) VALUES (%s, %s)", mine)
            conn.close()
        c.start_router(cfg)
        print("cluster: shards %s, router 127.0.0.1:%d pid %d" % (
            ", ".join("%s=%d" % (n, db.port) for n, db in c.shards.items()), c.router.port,
            c.router.proc.pid), flush=True)
        asyncio.run(run(args, c))
    finally:
        c.stop(check=False)
        cluster.cleanup()


if __name__ == "__main__":
    main()

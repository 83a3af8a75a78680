"""
tests/e2e/netpart.py - real network partitions for the failover tests
(issue 10): the test process moves into a network namespace of its own, so
every process it starts afterwards (mariadbd, ZooKeeper, routers, shardctl)
lives there and iptables rules touch nothing outside the test.

  net = netpart.Net()                # in setup_module, before any thread
  with net.host("m0") as h:          # processes started here are host m0
      db = cluster.MariaDB(...)
  h.ports.append(db.port)            # what m0 listens on
  net.cut("m0", "ra")                # both directions, silently (DROP)
  net.heal()                         # every cut

Why one namespace and not one per host joined by veth pairs: the harness,
the MariaDB accounts (user@127.0.0.1) and the maps all name 127.0.0.1, so
every process keeps the loopback address and a "host" is a group id
instead. Each host's processes run with their own gid; the first packet of
a connection a host opens marks the connection with that gid (owner match
+ CONNMARK), and a cut drops, in both directions, the packets of the
connections either side opened to the other's listening ports. That is
what a partition does to TCP: connects time out, established connections
go silent (nothing is refused or reset), and healing is immediate.
Connections opened by the test process itself (gid 0: the application's
and the operator's host) are never cut.

Net() raises cluster.Skip, naming the reason, only when a network
namespace cannot be created (no CAP_SYS_ADMIN, e.g. an unprivileged
container); a missing iptables is a failure (tools/deps.sh installs it).
"""

import contextlib
import ctypes
import os
import shutil
import subprocess
import threading

import cluster

CLONE_NEWNET = 0x40000000
IPTABLES = "/usr/sbin/iptables"
IP = "/usr/sbin/ip"


def _run(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise cluster.HarnessError("%s: exit %d: %s" % (" ".join(argv), r.returncode,
                                                          (r.stderr or r.stdout).strip()))
    return r.stdout


class Host:
    def __init__(self, name, gid):
        self.name, self.gid, self.ports = name, gid, []


class Net:
    def __init__(self, first_gid=42000):
        for tool, pkg in ((IPTABLES, "iptables"), (IP, "iproute2")):
            if not shutil.which(tool):
                raise cluster.HarnessError("%s missing: install %s (tools/deps.sh)" % (tool, pkg))
        if threading.active_count() != 1:
            raise cluster.HarnessError("netpart.Net() must run before any thread starts "
                                       "(a namespace is entered per thread)")
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise cluster.Skip("cannot create a network namespace (unshare(CLONE_NEWNET): %s); "
                               "partition tests need CAP_SYS_ADMIN" % os.strerror(err))
        _run([IP, "link", "set", "lo", "up"])
        _run([IPTABLES, "-w", "-F", "OUTPUT"])
        self.hosts = {}
        self.cuts = set()
        self.next_gid = first_gid

    @contextlib.contextmanager
    def host(self, name):
        """Processes started inside the block belong to host <name> (a new
        one, or one named before). Yields the Host: append its ports."""
        h = self.hosts.get(name)
        if h is None:
            h = self.hosts[name] = Host(name, self.next_gid)
            self.next_gid += 1
            _run([IPTABLES, "-w", "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "NEW",
                  "-m", "owner", "--gid-owner", str(h.gid),
                  "-j", "CONNMARK", "--set-mark", str(h.gid)])
        saved, cluster.spawn_gid = cluster.spawn_gid, h.gid
        try:
            yield h
        finally:
            cluster.spawn_gid = saved

    def _rules(self, a, b):
        """The DROP rules of a cut between hosts <a> and <b>: connections
        either opened to the other's ports."""
        out = []
        for src, dst in ((a, b), (b, a)):
            s, d = self.hosts[src], self.hosts[dst]
            if not d.ports:
                raise cluster.HarnessError("host %s has no ports to cut" % dst)
            out.append(["-m", "connmark", "--mark", str(s.gid), "-p", "tcp",
                        "-m", "multiport", "--ports", ",".join(str(p) for p in d.ports),
                        "-j", "DROP"])
        return out

    def cut(self, a, *others):
        """Partitions host <a> from each of <others> (both directions)."""
        for b in others:
            key = tuple(sorted((a, b)))
            if key in self.cuts:
                continue
            for rule in self._rules(*key):
                _run([IPTABLES, "-w", "-I", "OUTPUT"] + rule)
            self.cuts.add(key)

    def heal(self, a=None, b=None):
        """Removes the cut between <a> and <b>, or every cut."""
        keys = [tuple(sorted((a, b)))] if a else list(self.cuts)
        for key in keys:
            if key in self.cuts:
                for rule in self._rules(*key):
                    _run([IPTABLES, "-w", "-D", "OUTPUT"] + rule)
                self.cuts.discard(key)

    def dropped(self):
        """Packets dropped by the cuts so far (proof that a cut was real)."""
        text = _run([IPTABLES, "-w", "-L", "OUTPUT", "-v", "-n", "-x"])
        rows = [l.split() for l in text.splitlines()]
        return sum(int(r[0]) for r in rows if len(r) > 2 and r[2] == "DROP")

"""
tests/e2e/test_zk_watch.py - the router-side ZooKeeper code (shardmap/zkstore)
against real ZooKeeper servers, driven through `shardctl watch`, which runs
the same watch thread a router runs and prints one line per event.

Covered: every change is followed (watches re-armed), invalid data is
refused and the old map kept, an older map version is ignored, ZooKeeper down and back (connection loss is
not expiry; the silence is timed), a process cut off alone while the map
changes catches up, session expiry restores the registration and the watch,
a clean exit removes the registration at once, and a 3-node ensemble whose
leader is killed.
"""

import json
import os
import signal
import subprocess
import threading
import time

import cluster

zk = None

# The client's session timeout (shardmap/zkstore.h ZKSTORE_SESSION_TIMEOUT_MS).
SESSION_S = 10.0


def setup_module():
    global zk
    zk = cluster.ZooKeeper()


def teardown_module():
    zk.stop()


def shardctl_bin():
    path = cluster.shardctl_path()
    cluster._check_built(path)
    if not os.access(path, os.X_OK):
        raise cluster.HarnessError("shardctl binary %s not found" % path)
    return path


def ctl(root, *args, hosts=None, check=True):
    r = subprocess.run([shardctl_bin(), "--zk", hosts or zk.hosts, "--root", root] + list(args),
                       capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, "shardctl %s: rc=%d %s" % (" ".join(args), r.returncode,
                                                            r.stderr)
    return r


def routers(root, hosts=None):
    return {r["id"]: r for r in json.loads(ctl(root, "--json", "routers",
                                               hosts=hosts).stdout)["routers"]}


def zkcli_set(path, data):
    argv = [cluster.JAVA, "-cp", ":".join(cluster.ZK_JARS + ["/usr/share/java/*"]),
            "org.apache.zookeeper.ZooKeeperMain", "-server", zk.hosts, "set", path, data]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]


class Watch:
    """`shardctl watch [ID]` in the background; its lines collected."""

    def __init__(self, root, router_id=None, hosts=None):
        argv = [shardctl_bin(), "--zk", hosts or zk.hosts, "--root", root, "watch"]
        if router_id:
            argv.append(router_id)
        self.lines = []
        self.cond = threading.Condition()
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait(self, pred, timeout, what):
        """Waits for a line satisfying <pred>; returns it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for l in self.lines:
                    if pred(l):
                        return l
                left = deadline - time.monotonic()
                assert left > 0 and self.p.poll() is None, \
                    "watch: no %s after %.0fs (exit %s); lines:\n%s\nstderr: %s" % (
                        what, timeout, self.p.poll(), "\n".join(self.lines),
                        self.p.stderr.read() if self.p.poll() is not None else "")
                self.cond.wait(min(left, 0.5))

    def wait_map(self, version, timeout=10):
        return self.wait(lambda l: l.startswith("map version=%d " % version), timeout,
                         "map version %d" % version)

    def count(self, prefix):
        with self.cond:
            return sum(1 for l in self.lines if l.startswith(prefix))

    def contact_age_ms(self):
        """Asks for the time since ZooKeeper last answered (SIGUSR1)."""
        n = self.count("contact_age_ms=")
        self.p.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while self.count("contact_age_ms=") == n:
            assert time.monotonic() < deadline, "no answer to SIGUSR1"
            time.sleep(0.02)
        with self.cond:
            last = [l for l in self.lines if l.startswith("contact_age_ms=")][-1]
        age, state = last.split()
        return int(age.split("=")[1]), state.split("=")[1]

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGCONT)
            self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(30)
        self.reader.join(5)
        err = self.p.stderr.read()
        assert "Sanitizer" not in err and "runtime error" not in err, err
        return rc


def init(root, hosts=None):
    ctl(root, "init", "--acl", "open", "--vbuckets", "64", "--shard", "s0=127.0.0.1:13306",
        "--shard", "s1=127.0.0.1:13316", hosts=hosts)


# ------------------------------------------------------------------ tests

def test_follows_every_change_and_registers():
    root = "/w-follow"
    w = Watch(root, "r1")
    try:
        # before init: connected, told there is no cluster, registered anyway
        w.wait(lambda l: l == "state connected", 10, "connection")
        w.wait(lambda l: "no cluster at /w-follow" in l, 10, "no-cluster warning")
        cluster.wait_for(lambda: "r1" in routers(root), 10, "registration before init")
        init(root)
        w.wait_map(1)
        # one-shot watches must be re-armed: every one of several changes arrives
        for i in range(2, 7):
            t0 = time.monotonic()
            ctl(root, "set-master", "s1", "127.0.0.1:%d" % (14000 + i))
            line = w.wait_map(i)
            assert "s1=127.0.0.1:%d" % (14000 + i) in line, line
            assert time.monotonic() - t0 < 5
        assert w.count("map version=") == 6       # no duplicates, none missed
        # the registration follows the map version in use
        cluster.wait_for(lambda: routers(root)["r1"].get("map_version") == 6, 10,
                         "registration at version 6")
        human = ctl(root, "status").stdout
        assert "r1" in human and "map_version=6" in human, human
    finally:
        assert w.stop() == 0


def test_invalid_data_is_refused_and_old_map_kept():
    root = "/w-invalid"
    init(root)
    w = Watch(root)
    try:
        w.wait_map(1)
        # a hand edit that breaks the map, then a version bump to announce it
        zkcli_set(root + "/vbmap", "vb 0-31 s0\nvb 32-63 s9")
        zkcli_set(root + "/version", "2")
        w.wait(lambda l: l.startswith("log error zkstore: invalid map in ZooKeeper, keeping "
                                      "version 1: map version 2 at /w-invalid: vbmap: line 2"),
               10, "invalid-map error")
        assert w.count("map version=") == 1
        # repaired: the next version is taken
        zkcli_set(root + "/vbmap", "vb 0-31 s1\nvb 32-63 s0")
        zkcli_set(root + "/version", "3")
        w.wait_map(3)
        assert w.count("map version=2") == 0
    finally:
        assert w.stop() == 0


def test_older_version_is_ignored():
    """Versions only grow; a map that goes back (a restored backup, a
    re-created cluster, a lagging server) must not be applied."""
    root = "/w-older"
    init(root)
    ctl(root, "set-master", "s0", "127.0.0.1:19001")
    w = Watch(root)
    try:
        w.wait_map(2)
        zkcli_set(root + "/version", "1")
        w.wait(lambda l: "holds map version 1, older than version 2 in use; ignored" in l, 10,
               "older-version error")
        zkcli_set(root + "/version", "3")
        w.wait_map(3)
        assert w.count("map version=1") == 0
    finally:
        assert w.stop() == 0


def test_zookeeper_down_and_back():
    root = "/w-down"
    init(root)
    w = Watch(root, "r-down")
    try:
        w.wait_map(1)
        age, state = w.contact_age_ms()
        assert state == "connected" and age < 3000, (age, state)
        zk.stop()
        w.wait(lambda l: l == "state disconnected", 20, "disconnect")
        # the silence is timed by us (the client reports no expiry meanwhile)
        cluster.wait_for(lambda: w.contact_age_ms()[0] > 3000, 20, "contact age growing")
        assert w.count("state expired") == 0
        zk.start()
        w.wait(lambda l: l == "state connected" and w.count("state connected") >= 2, 30,
               "reconnection")
        ctl(root, "set-master", "s0", "127.0.0.1:15000")
        w.wait_map(2)
        age, state = w.contact_age_ms()
        assert state == "connected" and age < 3000, (age, state)
        cluster.wait_for(lambda: routers(root).get("r-down", {}).get("map_version") == 2, 10,
                         "registration after ZooKeeper came back")
    finally:
        if not zk.alive():
            zk.start()
        assert w.stop() == 0


def test_cut_off_alone_catches_up():
    """A watcher frozen (as if cut off) while the map changes twice gets the
    newest map when it comes back, within its session."""
    root = "/w-cutoff"
    init(root)
    a, b = Watch(root), Watch(root)
    try:
        a.wait_map(1)
        b.wait_map(1)
        b.p.send_signal(signal.SIGSTOP)
        ctl(root, "set-master", "s0", "127.0.0.1:16001")
        ctl(root, "set-master", "s0", "127.0.0.1:16002")
        a.wait_map(3)
        b.p.send_signal(signal.SIGCONT)
        line = b.wait_map(3)
        assert "s0=127.0.0.1:16002" in line
        assert b.count("state expired") == 0
    finally:
        assert a.stop() == 0
        assert b.stop() == 0


def test_session_expiry_restores_registration_and_watch():
    root = "/w-expiry"
    init(root)
    w = Watch(root, "r-exp")
    try:
        w.wait_map(1)
        cluster.wait_for(lambda: "r-exp" in routers(root), 10, "registration")
        w.p.send_signal(signal.SIGSTOP)
        # the server expires the silent session and drops its ephemeral node
        cluster.wait_for(lambda: "r-exp" not in routers(root), SESSION_S + 10,
                         "ephemeral node removed by expiry")
        ctl(root, "set-master", "s1", "127.0.0.1:17000")
        w.p.send_signal(signal.SIGCONT)
        w.wait(lambda l: l == "state expired", 30, "expiry noticed")
        w.wait_map(2, timeout=30)
        cluster.wait_for(lambda: routers(root).get("r-exp", {}).get("map_version") == 2, 20,
                         "registration restored on the new session")
        # and the watch of the new session works
        ctl(root, "set-master", "s1", "127.0.0.1:17001")
        w.wait_map(3)
    finally:
        assert w.stop() == 0


def test_clean_exit_removes_registration_at_once():
    root = "/w-exit"
    init(root)
    w = Watch(root, "r-exit")
    try:
        w.wait_map(1)
        cluster.wait_for(lambda: "r-exit" in routers(root), 10, "registration")
    finally:
        assert w.stop() == 0
    t0 = time.monotonic()
    assert "r-exit" not in routers(root)
    assert time.monotonic() - t0 < SESSION_S / 2


def test_ensemble_leader_killed():
    ens = cluster.ZooKeeperEnsemble(3)
    root = "/w-ensemble"
    w = None
    try:
        init(root, hosts=ens.hosts)
        w = Watch(root, "r-ens", hosts=ens.hosts)
        w.wait_map(1)
        leader = ens.leader()
        assert leader is not None
        ens.kill(leader)
        # the two survivors elect a leader; a change then goes through
        def changed():
            r = ctl(root, "--timeout", "3", "set-master", "s0", "127.0.0.1:18000",
                    hosts=ens.hosts, check=False)
            return r.returncode == 0
        cluster.wait_for(changed, 60, "set-master after the leader was killed", interval=0.5)
        w.wait_map(2, timeout=30)
        cluster.wait_for(lambda: routers(root, hosts=ens.hosts).get("r-ens", {})
                         .get("map_version") == 2, 30, "registration on the ensemble")
    finally:
        if w is not None:
            assert w.stop() == 0
        ens.stop()

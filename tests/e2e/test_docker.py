"""
tests/e2e/test_docker.py - the packaged cluster of docker/ (issue 14), with
real dockerd and real docker-compose: docker/up.sh builds the image from
this checkout and starts 3 ZooKeeper nodes, two semi-sync shards with
standbys, two routers and HAProxy; statements go through HAProxy; one router
is killed and HAProxy's health check (each router's admin /health) must take
it out so that new connections keep working.

Where no container runtime can run here (docker/dockerd-up.sh cannot start
dockerd: not root, no namespaces or cgroups), every test prints
"SKIPPED: <reason>" and passes; anywhere else the cluster really runs.

The cluster is a compose project of its own (shardwire-e2e, subnet
172.30.78.0/24, free host ports), so a cluster started by docker/up.sh stays
untouched. The images are kept as the cache: the first run on a machine
makes the base image and builds everything (minutes), later runs reuse them
(docs/operations.md "Running the packaged cluster").
"""

import csv
import io
import os
import re
import signal
import subprocess
import time
import urllib.request

import pymysql

import cluster

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCKER = os.path.join(ROOT, "docker")
PROJECT = "shardwire-e2e"
APP_PW = "app-pw"
SKIP = None            # the reason no container runtime can run here
# On a machine without the images, debootstrap and the image build take
# minutes more than the default module timeout (runner.py reads this).
MODULE_TIMEOUT = 720
# It builds images and runs a cluster of containers: both cores (runner.py).
RUN_ALONE = True
STARTED_DOCKERD = False
ENV = None
PORT = None
STATS_PORT = None
TIMINGS = {}


def compose(*args, check=True, timeout=120):
    r = subprocess.run(["docker-compose", "-f", os.path.join(DOCKER, "compose.yml"),
                        "--env-file", ENV["SW_ENV_FILE"]] + list(args),
                       env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("docker-compose %s: exit %d\n%s%s" %
                             (" ".join(args), r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
    return r.stdout


def skipped():
    if SKIP:
        print("SKIPPED: %s" % SKIP)
        return True
    return False


def setup_module():
    global SKIP, STARTED_DOCKERD, ENV, PORT, STATS_PORT
    # Building the images the first time takes minutes, more than a test's
    # usual soft timeout; the module's hard timeout still bounds it.
    signal.alarm(int(os.environ.get("SW_DOCKER_SETUP_TIMEOUT", "900")))
    for tool, pkg in (("docker", "docker.io"), ("dockerd", "docker.io"),
                      ("docker-compose", "docker-compose"), ("debootstrap", "debootstrap")):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode:
            raise AssertionError("%s is missing: install Debian's %s (tools/deps.sh)" % (tool, pkg))
    already = subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    r = subprocess.run([os.path.join(DOCKER, "dockerd-up.sh")], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        SKIP = "no container runtime can run here: " + (r.stderr.strip() or r.stdout.strip())
        print("SKIPPED: %s" % SKIP)
        return
    STARTED_DOCKERD = not already
    PORT, STATS_PORT = cluster.free_port(), cluster.free_port()
    ENV = dict(os.environ,
               COMPOSE_PROJECT_NAME=PROJECT,
               SW_ENV_FILE=os.path.join(cluster.tmp_root(), "docker.env"),
               SW_NET=os.environ.get("SW_DOCKER_TEST_NET", "172.30.78"),
               SW_PORT=str(PORT), SW_HAPROXY_STATS_PORT=str(STATS_PORT),
               SW_ROUTER1_ADMIN_PORT=str(cluster.free_port()),
               SW_ROUTER2_ADMIN_PORT=str(cluster.free_port()),
               SW_APP_PASSWORD=APP_PW, SW_WAIT="240")
    # Leftovers of an interrupted earlier run of this test.
    subprocess.run(["docker-compose", "-f", os.path.join(DOCKER, "compose.yml"), "down",
                    "--remove-orphans", "-t", "5"], env=ENV, cwd=ROOT, capture_output=True,
                   timeout=120)
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(DOCKER, "up.sh")], env=ENV, cwd=ROOT, capture_output=True,
                       text=True, timeout=int(os.environ.get("SW_DOCKER_SETUP_TIMEOUT", "900")))
    TIMINGS["up"] = time.monotonic() - t0
    print("docker/up.sh took %.0fs" % TIMINGS["up"])
    print("\n".join(l for l in r.stdout.splitlines() if l.startswith(("up:", "mkbase:", "dockerd"))))
    if r.returncode != 0:
        raise AssertionError("docker/up.sh failed (exit %d):\n%s\n%s" %
                             (r.returncode, r.stdout[-4000:], r.stderr[-4000:]))


def teardown_module():
    if SKIP or ENV is None:
        return
    try:
        t0 = time.monotonic()
        compose("down", "--remove-orphans", "-t", "10")
        print("docker-compose down took %.0fs" % (time.monotonic() - t0))
    finally:
        if STARTED_DOCKERD:
            subprocess.run([os.path.join(DOCKER, "dockerd-up.sh"), "--stop"], timeout=60)


def connect(timeout=5):
    return pymysql.connect(host="127.0.0.1", port=PORT, user="app", password=APP_PW,
                           database="app", connect_timeout=timeout, read_timeout=10,
                           write_timeout=10, autocommit=True)


def roundtrip(userid, rowid, name):
    """One fresh connection through HAProxy: insert a row, read it back."""
    c = connect()
    try:
        with c.cursor() as cur:
            cur.execute("INSERT INTO accounts (userid, id, name) VALUES (%s, %s, %s)",
                        (userid, rowid, name))
            cur.execute("SELECT name FROM accounts WHERE userid = %s AND id = %s",
                        (userid, rowid))
            return cur.fetchall()
    finally:
        c.close()


def shard_rows(service):
    """Rows of app.accounts on a shard's master, read directly (root over
    the socket inside its container), not through any router."""
    out = compose("exec", "-T", service, "mariadb", "--no-defaults", "-uroot",
                  "-S", "/run/mysqld.sock", "-N", "-e",
                  "SELECT userid, id FROM app.accounts")
    return {tuple(int(x) for x in line.split("\t")) for line in out.splitlines() if line}


def haproxy_stats():
    """{router: its row of HAProxy's stats CSV}."""
    with urllib.request.urlopen("http://127.0.0.1:%d/;csv" % STATS_PORT, timeout=5) as r:
        text = r.read().decode().lstrip("# ")
    return {row["svname"]: row for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == "routers" and row["svname"].startswith("router")}


def haproxy_states():
    """{router: status} as HAProxy sees it: UP, DOWN, ..."""
    return {name: row["status"] for name, row in haproxy_stats().items()}


def test_statements_through_haproxy():
    if skipped():
        return
    # docker/up.sh returns once HAProxy sees both routers UP.
    assert haproxy_states() == {"router1": "UP", "router2": "UP"}, haproxy_states()
    # The check is HTTP (layer 7) on the admin port's /health, not a mere
    # TCP connect to the app port.
    checks = {n: r["check_status"] for n, r in haproxy_stats().items()}
    assert checks == {"router1": "L7OK", "router2": "L7OK"}, checks
    users = list(range(1, 41))
    for u in users:
        assert roundtrip(u, 1, "user%d" % u) == (("user%d" % u,),)
    # The rows are spread over both shards, each row on exactly one.
    s0, s1 = shard_rows("s0"), shard_rows("s1")
    assert s0 and s1, (s0, s1)
    assert s0 | s1 == {(u, 1) for u in users} and not s0 & s1, (s0, s1)
    # and replicated to each shard's standby
    cluster.wait_for(lambda: shard_rows("s0-sb") == s0 and shard_rows("s1-sb") == s1, 30,
                     "rows on the standbys")
    # HAProxy sends the PROXY protocol: the routers log the client (this
    # host, on the compose network's gateway side), never HAProxy (.50).
    logs = compose("logs", "--no-color", "router1", "router2")
    peers = re.findall(r"session end id=\d+ peer=([0-9.]+):\d+ user=app", logs)
    assert peers, logs[-3000:]
    assert not [p for p in peers if p.endswith(".50")], set(peers)


def test_router_killed_traffic_continues():
    if skipped():
        return
    assert roundtrip(7777, 1, "before-kill") == (("before-kill",),)
    compose("kill", "router1")
    t_kill = time.monotonic()
    # HAProxy's check of router1's admin /health fails: it is taken out.
    cluster.wait_for(lambda: haproxy_states().get("router1", "").startswith("DOWN"), 30,
                     "HAProxy marking the killed router1 DOWN")
    print("router1 marked DOWN %.1fs after the kill" % (time.monotonic() - t_kill))
    assert haproxy_states()["router2"] == "UP", haproxy_states()
    # Every new connection now works (each a fresh HAProxy session).
    for i in range(30):
        assert roundtrip(1000 + i, 2, "after-kill-%d" % i) == (("after-kill-%d" % i,),)
    # A row written before the kill is still there, now through router2.
    c = connect()
    try:
        with c.cursor() as cur:
            cur.execute("SELECT name FROM accounts WHERE userid = 7777")
            assert cur.fetchall() == (("before-kill",),)
    finally:
        c.close()

"""
tests/e2e/test_console.py - the web status console (issue 14): the router
serves it at / on its admin listener, and a real headless browser (Debian's
chromium) loads it against a live cluster: shards with their master and
standby and each one's health, the vbucket grid coloured by shard, and the
new master after a master change.
"""

import html.parser
import os
import shutil
import signal
import subprocess
import urllib.request

import cluster
from cluster import addr

C = None
PORT = None
CHROMIUM = "/usr/bin/chromium"


class Dom(html.parser.HTMLParser):
    """The elements of a dumped DOM: (tag, attrs dict, text) in order."""

    def __init__(self, text):
        super().__init__()
        self.elems, self.stack = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        e = [tag, dict(attrs), ""]
        self.elems.append(e)
        if tag not in ("br", "i", "meta"):
            self.stack.append(e)

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        for e in self.stack:
            e[2] += data

    def by_id(self, i):
        return [e for e in self.elems if e[1].get("id") == i]

    def having(self, attr, value=None):
        return [e for e in self.elems if attr in e[1] and (value is None or e[1][attr] == value)]


def browse(port=None):
    """Loads the console of the router with admin port <port> (default:
    this module's) in headless chromium; returns its DOM after the page's
    scripts have read /status."""
    cluster.require(CHROMIUM, "chromium")
    profile = os.path.join(cluster.tmp_root(), "chromium-profile-%d" % (port or PORT))
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--disable-background-networking",
                        "--user-data-dir=" + profile,
                        "--virtual-time-budget=4000", "--dump-dom",
                        "http://127.0.0.1:%d/" % (port or PORT)],
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-2000:]
    return Dom(r.stdout)


def setup_module():
    global C, PORT
    C = cluster.Cluster(2, standbys=1, start_router=False)
    PORT = cluster.free_port()
    C.start_router({"admin_listen": PORT, "control_user": cluster.CONTROL_USER,
                    "control_password": cluster.CONTROL_PASSWORD, "health_interval_ms": 200})


def teardown_module():
    C.stop()



def wait_page(pred, what, port=None):
    """Reloads the page until <pred>(dom) holds."""
    last = {}

    def ok():
        last["dom"] = browse(port)
        return pred(last["dom"])
    cluster.wait_for(ok, 60, what, interval=0.5)
    return last["dom"]


def test_console_shows_the_cluster():
    def all_up(d):
        return len([e for e in d.having("data-verdict", "up")]) == 4
    dom = wait_page(all_up, "every server up on the console")
    assert "ready" in dom.by_id("ready")[0][2]
    assert dom.by_id("map-version")[0][2] == "1"
    for name in ("s0", "s1"):
        row = dom.by_id("shard-" + name)
        assert row, "no row for " + name
        assert addr(C.shards[name]) in row[0][2] and addr(C.standbys[name][0]) in row[0][2]
    servers = {e[1]["data-server"]: e[1]["data-verdict"] for e in dom.having("data-server")}
    assert servers[addr(C.shards["s0"])] == "up"
    assert servers[addr(C.standbys["s1"][0])] == "up"
    cells = dom.having("data-vb")
    assert len(cells) == 1024
    owners = [e[1].get("data-shard") for e in cells]
    assert owners.count("s0") == 512 and owners.count("s1") == 512
    assert owners[0] == "s0" and owners[1023] == "s1"


def test_console_follows_a_master_change_and_a_dead_server():
    # The map names s0's standby as master (version 2); the old master goes.
    text = cluster.map_text([("s0", addr(C.standbys["s0"][0])),
                             ("s1", addr(C.shards["s1"]), [addr(C.standbys["s1"][0])])])
    text = text.replace("version 1", "version 2")
    with open(C.map_file, "w") as f:
        f.write(text)
    C.router.proc.send(signal.SIGHUP)
    C.standbys["s1"][0].kill(signal.SIGSTOP)
    try:
        def changed(d):
            servers = {e[1]["data-server"]: e[1]["data-verdict"] for e in d.having("data-server")}
            return (d.by_id("map-version") and d.by_id("map-version")[0][2] == "2" and
                    servers.get(addr(C.standbys["s1"][0])) == "down")
        dom = wait_page(changed, "the console shows map version 2 and the stopped standby down")
    finally:
        C.standbys["s1"][0].kill(signal.SIGCONT)
    row = dom.by_id("shard-s0")[0][2]
    assert addr(C.standbys["s0"][0]) in row and addr(C.shards["s0"]) not in row, row


def test_console_marks_frozen_vbuckets_and_has_no_cluster_view_from_a_file():
    # A move's cutover freezes vbuckets (docs/moves.md); the map file can say so too.
    text = cluster.map_text([("s0", addr(C.standbys["s0"][0])),
                             ("s1", addr(C.shards["s1"]), [addr(C.standbys["s1"][0])])])
    text = text.replace("version 1", "version 3").replace(
        "vb 0-511 s0", "vb 0-9 s0\nvb 10-12 s0 frozen\nvb 13-511 s0")
    with open(C.map_file, "w") as f:
        f.write(text)
    C.router.proc.send(signal.SIGHUP)

    def frozen(d):
        return d.by_id("map-version") and d.by_id("map-version")[0][2] == "3"
    dom = wait_page(frozen, "the console shows map version 3")
    states = {int(e[1]["data-vb"]): e[1].get("data-state") for e in dom.having("data-vb")}
    assert sorted(v for v, st in states.items() if st == "frozen") == [10, 11, 12], states
    assert states[9] == "normal" and states[13] == "normal" and states[600] == "normal"
    # without ZooKeeper there are no other routers, failovers or moves to list
    assert "from a file" in dom.by_id("cluster-note")[0][2]
    assert not [e for e in dom.elems if e[1].get("id", "").startswith("router-")]
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % PORT, timeout=10).read().decode()
    assert "\nshardwire_map_frozen_vbuckets 3\n" in body
    assert "shardwire_cluster_routers" not in body

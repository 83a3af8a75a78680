"""
tests/e2e/test_console_cluster.py - the web console of a router on
ZooKeeper (issue 14, item 2), loaded in real headless chromium: the live
routers and the map version each one runs, each shard's term, traffic per
shard, the switchover it just went through in the recent failovers, and a
finished vbucket move. Real ZooKeeper, a replicated MariaDB shard (s0) and
a plain one (s1), two real routers, real `shardctl switchover` and `move`.
"""

import json
import os
import subprocess
import urllib.request

import cluster
from cluster import addr
from ledger import LEDGER_DDL
import test_console

ZK = None
S0 = None
S0_SB = []
S1 = None
ROUTERS = []
ADMIN = None


def ctl(*args, check=True):
    argv = [cluster.shardctl_path(), "--zk", ZK.hosts, "--timeout", "3"] + list(args)
    e = dict(os.environ)
    e.update({"SHARDWIRE_CONTROL_USER": cluster.CONTROL_USER,
              "SHARDWIRE_CONTROL_PASSWORD": cluster.CONTROL_PASSWORD,
              "SHARDWIRE_REPL_USER": cluster.REPL_USER,
              "SHARDWIRE_REPL_PASSWORD": cluster.REPL_PASSWORD})
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=e)
    if check:
        assert r.returncode == 0, (argv, r.returncode, r.stdout, r.stderr)
    return r


def wait_page(pred, what):
    return test_console.wait_page(pred, what, port=ADMIN)


def setup_module():
    global ZK, S0, S1, ADMIN
    ZK = cluster.ZooKeeper()
    # shardctl move reads and writes the app's rows and the source's binary
    # log with the control account (docs/moves.md)
    grants = ["GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO '%s'@'127.0.0.1'"
              % cluster.CONTROL_USER,
              "GRANT REPLICATION SLAVE ON *.* TO '%s'@'127.0.0.1'" % cluster.CONTROL_USER]
    S0, sbs = cluster.replicated_shard("s0", 1, [LEDGER_DDL] + grants)
    S0_SB.extend(sbs)
    S1 = cluster.MariaDB("s1")
    for stmt in [LEDGER_DDL] + grants:
        S1.sql(stmt)
    ctl("init", "--acl", "open", "--vbuckets", "64",
        "--shard", cluster.shard_spec("s0", S0, S0_SB), "--shard", "s1=" + addr(S1))
    ADMIN = cluster.free_port()
    for name, extra in (("ra", {"admin_listen": ADMIN}), ("rb", {})):
        cfg = {"zookeeper": ZK.hosts, "router_id": name,
               "map_cache": os.path.join(cluster.tmp_root(), "%s.map.cache" % name),
               "control_user": cluster.CONTROL_USER,
               "control_password": cluster.CONTROL_PASSWORD, "health_interval_ms": 200}
        cfg.update(extra)
        ROUTERS.append(cluster.Router(cfg))


def teardown_module():
    for r in ROUTERS:
        r.stop(check=False)
    for db in [S0, S1] + S0_SB:
        if db:
            db.stop()
    if ZK:
        ZK.stop()


def after(dom, elem, attr):
    """The value of <attr> on the first element after <elem> that has it
    (the DOM is in document order: a cell of <elem>'s row)."""
    i = next(k for k, e in enumerate(dom.elems) if e is elem)
    return next(e[1][attr] for e in dom.elems[i + 1:] if attr in e[1])


def test_console_shows_routers_terms_traffic_failovers_and_moves():
    # traffic: statements through router ra for users on each shard
    conn = ROUTERS[0].connect()
    with conn.cursor() as c:
        for u in range(1, 41):
            c.execute("INSERT INTO ledger (userid, id, writer) VALUES (%s, 1, 0)", (u,))
    conn.close()

    def both_routers(d):
        ids = {e[1]["id"] for e in d.elems if e[0] == "tr" and
               e[1].get("id", "").startswith("router-")}
        return ids == {"router-ra", "router-rb"}
    dom = wait_page(both_routers, "both routers listed on the console")
    for rid in ("ra", "rb"):
        row = dom.by_id("router-" + rid)[0]
        assert row[1].get("data-map-version") == "1", row
    assert addr(ROUTERS[0]) in dom.by_id("router-ra")[0][2]
    # a link to ra's own console (admin_listen is a bare port)
    assert after(dom, dom.by_id("router-ra")[0], "href") == "http://127.0.0.1:%d/" % ADMIN
    stmts = {n: int(after(dom, dom.by_id("shard-" + n)[0], "data-statements"))
             for n in ("s0", "s1")}
    assert sum(stmts.values()) >= 40 and min(stmts.values()) > 0, stmts
    term0 = [e for e in dom.having("data-term")]
    assert len(term0) == 2 and all(e[1]["data-term"] == "0" for e in term0), term0

    # a switchover of s0: term 1, the history names it, the map moves on
    ctl("switchover", "s0")
    ctl("move", "60-61", "--to", "s0", "--database", "app")

    def changed(d):
        terms = {e[1]["data-term"] for e in d.having("data-term")}
        fo = [e for e in d.elems if e[0] == "tr" and e[1].get("class") == "failover"]
        mv = [e for e in d.elems if e[0] == "tr" and e[1].get("id", "").startswith("move-")]
        vers = {e[1].get("data-map-version") for e in d.elems if e[0] == "tr" and
                e[1].get("id", "").startswith("router-")}
        return ("1" in terms and fo and mv and mv[0][1].get("data-phase") == "done" and
                vers == {d.by_id("map-version")[0][2]})
    dom = wait_page(changed, "term 1, the switchover, the move done and both routers on the new map")
    fo = [e for e in dom.elems if e[0] == "tr" and e[1].get("class") == "failover"][0]
    assert fo[1]["data-shard"] == "s0" and fo[1]["data-kind"] == "switchover", fo
    assert addr(S0) in fo[2] and addr(S0_SB[0]) in fo[2], fo
    mv = [e for e in dom.elems if e[0] == "tr" and e[1].get("id", "").startswith("move-")][0]
    assert "60-61" in mv[2] and "s1" in mv[2], mv
    owners = {int(e[1]["data-vb"]): e[1].get("data-shard") for e in dom.having("data-vb")}
    assert len(owners) == 64 and owners[60] == "s0" and owners[61] == "s0", owners
    assert json.loads(ctl("--json", "status").stdout)["version"] == int(
        dom.by_id("map-version")[0][2])
    # the same view as cluster-wide gauges in /metrics
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % ADMIN, timeout=10).read().decode()
    values = dict(l.rsplit(" ", 1) for l in body.splitlines() if l and not l.startswith("#"))
    assert values["shardwire_cluster_routers"] == "2", values
    assert values["shardwire_cluster_moves_running"] == "0"
    assert values["shardwire_cluster_failovers_running"] == "0"
    assert values["shardwire_map_frozen_vbuckets"] == "0"

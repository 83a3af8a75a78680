"""
tests/e2e/test_shardctl.py - shardctl against a real standalone ZooKeeper:
init/status/add-shard/set-master/routers/dump-map/explain, the ZooKeeper
layout as zkCli shows it, compare-and-set conflicts between two processes,
invalid data in ZooKeeper, and the errors and exit codes for an
unreachable ZooKeeper or a missing cluster (docs/shardctl.md).

Each test works under its own --root, so tests do not depend on each other.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import cluster

zk = None

EXIT_OK, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_CONFLICT, EXIT_INVALID, EXIT_FAILED, EXIT_EXISTS = \
    0, 1, 2, 3, 4, 5, 6


def setup_module():
    global zk
    zk = cluster.ZooKeeper()


def teardown_module():
    zk.stop()


def shardctl_bin():
    path = cluster.shardctl_path()
    cluster._check_built(path)
    if not os.access(path, os.X_OK):
        raise cluster.HarnessError("shardctl binary %s not found (build it, or set "
                                   "SW_SHARDCTL / SW_BUILD_DIR)" % path)
    return path


def run(*args, root=None, hosts=None, env=None, timeout=30):
    """shardctl --zk <hosts> --root <root> ARGS -> CompletedProcess (text)."""
    argv = [shardctl_bin(), "--zk", hosts or zk.hosts]
    if root:
        argv += ["--root", root]
    e = dict(os.environ)
    e.pop("SHARDWIRE_ZK", None)
    e.update(env or {})
    return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=timeout,
                          env=e)


def ok(*args, **kw):
    r = run(*args, **kw)
    assert r.returncode == 0, "shardctl %s: rc=%d\nstdout: %s\nstderr: %s" % (
        " ".join(args), r.returncode, r.stdout, r.stderr)
    return r


def status(root):
    return json.loads(ok("--json", "status", root=root).stdout)


def zkcli_get(path):
    """The node's data as ZooKeeper's own Java CLI prints it."""
    argv = [cluster.JAVA, "-cp", ":".join(cluster.ZK_JARS + ["/usr/share/java/*"]),
            "org.apache.zookeeper.ZooKeeperMain", "-server", zk.hosts, "get", path]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    # after the connection banner ("WatchedEvent state:SyncConnected ...")
    i = max(i for i, l in enumerate(lines) if l.startswith("WatchedEvent"))
    return "\n".join(lines[i + 1:]).strip()


def zkcli_set(path, data):
    argv = [cluster.JAVA, "-cp", ":".join(cluster.ZK_JARS + ["/usr/share/java/*"]),
            "org.apache.zookeeper.ZooKeeperMain", "-server", zk.hosts, "set", path, data]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]


def init2(root, *extra):
    return ok("init", "--acl", "open", "--shard", "s0=127.0.0.1:13306,standby=127.0.0.1:13307",
              "--shard", "s1=127.0.0.1:13316", *extra, root=root)


# ------------------------------------------------------------------ tests

def test_unreachable_zookeeper():
    port = cluster.free_port()      # nothing listens there
    t0 = time.monotonic()
    r = run("--timeout", "1", "status", hosts="127.0.0.1:%d" % port)
    took = time.monotonic() - t0
    assert r.returncode == EXIT_UNREACHABLE, (r.returncode, r.stderr)
    assert "cannot reach ZooKeeper at 127.0.0.1:%d within 1000 ms" % port in r.stderr, r.stderr
    assert r.stdout == ""
    assert took < 5, "the --timeout deadline was not kept: %.1fs" % took
    # every ZooKeeper verb reports it the same way
    for args in (["routers"], ["dump-map"], ["set-master", "s0", "h:1"],
                 ["init", "--acl", "open", "--shard", "s0=h:1"], ["explain", "SELECT 1"]):
        r = run("--timeout", "0.5", *args, hosts="127.0.0.1:%d" % port)
        assert r.returncode == EXIT_UNREACHABLE, (args, r.returncode, r.stderr)
        assert "cannot reach ZooKeeper" in r.stderr, (args, r.stderr)


def test_missing_cluster():
    for args in (["status"], ["dump-map"], ["set-master", "s0", "127.0.0.1:1"],
                 ["add-shard", "s9", "127.0.0.1:1"]):
        r = run(*args, root="/sw-missing")
        assert r.returncode == EXIT_UNREACHABLE, (args, r.returncode, r.stderr)
        assert "no cluster at /sw-missing" in r.stderr and "shardctl init" in r.stderr, r.stderr
    # routers works before init (routers may register first): empty list
    r = ok("--json", "routers", root="/sw-missing")
    assert json.loads(r.stdout)["routers"] == []


def test_init_and_status():
    root = "/sw-init"
    r = init2(root, "--vbuckets", "256")
    assert "map version 1, 256 vbuckets" in r.stdout, r.stdout
    st = status(root)
    assert st["version"] == 1 and st["vbuckets"] == 256, st
    assert st["key_columns"] == ["userid"] and st["key_type"] == "int", st
    assert [(s["name"], s["master"], s["standbys"], s["vbuckets"]) for s in st["shards"]] == [
        ("s0", "127.0.0.1:13306", ["127.0.0.1:13307"], 128),
        ("s1", "127.0.0.1:13316", [], 128)], st
    assert st["routers"] == []

    human = ok("status", root=root).stdout
    assert "map version 1, 256 vbuckets, key userid (int)" in human, human
    # The map table: from its header to the first blank line.
    lines = human.splitlines()
    first = [i for i, l in enumerate(lines) if l.startswith("SHARD  VBUCKETS")][0] + 1
    rows = [l.split() for l in lines[first:lines.index("", first)]]
    assert rows == [["s0", "128", "127.0.0.1:13306", "127.0.0.1:13307"],
                    ["s1", "128", "127.0.0.1:13316", "-"]], human
    # The failover part: no coordinator, term 0, nothing in progress yet.
    assert "coordinator: (none" in human and "in progress: none" in human, human
    assert re.search(r"^s0 +0 +- +master +127\.0\.0\.1:13306 +no view", human, re.M), human
    assert "recent history: none\n" in human, human
    assert st["coordinator"] is None and st["in_progress"] == [] and st["history"] == [], st
    assert st["shards"][0]["term"] == 0 and st["shards"][0]["failover"] == {}, st
    assert "no live routers" in human

    # a second init never overwrites
    r = run("init", "--acl", "open", "--shard", "x=127.0.0.1:1", root=root)
    assert r.returncode == EXIT_EXISTS, (r.returncode, r.stderr)
    assert "a cluster already exists at /sw-init" in r.stderr
    assert status(root)["shards"][0]["name"] == "s0"


def test_init_options_and_refusals():
    root = "/sw-init-opts"
    ok("init", "--acl", "open", "--vbuckets", "7", "--key-columns", "userid,user_id", "--key-type", "string",
       "--shard", "a=127.0.0.1:1", "--shard", "b=127.0.0.1:2", "--shard", "c=127.0.0.1:3",
       root=root)
    st = status(root)
    assert st["key_columns"] == ["userid", "user_id"] and st["key_type"] == "string", st
    assert sorted(s["vbuckets"] for s in st["shards"]) == [2, 2, 3], st

    cases = [
        (["init"], EXIT_USAGE, "at least one --shard"),
        (["init", "--shard", "s0"], EXIT_USAGE, "expected NAME=HOST:PORT"),
        (["init", "--shard", "s0=127.0.0.1:70000"], EXIT_USAGE, "port 70000 out of range"),
        (["init", "--shard", "s0=h:1,weight=2"], EXIT_USAGE, "unknown part 'weight=2'"),
        (["init", "--shard", "s0=h:1", "--shard", "s1=h:1"], EXIT_INVALID,
         "h:1 is already used by shard 's0'"),
        (["init", "--shard", "s0=h:1", "--shard", "s0=h:2"], EXIT_INVALID, "defined twice"),
        (["init", "--shard", "a/b=h:1"], EXIT_INVALID, "bad character"),
        (["init", "--vbuckets", "2000000", "--shard", "s0=h:1"], EXIT_INVALID, "out of range"),
        (["init", "--key-type", "float", "--shard", "s0=h:1"], EXIT_USAGE, "int or string"),
    ]
    for args, code, msg in cases:
        r = run(*args, root="/sw-refused")
        assert r.returncode == code and msg in r.stderr, (args, r.returncode, r.stderr)
    # nothing was created by the refusals
    assert run("status", root="/sw-refused").returncode == EXIT_UNREACHABLE


def test_zookeeper_layout_readable_with_zkcli():
    root = "/sw-layout"
    init2(root, "--vbuckets", "16")
    assert zkcli_get(root + "/version") == "1"
    assert zkcli_get(root + "/settings") == "vbuckets 16\nkey_columns userid\nkey_type int"
    assert zkcli_get(root + "/vbmap") == "vb 0-7 s0\nvb 8-15 s1"
    assert zkcli_get(root + "/shards/s0") == "master=127.0.0.1:13306 standby=127.0.0.1:13307"
    assert zkcli_get(root + "/shards/s1") == "master=127.0.0.1:13316"
    ok("set-master", "s1", "127.0.0.1:13399", root=root)
    assert zkcli_get(root + "/version") == "2"
    assert zkcli_get(root + "/shards/s1") == "master=127.0.0.1:13399"


def test_dump_map_is_a_map_file():
    root = "/sw-dump"
    init2(root, "--vbuckets", "64")
    text = ok("dump-map", root=root).stdout
    assert text == ("version 1\nvbuckets 64\nkey_columns userid\nkey_type int\n"
                    "shard s0 master=127.0.0.1:13306 standby=127.0.0.1:13307\n"
                    "shard s1 master=127.0.0.1:13316\nvb 0-31 s0\nvb 32-63 s1\n"), text
    path = os.path.join(cluster.tmp_root(), "dumped.map")
    with open(path, "w") as f:
        f.write(text)
    # the file loads back (no ZooKeeper needed) to the same text
    r = subprocess.run([shardctl_bin(), "dump-map", "--map", path], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and r.stdout == text, (r.returncode, r.stderr)


def test_frozen_vbuckets_shown():
    """A move's cutover freezes vbuckets in the map (docs/zookeeper.md, "Vbucket
    states"): dump-map keeps the state, status lists it, and a change made
    meanwhile (set-master) keeps it."""
    root = "/sw-frozen"
    init2(root, "--vbuckets", "16")
    zkcli_set(root + "/vbmap", "vb 0-4 s0\nvb 5-6 s0 frozen\nvb 7 s0\nvb 8-15 s1")
    text = ok("dump-map", root=root).stdout
    assert "vb 0-4 s0\nvb 5-6 s0 frozen\nvb 7 s0\nvb 8-15 s1\n" in text, text
    st = status(root)
    assert st["frozen"] == [{"first": 5, "last": 6, "shard": "s0", "state": "frozen"}], st
    assert [s["vbuckets"] for s in st["shards"]] == [8, 8], st
    table = ok("status", root=root).stdout
    assert "frozen for a move's cutover" in table and "vb 5-6 on s0" in table, table
    ok("set-master", "s1", "127.0.0.1:13398", root=root)
    assert "vb 5-6 s0 frozen" in ok("dump-map", root=root).stdout
    assert zkcli_get(root + "/vbmap") == "vb 0-4 s0\nvb 5-6 s0 frozen\nvb 7 s0\nvb 8-15 s1"
    # an unknown state is refused like any invalid map, naming it
    zkcli_set(root + "/vbmap", "vb 0-7 s0 melted\nvb 8-15 s1")
    r = run("status", root=root)
    assert r.returncode == EXIT_INVALID and "unknown state 'melted'" in r.stderr, r.stderr
    # no frozen vbucket: the JSON list is empty, the text as before states
    zkcli_set(root + "/vbmap", "vb 0-7 s0\nvb 8-15 s1")
    assert status(root)["frozen"] == []


def test_add_shard():
    root = "/sw-add"
    init2(root)
    r = ok("add-shard", "s2", "127.0.0.1:13326", "--standby", "127.0.0.1:13327", root=root)
    assert "added shard s2" in r.stdout and "map version 2" in r.stdout, r.stdout
    st = status(root)
    assert st["version"] == 2
    assert [(s["name"], s["vbuckets"]) for s in st["shards"]] == [
        ("s0", 512), ("s1", 512), ("s2", 0)], st
    assert st["shards"][2]["standbys"] == ["127.0.0.1:13327"]
    assert zkcli_get(root + "/shards/s2") == "master=127.0.0.1:13326 standby=127.0.0.1:13327"

    for args, code, msg in [
        (["add-shard", "s2", "127.0.0.1:14000"], EXIT_INVALID, "'s2' defined twice"),
        (["add-shard", "s3", "127.0.0.1:13316"], EXIT_INVALID,
         "127.0.0.1:13316 is already used by shard 's1'"),
        (["add-shard", "s3"], EXIT_USAGE, "usage: add-shard"),
        (["add-shard", "s3", "nohostport"], EXIT_USAGE, "expected HOST:PORT"),
        (["add-shard", "bad/name", "127.0.0.1:1"], EXIT_USAGE, "bad character"),
    ]:
        r = run(*args, root=root)
        assert r.returncode == code and msg in r.stderr, (args, r.returncode, r.stderr)
    assert status(root)["version"] == 2     # refusals changed nothing


def test_set_master():
    root = "/sw-setmaster"
    init2(root)
    # promoting the standby: it leaves the standby list
    r = ok("set-master", "s0", "127.0.0.1:13307", root=root)
    assert r.stdout.strip() == "s0: master 127.0.0.1:13306 -> 127.0.0.1:13307; map version 2"
    st = status(root)
    assert st["shards"][0]["master"] == "127.0.0.1:13307" and st["shards"][0]["standbys"] == []
    assert st["version"] == 2
    # the same master again: nothing written
    r = ok("set-master", "s0", "127.0.0.1:13307", root=root)
    assert "already" in r.stdout and status(root)["version"] == 2
    # vbuckets never move on a master change
    assert [s["vbuckets"] for s in status(root)["shards"]] == [512, 512]

    for args, code, msg in [
        (["set-master", "s9", "127.0.0.1:1"], EXIT_INVALID, "no shard named 's9'"),
        (["set-master", "s0", "127.0.0.1:13316"], EXIT_INVALID, "already used by shard 's1'"),
        (["set-master", "s0", "127.0.0.1:0"], EXIT_USAGE, "port 0 out of range"),
        (["set-master", "s0"], EXIT_USAGE, "usage: set-master"),
        (["set-master", "--expect-version", "1", "s0", "127.0.0.1:1"], EXIT_CONFLICT,
         "the map is at version 2, not 1"),
    ]:
        r = run(*args, root=root)
        assert r.returncode == code and msg in r.stderr, (args, r.returncode, r.stderr)
    assert status(root)["version"] == 2


def _race(root, args_a, args_b, env=None):
    """Starts two shardctl processes at once; returns their results."""
    procs = []
    for args in (args_a, args_b):
        e = dict(os.environ)
        e.pop("SHARDWIRE_ZK", None)
        e.update(env or {})
        procs.append(subprocess.Popen([shardctl_bin(), "--zk", zk.hosts, "--root", root] + args,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=e))
    out = []
    for p in procs:
        so, se = p.communicate(timeout=60)
        out.append((p.returncode, so, se))
    return out


def test_concurrent_set_master_cas_race():
    """Both processes read version 1 (the pause holds each between its read
    and its write), so both writes carry the same expected version: the
    ZooKeeper multi lets exactly one through."""
    root = "/sw-race"
    init2(root)
    res = _race(root, ["set-master", "s1", "127.0.0.1:20001"],
                ["set-master", "s1", "127.0.0.1:20002"],
                env={"SHARDCTL_TEST_PAUSE_MS": "1500"})
    codes = sorted(r[0] for r in res)
    assert codes == [EXIT_OK, EXIT_CONFLICT], res
    winner = [r for r in res if r[0] == EXIT_OK][0]
    loser = [r for r in res if r[0] == EXIT_CONFLICT][0]
    assert "conflict" in loser[2] and "no longer current" in loser[2], loser
    assert loser[1] == ""
    st = status(root)
    assert st["version"] == 2, st
    # the map holds the winner's change, not a mix
    assert st["shards"][1]["master"] in winner[1], (st, winner)


def test_concurrent_set_master_expect_version():
    """Two operators who both looked at version 1: one wins, one conflicts,
    whatever the interleaving."""
    root = "/sw-race2"
    init2(root)
    res = _race(root, ["set-master", "--expect-version", "1", "s0", "127.0.0.1:21001"],
                ["set-master", "--expect-version", "1", "s0", "127.0.0.1:21002"])
    assert sorted(r[0] for r in res) == [EXIT_OK, EXIT_CONFLICT], res
    assert status(root)["version"] == 2


def test_write_survives_connection_loss():
    """ZooKeeper freezes between shardctl's read and its write: the write
    times out with a connection loss, after which shardctl cannot know
    whether it was applied. It must re-read and report what happened (never
    a false conflict, never a second application)."""
    root = "/sw-connloss"
    init2(root)
    e = dict(os.environ)
    e.pop("SHARDWIRE_ZK", None)
    e["SHARDCTL_TEST_PAUSE_MS"] = "1500"
    # libzookeeper_mt 3.8.0 itself leaks the request of a zoo_multi that
    # fails with a connection loss (allocated in zoo_amulti, never freed):
    # not ours to fix, so LeakSanitizer is told about that one frame only.
    # LeakSanitizer takes one suppressions file: the shared one plus ours.
    supp = os.path.join(cluster.tmp_root(), "zookeeper-client.lsan.supp")
    shared = os.path.join(cluster.REPO, "tests", "lsan.supp")
    with open(supp, "w") as f:
        if os.path.exists(shared):
            with open(shared) as g:
                f.write(g.read() + "\n")
        f.write("leak:zoo_amulti\n")
    opts = [o for o in e.get("LSAN_OPTIONS", "").split(":")
            if o and not o.startswith("suppressions=")]
    e["LSAN_OPTIONS"] = ":".join(opts + ["suppressions=" + supp])
    t0 = time.monotonic()
    p = subprocess.Popen([shardctl_bin(), "--zk", zk.hosts, "--root", root, "--timeout", "3",
                          "set-master", "s1", "127.0.0.1:22001"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)
    try:
        time.sleep(0.8)                 # shardctl has read the map and is pausing
        zk.kill(signal.SIGSTOP)
        # the client gives up on a silent server after 2/3 of its 3 s session
        # timeout, counted from its last reply (a ping, at most 1 s old)
        time.sleep(3.6 - (time.monotonic() - t0))
    finally:
        zk.kill(signal.SIGCONT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == EXIT_OK, (p.returncode, out, err)
    assert "connection to ZooKeeper was lost during the write" in err, err
    assert "change in place" in err, err
    st = status(root)
    assert st["version"] == 2, st           # applied exactly once
    assert st["shards"][1]["master"] == "127.0.0.1:22001", st


def test_invalid_map_in_zookeeper():
    root = "/sw-broken"
    init2(root, "--vbuckets", "16")
    zkcli_set(root + "/vbmap", "vb 0-7 s0\nvb 8-15 s7")
    r = run("status", root=root)
    assert r.returncode == EXIT_INVALID, (r.returncode, r.stderr)
    assert "map version 1 at /sw-broken: vbmap: line 2: vb 8-15: unknown shard 's7'" in r.stderr
    # a change cannot be built on a broken map either
    r = run("set-master", "s0", "127.0.0.1:1", root=root)
    assert r.returncode == EXIT_INVALID, (r.returncode, r.stderr)
    zkcli_set(root + "/version", "seven")
    r = run("status", root=root)
    assert r.returncode == EXIT_INVALID and "is not a map version" in r.stderr, r.stderr


def test_explain_with_zookeeper_map():
    root = "/sw-explain"
    init2(root)
    stmts = ["SELECT * FROM accounts WHERE userid = 42", "BEGIN", "SELECT * FROM accounts"]
    r = ok("--json", "explain", *stmts, root=root)
    res = [json.loads(l) for l in r.stdout.splitlines()]
    assert res[0]["decision"] == "route" and res[0]["key"] == "42", res[0]
    assert res[0]["vbucket"] == 401 and res[0]["shard"] == "s0", res[0]   # docs vector
    assert res[0]["map_version"] == 1
    assert res[1]["decision"] == "session"
    assert res[2]["decision"] == "reject" and res[2]["errno"] > 0
    human = ok("explain", stmts[0], root=root).stdout
    assert human == "route userid=42 vbucket=401 shard=s0\n", human
    # after a master change explain shows the new master
    ok("set-master", "s0", "127.0.0.1:13307", root=root)
    res = json.loads(ok("--json", "explain", stmts[0], root=root).stdout)
    assert res["master"] == "127.0.0.1:13307" and res["map_version"] == 2, res


def test_explain_with_map_file_needs_no_zookeeper():
    path = os.path.join(cluster.tmp_root(), "explain.map")
    with open(path, "w") as f:
        f.write(cluster.map_text([("a", "127.0.0.1:1"), ("b", "127.0.0.1:2")]))
    # --zk points nowhere: --map wins and nothing connects
    r = run("explain", "--map", path, "SELECT * FROM accounts WHERE userid = 1",
            "SELECT * FROM accounts WHERE userid = 42", hosts="127.0.0.1:1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("route userid=1 vbucket=344 shard=a\n"
                        "route userid=42 vbucket=401 shard=a\n"), r.stdout
    bad = os.path.join(cluster.tmp_root(), "bad.map")
    with open(bad, "w") as f:
        f.write("shard a master=127.0.0.1:1\nvb 0-1000 a\n")
    r = run("explain", "--map", bad, "SELECT 1")
    assert r.returncode == EXIT_INVALID
    assert "bad.map: vbucket 1001 is not assigned to any shard" in r.stderr, r.stderr


def test_usage_errors():
    for args, msg in [([], "usage:"), (["frobnicate"], "unknown verb 'frobnicate'"),
                      (["--timeout", "soon", "status"], "--timeout 'soon'"),
                      (["--root", "relative", "status"], "must be absolute"),
                      (["--root", "/a//b", "status"], "empty"),
                      (["status", "extra"], "takes no operands")]:
        r = run(*args)
        assert r.returncode == EXIT_USAGE and msg in r.stderr, (args, r.returncode, r.stderr)
    r = run("--help")
    assert r.returncode == 0 and "exit codes" in r.stdout


def test_explain_with_a_router_config_applies_its_rules_and_options():
    """--config: the router's database, operator rules and map source, through
    the same decision function the router's sessions call (router/decide.h)."""
    d = os.path.join(cluster.tmp_root(), "explain-config")
    os.makedirs(d, exist_ok=True)
    mp = os.path.join(d, "map.txt")
    with open(mp, "w") as f:
        f.write(cluster.map_text([("s0", "127.0.0.1:13306"), ("s1", "127.0.0.1:13316")],
                                 n_vbuckets=64, key_columns="uid"))
    conf = os.path.join(d, "router.conf")
    with open(conf, "w") as f:
        f.write("database = shop\nmap_file = %s\nbackend_user = x\nuser = app -\n"
                "rule = deny /secret_table/ \"no secrets here\"\n"
                "rule = allow /^SHOW PROCESSLIST/\n" % mp)
    def ok(*args):
        # no --zk: the map source is the config's (or --map)
        e = {k: v for k, v in os.environ.items() if not k.startswith("SHARDWIRE_ZK")}
        r = subprocess.run([shardctl_bin()] + list(args), capture_output=True, text=True,
                           timeout=30, env=e)
        assert r.returncode == 0, (args, r.returncode, r.stderr)
        return r
    stmts = ["SELECT * FROM t WHERE uid = 42", "SELECT * FROM secret_table WHERE uid = 42",
             "SHOW PROCESSLIST", "USE shop"]
    r = ok("--json", "explain", "--config", conf, *stmts)
    out = [json.loads(l) for l in r.stdout.splitlines()]
    # the map's key column (uid), from the router's map_file
    assert out[0]["decision"] == "route" and out[0]["column"] == "uid", out[0]
    assert out[0]["shard"] in ("s0", "s1") and "rule" not in out[0], out[0]
    # deny rule
    assert out[1]["decision"] == "reject" and out[1]["errno"] == 1227, out[1]
    assert out[1]["message"] == "shardwire: no secrets here" and out[1]["rule"], out[1]
    # allow rule lifts an allowable refusal
    assert out[2]["decision"] == "session" and out[2]["rule"], out[2]
    # the router's database
    assert out[3]["decision"] == "local", out[3]
    # without the config: no rules, the default database and key
    r = ok("--json", "explain", "--map", mp, *stmts[1:])
    out = [json.loads(l) for l in r.stdout.splitlines()]
    assert out[0]["decision"] == "route" and "rule" not in out[0], out[0]
    assert out[1]["decision"] == "reject" and out[1]["errno"] != 1227, out[1]
    assert out[2]["decision"] == "reject" and out[2]["errno"] == 1044, out[2]
    # a config that does not load is a usage error naming it
    bad = os.path.join(d, "bad.conf")
    with open(bad, "w") as f:
        f.write("database = shop\n")
    r = run("explain", "--config", bad, "SELECT 1")
    assert r.returncode == EXIT_USAGE and "--config" in r.stderr and bad in r.stderr, r.stderr

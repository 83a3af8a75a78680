"""
tests/e2e/test_zk_acl.py - ZooKeeper access control (docs/zookeeper.md
"Access control"): a cluster made by `shardctl init` with the admin's
credentials and a router identity. Reaching ZooKeeper without credentials
(shardctl, zkCli) is not enough to change the map; the router identity may
read the map and keep its registration but not change the map; with the
right credentials everything works; a router with a wrong password says so
in its log. Real ZooKeeper, real MariaDB, real routers.
"""

import base64
import hashlib
import json
import os
import subprocess

import cluster

ZK = None
DBS = {}
SECRETS = {}    # name -> path of a credential file
ADMIN = ("admin", "admin-pw:with-colon")
ROUTER = ("router", "router-pw")
SCHEMA = ("CREATE TABLE accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL, "
          "name VARCHAR(100), PRIMARY KEY (userid, id))")

EXIT_USAGE, EXIT_NOAUTH = 1, 7


def digest_id(user, password):
    """The ACL id ZooKeeper derives from digest credentials."""
    h = hashlib.sha1(("%s:%s" % (user, password)).encode()).digest()
    return "%s:%s" % (user, base64.b64encode(h).decode())


def secret(name, user, password, mode=0o600):
    path = os.path.join(cluster.tmp_root(), "%s.secret" % name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write("# ZooKeeper credential for %s\ndigest:%s:%s\n" % (name, user, password))
    os.chmod(path, mode)
    SECRETS[name] = path
    return path


def ctl(*args, auth=None, env=None, check=True):
    """shardctl with the credentials of <auth> (a SECRETS name) or none."""
    argv = [cluster.shardctl_path(), "--zk", ZK.hosts, "--timeout", "5"]
    if auth:
        argv += ["--auth-file", SECRETS[auth]]
    e = {k: v for k, v in os.environ.items() if not k.startswith("SHARDWIRE_ZK")}
    e.update(env or {})
    r = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=60, env=e)
    if check:
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r


def zkcli(*args, auth=None):
    """ZooKeeper's own Java CLI running one command, with the digest
    credentials <auth> (user, password) or none -> its output."""
    argv = [cluster.JAVA, "-cp", ":".join(cluster.ZK_JARS + ["/usr/share/java/*"]),
            "org.apache.zookeeper.ZooKeeperMain", "-server", ZK.hosts]
    # commands on stdin: the only way to run addauth before the command
    script = ("addauth digest %s:%s\n" % auth if auth else "") + " ".join(args) + "\nquit\n"
    r = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=60)
    return r.stdout + r.stderr


def status():
    return json.loads(ctl("--json", "status", auth="admin").stdout)


def setup_module():
    global ZK
    ZK = cluster.ZooKeeper()
    for name in ("s0", "s1", "spare"):
        DBS[name] = cluster.MariaDB(name)
        DBS[name].sql(SCHEMA)
    secret("admin", *ADMIN)
    secret("router", *ROUTER)
    secret("wrong", ROUTER[0], "not-the-password")
    ctl("init", "--router-auth-file", SECRETS["router"],
        "--shard", "s0=127.0.0.1:%d" % DBS["s0"].port,
        "--shard", "s1=127.0.0.1:%d" % DBS["s1"].port, auth="admin")


def teardown_module():
    for db in DBS.values():
        db.stop()
    ZK.stop()


def test_init_needs_credentials_or_explicit_open():
    r = ctl("init", "--shard", "s0=127.0.0.1:1", "--root", "/sw-noauth", check=False)
    assert r.returncode == EXIT_USAGE, (r.returncode, r.stderr)
    assert "needs the admin's credentials" in r.stderr and "--acl open" in r.stderr, r.stderr
    # a world-readable credential file is refused
    path = secret("loose", *ADMIN, mode=0o644)
    r = ctl("--auth-file", path, "status", check=False)
    assert r.returncode == EXIT_USAGE and "readable or writable by others" in r.stderr, r.stderr
    assert ADMIN[1] not in r.stderr


def test_acls_as_documented():
    admin, router = digest_id(*ADMIN), digest_id(*ROUTER)
    for path, router_perms in (("/shardwire/version", "r"), ("/shardwire/shards/s0", "r"),
                               ("/shardwire/routers", "cdrw")):
        out = zkcli("getAcl", path, auth=ADMIN)
        assert "'digest,'%s\n: cdrwa" % admin in out, (path, out[-1500:])
        assert "'digest,'%s\n: %s" % (router, router_perms) in out, (path, out[-1500:])
        assert "'world," not in out, (path, out[-1500:])


def test_without_credentials_the_map_cannot_be_changed():
    before = status()["version"]
    r = ctl("set-master", "s0", "127.0.0.1:%d" % DBS["spare"].port, check=False)
    assert r.returncode == EXIT_NOAUTH, (r.returncode, r.stderr)
    assert "not authorized" in r.stderr and "no credentials were sent" in r.stderr, r.stderr
    # ZooKeeper's own CLI, straight at the nodes
    out = zkcli("set", "/shardwire/version", "99")
    assert "Insufficient permission" in out, out[-1500:]
    out = zkcli("delete", "/shardwire/shards/s1")
    assert "Insufficient permission" in out, out[-1500:]
    out = zkcli("create", "/shardwire/shards/evil", "master=127.0.0.1:1")
    assert "Insufficient permission" in out, out[-1500:]
    st = status()
    assert st["version"] == before
    assert {s["name"] for s in st["shards"]} == {"s0", "s1"}, st


def test_router_identity_reads_but_cannot_change_the_map():
    before = status()["version"]
    r = ctl("--json", "status", auth="router")
    assert json.loads(r.stdout)["version"] == before
    r = ctl("set-master", "s0", "127.0.0.1:%d" % DBS["spare"].port, auth="router", check=False)
    assert r.returncode == EXIT_NOAUTH, (r.returncode, r.stderr)
    assert "digest user 'router' lacks the rights" in r.stderr, r.stderr
    r = ctl("add-shard", "s9", "127.0.0.1:1", auth="router", check=False)
    assert r.returncode == EXIT_NOAUTH, (r.returncode, r.stderr)
    assert status()["version"] == before


def test_with_credentials_everything_works():
    r = cluster.Router({"zookeeper": ZK.hosts, "zookeeper_auth_file": SECRETS["router"],
                        "router_id": "racl"})
    try:
        cluster.wait_for(lambda: "racl" in {x["id"] for x in json.loads(
            ctl("--json", "routers", auth="admin").stdout)["routers"]}, 15,
            "racl registered", log=r.log_tail)
        u = 100
        shard = json.loads(ctl("--json", "explain", "SELECT 1 FROM accounts WHERE userid = %d"
                               % u, auth="router").stdout)["shard"]
        c = r.connect()
        with c.cursor() as cur:
            cur.execute("INSERT INTO accounts (userid, id, name) VALUES (%d, 1, 'a')" % u)
        c.close()
        assert DBS[shard].sql("SELECT name FROM accounts WHERE userid = %s", (u,)) == (("a",),)
        # the admin changes the map; the router (read-only on the map) follows it
        ctl("set-master", shard, "127.0.0.1:%d" % DBS["spare"].port, auth="admin")
        ctl("add-shard", "s2", "127.0.0.1:%d" % cluster.free_port(), auth="admin")
        version = status()["version"]

        def follows():
            regs = json.loads(ctl("--json", "routers", auth="admin").stdout)["routers"]
            return any(x["id"] == "racl" and x["map_version"] == version for x in regs)
        cluster.wait_for(follows, 15, "racl at version %d" % version, log=r.log_tail)
        c = r.connect()
        with c.cursor() as cur:
            cur.execute("INSERT INTO accounts (userid, id, name) VALUES (%d, 2, 'b')" % u)
        c.close()
        assert DBS["spare"].sql("SELECT name FROM accounts WHERE userid = %s",
                                (u,)) == (("b",),)
        # the new shard node inherited the map's ACL
        out = zkcli("getAcl", "/shardwire/shards/s2", auth=ADMIN)
        assert "'digest,'%s\n: r" % digest_id(*ROUTER) in out, out[-1500:]
        # the registration carries the ACL init wrote for it
        out = zkcli("getAcl", "/shardwire/routers/racl", auth=ADMIN)
        assert "'digest,'%s\n: cdrwa" % digest_id(*ADMIN) in out, out[-1500:]
        assert "'digest,'%s\n: cdrw" % digest_id(*ROUTER) in out, out[-1500:]
        assert "'world," not in out, out[-1500:]
        assert "Insufficient permission" in zkcli("get", "/shardwire/routers/racl")
        assert "not authorized" not in r.log_tail(200)
    finally:
        r.stop()


def test_router_with_wrong_or_no_credentials_says_so():
    for access, said in (({"zookeeper_auth_file": SECRETS["wrong"]},
                          "sent digest credentials of user 'router'"),
                         ({"zookeeper_acl": "open"}, "sent no credentials")):
        cfg = {"zookeeper": ZK.hosts, "router_id": "rwrong", "zk_start_timeout_ms": 1500}
        cfg.update(access)
        r = cluster.Router(cfg, start=False)
        try:
            r.start()
            raise AssertionError("router started without being able to read the map")
        except cluster.HarnessError:
            pass
        log = r.log_tail(50)
        assert "/shardwire/version: not authorized" in log, log
        assert said in log, log
        assert "not-the-password" not in log, log
        assert r.proc.popen.wait(10) != 0


def test_router_started_before_init_waits_for_it():
    """With credentials a router never creates the cluster's nodes: started
    before `shardctl init`, it waits for the map, then registers under the
    ACL init wrote."""
    import threading
    root = "/sw-late"
    r = cluster.Router({"zookeeper": ZK.hosts, "zookeeper_auth_file": SECRETS["router"],
                        "zk_root": root, "router_id": "rlate", "zk_start_timeout_ms": 30000},
                       start=False)
    started = []
    t = threading.Thread(target=lambda: started.append(r.start() or True), daemon=True)
    t.start()
    try:
        # the router is up and waiting (its ZooKeeper session is open)
        cluster.wait_for(lambda: "zookeeper: connected" in r.log_tail(50) or
                         "no cluster" in r.log_tail(50), 15, "router waiting for init",
                         log=r.log_tail)
        assert not ctl("--json", "routers", "--root", root, auth="admin").stdout.count("rlate")
        ctl("init", "--root", root, "--router-auth-file", SECRETS["router"],
            "--shard", "s0=127.0.0.1:%d" % DBS["s0"].port, auth="admin")
        t.join(40)
        assert started == [True], r.log_tail()
        cluster.wait_for(lambda: "rlate" in {x["id"] for x in json.loads(
            ctl("--json", "routers", "--root", root, auth="admin").stdout)["routers"]}, 15,
            "rlate registered after init", log=r.log_tail)
        out = zkcli("getAcl", root + "/routers/rlate", auth=ADMIN)
        assert "'digest,'%s\n: cdrw" % digest_id(*ROUTER) in out, out[:3000]
    finally:
        t.join(40)
        r.stop()


def test_init_protects_nodes_an_open_router_made_first():
    """In an open cluster a router may create <root> and <root>/routers
    before init; a protected init takes them over: both get the protected
    ACL, and <root>/routers the registration ACL text."""
    root = "/sw-pre"
    zkcli("create", root)
    zkcli("create", root + "/routers")
    assert "'world,'anyone" in zkcli("getAcl", root + "/routers")
    ctl("init", "--root", root, "--router-auth-file", SECRETS["router"],
        "--shard", "s0=127.0.0.1:1", auth="admin")
    for path in (root, root + "/routers"):
        out = zkcli("getAcl", path, auth=ADMIN)
        assert "'world," not in out and "'digest,'%s\n: cdrwa" % digest_id(*ADMIN) in out, \
            (path, out[:3000])
    out = zkcli("get", root + "/routers", auth=ADMIN)
    assert "acl digest:%s cdrw" % digest_id(*ROUTER) in out, out[:3000]
    assert "Insufficient permission" in zkcli("get", root + "/routers")

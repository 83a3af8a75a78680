"""
tests/e2e/test_compat.py - driver compatibility suite (issue 4 item 5).

One cluster: 2 shards and two routers on them, a plain one (test_<driver>)
and one with TLS and require_secure_transport (test_tls_<driver>: the same
program with SW_COMPAT_TLS_CA set; a driver that did not use TLS cannot log
in). Each test runs one driver's program from tests/compat/ (the same
web-app scenario, see tests/compat/README.md) against a router, then reads
the rows of the driver's users directly on the shards: each user's rows must
be on the shard that owns the userid (shardctl explain) and nowhere else,
with exactly the values the scenario wrote.

Every driver (and its TLS run) has its own userid range (NOMINAL_BASES,
adjusted so that its users live on both shards). A driver missing from the
machine FAILS naming its package (tools/deps.sh installs them; Node's mysql2
comes from the npm registry into the build dir's e2e cache). Java and Go
programs are compiled once per source version into that cache.
"""

import datetime
import decimal
import fcntl
import hashlib
import os
import re
import shutil
import subprocess

import cluster

REPO = cluster.REPO
COMPAT = os.path.join(REPO, "tests", "compat")
CACHE = os.path.join(cluster.CACHE_DIR, "compat")

SCHEMA = [
    "CREATE TABLE compat_items ("
    " id BIGINT NOT NULL AUTO_INCREMENT,"
    " userid BIGINT NOT NULL,"
    " k VARCHAR(32) NOT NULL,"
    " name VARCHAR(200) NULL,"
    " big BIGINT NULL,"
    " amount DECIMAL(20,6) NULL,"
    " ts DATETIME(6) NULL,"
    " payload LONGBLOB NULL,"
    " body MEDIUMTEXT NULL,"
    " PRIMARY KEY (id),"
    " UNIQUE KEY user_k (userid, k)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
]

# Each driver's users are BASE+1..BASE+3; above 2^32 on purpose (64-bit keys).
# setup_module moves each BASE up by a multiple of 10 until U1 and U3 are on
# different shards (prepared_reuse then executes one statement for users on
# both shards, and both shards get rows of every driver); see bases.
NOMINAL_BASES = {
    "mariadb_cli": 10_000_000_000,
    "pymysql": 20_000_000_000,
    "mysqlclient": 30_000_000_000,
    "node_mysql2_query": 40_000_000_000,
    "node_mysql2_execute": 50_000_000_000,
    "php_pdo_emulated": 60_000_000_000,
    "php_pdo_native": 70_000_000_000,
    "php_mysqli": 80_000_000_000,
    "perl_dbd_mariadb": 90_000_000_000,
    "perl_dbd_mariadb_serverprep": 130_000_000_000,
    "java_connectorj_serverprep": 100_000_000_000,
    "java_connectorj_clientprep": 110_000_000_000,
    "go_sql_driver": 120_000_000_000,
}
# The same scenarios over TLS (test_tls_*), through a second router that
# requires it (require_secure_transport): a driver that did not really use
# TLS cannot log in there.
NOMINAL_BASES.update({"tls_" + k: v + 5_000_000_000 for k, v in list(NOMINAL_BASES.items())})
assert len({v // 1_000_000_000 for v in NOMINAL_BASES.values()}) == len(NOMINAL_BASES), \
    "two drivers share a userid range"

NAME = "O'Brien \"q\" back\\slash Zo\u00eb \u00f1 \u4e2d\u6587 \U0001F600\U0001F389"
BIG_MAX = 9223372036854775807
BIG_MIN = -9223372036854775808
AMOUNT = decimal.Decimal("12345678901234.123456")
AMOUNT2 = decimal.Decimal("-0.000001")
TS = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456)
PAYLOAD = bytes(range(256)) + bytes(range(255, -1, -1))
BODY = "".join("%06d:0123456789abcdef\u00e9\u2713\U0001F600\n" % i for i in range(32000))

c = None
tls_router = None
TLS_CERT = None
BASES = {}


def choose_bases():
    """{driver: BASE} with U1 = BASE+1 and U3 = BASE+3 on different shards."""
    tries = 30
    cands = {d: [b + 10 * i for i in range(tries)] for d, b in NOMINAL_BASES.items()}
    users = [u for bs in cands.values() for b in bs for u in (b + 1, b + 3)]
    owner = dict(zip(users, c.shards_of(users)))
    out = {}
    for d, bs in cands.items():
        good = [b for b in bs if owner[b + 1] != owner[b + 3]]
        assert good, "no base near %d puts users 1 and 3 on different shards" % bs[0]
        out[d] = good[0]
    return out


def setup_module():
    global c, tls_router, TLS_CERT
    c = cluster.Cluster(n_shards=2, start_router=False)
    c.create_schema(SCHEMA)
    c.start_router()
    BASES.update(choose_bases())
    d = cluster.tmp_root()
    TLS_CERT, key = os.path.join(d, "compat-router.crt"), os.path.join(d, "compat-router.key")
    run_checked([need_cmd("openssl", "openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                 "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", key, "-out", TLS_CERT], "openssl req (router certificate)", 60)
    # A tiny pool (one backend connection per shard and worker): every
    # session of every driver shares backend connections, so session state
    # that leaks from one to the next shows up.
    tls_router = cluster.Router({"map_file": c.map_file, "tls_cert": TLS_CERT, "tls_key": key,
                                 "require_secure_transport": "on", "pool_max_per_shard": 2})


def router_errors(router):
    """Lines a router logged at level error: no test here injects a fault,
    so any of them means something went wrong under a passing driver."""
    try:
        with open(router.log_path, encoding="utf-8", errors="replace") as f:
            return [l.rstrip() for l in f if l.split()[1:2] == ["error"]]
    except OSError:
        return []


def teardown_module():
    errors = []
    try:
        for r in (tls_router, c.router):
            if r:
                errors += ["%s: %s" % (r.label(), l) for l in router_errors(r)]
        if tls_router:
            tls_router.stop(check=True)
    finally:
        c.stop(check=True)
    assert not errors, "router errors logged:\n" + "\n".join(errors[:40])


# ------------------------------------------------------------ prerequisites

def need_file(path, package):
    assert os.path.exists(path), "missing %s: install Debian package %s (tools/deps.sh)" % (
        path, package)


def need_cmd(cmd, package):
    path = shutil.which(cmd)
    assert path, "missing command %s: install Debian package %s (tools/deps.sh)" % (cmd, package)
    return path


def sources_hash(paths):
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.encode() + b"\0")
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def cached_build(name, sources, build):
    """Runs build(outdir) once per version of <sources> into the e2e cache
    (under a lock: parallel runs share the cache). Returns outdir."""
    os.makedirs(CACHE, exist_ok=True)
    out = os.path.join(CACHE, "%s-%s" % (name, sources_hash(sources)))
    stamp = os.path.join(out, "BUILT")
    if os.path.exists(stamp):
        return out
    with open(os.path.join(CACHE, name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(stamp):
            return out
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        build(out)
        open(stamp, "w").close()
        for old in os.listdir(CACHE):      # earlier source versions
            if re.fullmatch(re.escape(name) + r"-[0-9a-f]{16}", old) and \
                    os.path.join(CACHE, old) != out:
                shutil.rmtree(os.path.join(CACHE, old), ignore_errors=True)
    return out


def run_checked(argv, what, timeout, env=None, cwd=None):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, "%s failed (rc=%d):\n%s\n%s" % (
        what, r.returncode, r.stdout[-4000:], r.stderr[-4000:])
    return r


# ----------------------------------------------------------------- checking

def expected_rows(base):
    u1, u2, u3 = base + 1, base + 2, base + 3
    none5 = (None, None, None)
    return {
        u1: [("main", NAME, BIG_MAX, AMOUNT, TS, PAYLOAD, BODY),
             ("tx-commit", "committed", BIG_MIN, AMOUNT2) + none5],
        u2: [("nulls", None, None, None) + none5],
        u3: [("a", "A", 1, None) + none5, ("b", "B2", 2, None) + none5],
    }


def short(v):
    r = repr(v)
    return r if len(r) < 200 else "%s of length %d" % (type(v).__name__, len(v))


def verify_shards(base):
    """The driver's users' rows are on their owner shard only, and equal
    what the scenario wrote."""
    want = expected_rows(base)
    owners = dict(zip(want, c.shards_of(list(want))))
    problems = []
    for name, db in c.shards.items():
        for u, rows in want.items():
            got = [tuple(bytes(v) if isinstance(v, bytearray) else v for v in r) for r in
                   db.sql("SELECT k, name, big, amount, ts, payload, body FROM compat_items"
                          " WHERE userid = %s ORDER BY k", (u,))]
            if name != owners[u]:
                if got:
                    problems.append("userid %d (owner %s) has %d rows on %s" % (
                        u, owners[u], len(got), name))
                continue
            if [r[0] for r in got] != [r[0] for r in rows]:
                problems.append("userid %d on %s: keys %r, want %r" % (
                    u, name, [r[0] for r in got], [r[0] for r in rows]))
                continue
            cols = ("k", "name", "big", "amount", "ts", "payload", "body")
            for g, w in zip(got, rows):
                for col, gv, wv in zip(cols, g, w):
                    if gv != wv or type(gv) != type(wv):
                        problems.append("userid %d k=%s on %s: %s = %s, want %s" % (
                            u, w[0], name, col, short(gv), short(wv)))
    assert not problems, "on the shards:\n  " + "\n  ".join(problems)
    return owners


def run_driver(label, argv, env=None, tls=False, timeout=100):
    """Runs a scenario program with HOST PORT USER PASSWORD DB BASE appended
    (tls: through the TLS-only router, SW_COMPAT_TLS_CA set), asserts it
    passed, then checks the shards."""
    if tls:
        label = "tls_" + label
        env = dict(env or os.environ, SW_COMPAT_TLS_CA=TLS_CERT)
    base = BASES[label]
    router = tls_router if tls else c.router
    full = argv + [router.host, str(router.port), cluster.APP_USER, cluster.APP_PASSWORD,
                   cluster.APP_DB, str(base)]
    r = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                       env=env, stdin=subprocess.DEVNULL)
    out = (r.stdout + ("\n-- stderr --\n" + r.stderr if r.stderr.strip() else "")).strip()
    assert r.returncode == 0, "%s scenario failed (rc=%d):\n%s" % (label, r.returncode, out[-6000:])
    assert "PASSED" in r.stdout, "%s scenario did not finish:\n%s" % (label, out[-6000:])
    verify_shards(base)


# -------------------------------------------------------------------- drivers
# Each returns (label, argv, env) of one driver's program, after checking
# that the driver is installed.

def mariadb_cli():
    need_file(cluster.MARIADB_CLI, "mariadb-client")
    need_file("/usr/bin/mariadb-admin", "mariadb-client")
    return "mariadb_cli", ["/usr/bin/python3", os.path.join(COMPAT, "cli", "scenario.py")], None


def need_python_module(module, package):
    r = subprocess.run(["/usr/bin/python3", "-c", "import " + module], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, "Python module %s missing: install Debian package %s " \
        "(tools/deps.sh): %s" % (module, package, r.stderr.strip()[-300:])


def python_driver(label, module, package, name):
    need_python_module(module, package)
    return label, ["/usr/bin/python3", os.path.join(COMPAT, "python", "scenario.py"), name], None


def node_modules():
    """mysql2 from the npm registry, installed once into the e2e cache."""
    need_cmd("node", "nodejs")
    need_cmd("npm", "npm (or a nodejs that bundles it)")
    pkg = os.path.join(COMPAT, "node", "package.json")

    def build(out):
        shutil.copy(pkg, out)
        env = dict(os.environ, npm_config_cache=os.path.join(CACHE, "npm-cache"),
                   npm_config_update_notifier="false")
        run_checked(["npm", "install", "--no-audit", "--no-fund", "--no-package-lock",
                     "--loglevel=error"], "npm install mysql2 (npm registry)", 300, env=env,
                    cwd=out)

    out = cached_build("node", [pkg], build)
    mods = os.path.join(out, "node_modules")
    need_file(os.path.join(mods, "mysql2", "package.json"), "mysql2 from npm (npm install failed?)")
    return mods


def node(mode):
    return ("node_mysql2_" + mode, ["node", os.path.join(COMPAT, "node", "scenario.js"), mode],
            dict(os.environ, NODE_PATH=node_modules()))


def php(script, *args):
    path = need_cmd("php", "php-cli")
    mods = subprocess.run([path, "-m"], capture_output=True, text=True, timeout=60).stdout.split()
    for mod in ("mysqli", "pdo_mysql"):
        assert mod in mods, "PHP module %s missing: install Debian package php-mysql" % mod
    return [path, os.path.join(COMPAT, "php", script)] + list(args)


def perl_dbd_mariadb(mode):
    perl = need_cmd("perl", "perl")
    r = subprocess.run([perl, "-MDBD::MariaDB", "-e", "1"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, "Perl module DBD::MariaDB missing: install Debian package " \
        "libdbd-mariadb-perl (%s)" % r.stderr.strip()
    return ("perl_dbd_mariadb" + ("_serverprep" if mode == "serverprep" else ""),
            [perl, os.path.join(COMPAT, "perl", "scenario.pl"), mode], None)


CONNECTOR_J = "/usr/share/java/mariadb-java-client.jar"


def java_classes():
    """tests/compat/java compiled once per source version into the e2e cache."""
    need_cmd("java", "default-jdk-headless")
    javac = need_cmd("javac", "default-jdk-headless")
    need_file(CONNECTOR_J, "libmariadb-java")
    src = os.path.join(COMPAT, "java", "Scenario.java")

    def build(out):
        run_checked([javac, "-encoding", "UTF-8", "-d", out, "-cp", CONNECTOR_J, src],
                    "javac Scenario.java", 120)

    return cached_build("java", [src], build)


def java(mode):
    return ("java_connectorj_" + mode,
            ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp",
             java_classes() + ":" + CONNECTOR_J, "Scenario", mode], None)


GO_DRIVER_SRC = "/usr/share/gocode/src/github.com/go-sql-driver/mysql"


def go_sql_driver():
    """tests/compat/go built once per source version, offline: GOPATH mode
    with Debian's go-sql-driver/mysql source in /usr/share/gocode."""
    go = need_cmd("go", "golang-go")
    need_file(GO_DRIVER_SRC, "golang-github-go-sql-driver-mysql-dev")
    src = os.path.join(COMPAT, "go", "main.go")

    def build(out):
        env = dict(os.environ, GO111MODULE="off", GOFLAGS="", GOPROXY="off",
                   GOPATH=os.path.join(out, "gopath") + ":/usr/share/gocode",
                   GOCACHE=os.path.join(CACHE, "go-build-cache"))
        run_checked([go, "build", "-o", os.path.join(out, "scenario"), src], "go build", 240,
                    env=env, cwd=os.path.dirname(src))

    out = cached_build("go", [src], build)
    return "go_sql_driver", [os.path.join(out, "scenario")], None


# -------------------------------------------------------------------- tests

def test_mariadb_cli():
    run_driver(*mariadb_cli())


def test_pymysql():
    run_driver(*python_driver("pymysql", "pymysql", "python3-pymysql", "pymysql"))


def test_mysqlclient():
    run_driver(*python_driver("mysqlclient", "MySQLdb", "python3-mysqldb", "mysqldb"))


def test_node_mysql2_query():
    run_driver(*node("query"))


def test_node_mysql2_execute():
    run_driver(*node("execute"))


def test_php_pdo_emulated():
    run_driver("php_pdo_emulated", php("pdo.php", "emulated"))


def test_php_pdo_native():
    run_driver("php_pdo_native", php("pdo.php", "native"))


def test_php_mysqli():
    run_driver("php_mysqli", php("mysqli.php"))


def test_perl_dbd_mariadb():
    run_driver(*perl_dbd_mariadb("clientprep"))


def test_perl_dbd_mariadb_serverprep():
    run_driver(*perl_dbd_mariadb("serverprep"))


def test_java_connectorj_serverprep():
    run_driver(*java("serverprep"))


def test_java_connectorj_clientprep():
    run_driver(*java("clientprep"))


def test_go_sql_driver():
    run_driver(*go_sql_driver())


# The same, over TLS, through the router that requires it.

def test_tls_mariadb_cli():
    run_driver(*mariadb_cli(), tls=True)


def test_tls_pymysql():
    run_driver(*python_driver("pymysql", "pymysql", "python3-pymysql", "pymysql"), tls=True)


def test_tls_mysqlclient():
    run_driver(*python_driver("mysqlclient", "MySQLdb", "python3-mysqldb", "mysqldb"), tls=True)


def test_tls_node_mysql2_query():
    run_driver(*node("query"), tls=True)


def test_tls_node_mysql2_execute():
    run_driver(*node("execute"), tls=True)


def test_tls_php_pdo_emulated():
    run_driver("php_pdo_emulated", php("pdo.php", "emulated"), tls=True)


def test_tls_php_pdo_native():
    run_driver("php_pdo_native", php("pdo.php", "native"), tls=True)


def test_tls_php_mysqli():
    run_driver("php_mysqli", php("mysqli.php"), tls=True)


def test_tls_perl_dbd_mariadb():
    run_driver(*perl_dbd_mariadb("clientprep"), tls=True)


def test_tls_perl_dbd_mariadb_serverprep():
    run_driver(*perl_dbd_mariadb("serverprep"), tls=True)


def test_tls_java_connectorj_serverprep():
    run_driver(*java("serverprep"), tls=True)


def test_tls_java_connectorj_clientprep():
    run_driver(*java("clientprep"), tls=True)


def test_tls_go_sql_driver():
    run_driver(*go_sql_driver(), tls=True)

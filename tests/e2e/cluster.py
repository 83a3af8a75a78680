"""
tests/e2e/cluster.py - the end-to-end harness: real mariadbd, ZooKeeper and
shardwire processes on loopback, free ports, temp dirs.

Everything started here runs in its own process group, is recorded in a
registry (and, when the runner set SW_E2E_PIDFILE, in a pid file the runner
sweeps after a module even if this process was SIGKILLed), and is stopped by
cleanup() / atexit. Readiness is always a polled condition with a deadline,
never a fixed sleep. A missing prerequisite raises HarnessError naming it.

API (details in the docstrings below):
  MariaDB(name, extra_args=())      .port .socket .server_id .sql() .kill()
                                    .stop() .start() .restart() .log_tail()
  ZooKeeper()                       .hosts .port .cmd() .stop() .start() .kill()
  ZooKeeperEnsemble(3)              .hosts .kill(i) .start(i) .stop(i) .leader()
  Router(config, map_text=None)     .port .connect() .stop() .kill() .log_tail()
  Cluster(n_shards=2)               .shards .router .map_file .shard_of()
                                    .shards_of() .db_of() .create_schema() .stop()
  FailoverSetup(zk)                 s0 = master + 2 standbys, routers ra rb rc with
                                    auto_failover; .writers() .finish() .status()
  mysql_cli(port, user, password, sql, ...) -> CliResult(rc, stdout, stderr)
  native_password_hash(password)    '*' + upper hex SHA1(SHA1(password))
"""

import atexit
import collections
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pymysql

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("SW_BUILD_DIR", os.path.join(REPO, "build-test"))
CACHE_DIR = os.environ.get("SW_E2E_CACHE", os.path.join(BUILD_DIR, "e2e-cache"))

APP_DB = "app"
APP_USER = "app"
APP_PASSWORD = "app-pw"
BACKEND_USER = "shardwire"
BACKEND_PASSWORD = "shardwire-pw"
ROOT_TCP_PASSWORD = "root-pw"      # root@127.0.0.1 (root@localhost is unix_socket)
# The control-plane account (health checks, promotion): only the privileges
# promotion needs, no SUPER and no access to app data (docs/failover.md).
CONTROL_USER = "shardwire_ctl"
CONTROL_PASSWORD = "ctl-pw"
REPL_USER = "repl"                 # standbys replicate with it
REPL_PASSWORD = "repl-pw"

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
MARIADB_CLI = "/usr/bin/mariadb"
JAVA = "/usr/bin/java"
ZK_JARS = ["/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar"]

# Small and fast, but the durability settings FIELD-NOTES asks of masters.
MARIADB_COMMON_ARGS = [
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=8M",
    "--innodb-flush-log-at-trx-commit=1",
    "--skip-name-resolve",
    "--performance-schema=OFF",
    "--max-connections=500",
    "--max-allowed-packet=256M",
    "--character-set-server=utf8mb4",
]
MARIADB_MASTER_ARGS = [
    "--log-bin=mysql-bin",
    "--binlog-format=ROW",
    "--sync-binlog=1",
    "--log-slave-updates=1",
    "--gtid-strict-mode=1",
]
# Replicated shards (FIELD-NOTES): lossless semi-sync on the master (ack after
# the binlog sync, never falling back to async); on the standby a relay log
# that survives a restart with what it acknowledged, and parallel apply.
# Master-side semi-sync is enabled on a standby only when it is promoted.
MARIADB_SEMISYNC_MASTER_ARGS = [
    "--rpl-semi-sync-master-enabled=1",
    "--rpl-semi-sync-master-wait-point=AFTER_SYNC",
    "--rpl-semi-sync-master-timeout=4294967295",
    "--rpl-semi-sync-slave-enabled=1",
]
MARIADB_STANDBY_ARGS = [
    "--rpl-semi-sync-slave-enabled=1",
    "--relay-log=relay-bin",
    "--relay-log-recovery=0",
    "--sync-relay-log=1",
    "--slave-parallel-threads=4",
    "--slave-net-timeout=10",
    "--read-only=1",
]


class HarnessError(Exception):
    """A prerequisite is missing or a process did not come up in time."""


class Skip(Exception):
    """Raised by a setup_module that cannot run here for a reason the test
    names (runner.py reports SKIP with it); only for what a machine may
    lack by design (e.g. the right to create a network namespace), never
    for a missing package."""


# ---------------------------------------------------------------- processes

_registry = []          # live Proc objects, for cleanup()
spawn_gid = None        # group id of the processes started next (netpart.py)
_tmp_root = None


def tmp_root():
    """One temp dir per harness process; removed at exit unless SW_KEEP_TMP=1."""
    global _tmp_root
    if _tmp_root is None:
        _tmp_root = tempfile.mkdtemp(prefix="sw-e2e-")
        pidfile = os.environ.get("SW_E2E_PIDFILE")
        if pidfile and os.environ.get("SW_KEEP_TMP") != "1":
            with open(pidfile, "a") as f:
                f.write("dir %s\n" % _tmp_root)
    return _tmp_root


def _new_dir(name):
    return tempfile.mkdtemp(prefix=name + "-", dir=tmp_root())


class Proc:
    """A child in its own process group; killed (with its group) at cleanup."""

    def __init__(self, argv, log_path, env=None, cwd=None):
        self.argv = argv
        self.log_path = log_path
        log = open(log_path, "ab")
        try:
            self.popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                          start_new_session=True, group=spawn_gid)
        finally:
            log.close()
        self.pid = self.popen.pid
        _registry.append(self)
        pidfile = os.environ.get("SW_E2E_PIDFILE")
        if pidfile:
            with open(pidfile, "a") as f:
                f.write("%d\n" % self.pid)

    def alive(self):
        return self.popen.poll() is None

    def send(self, sig):
        if self.alive():
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Sends <sig> (after SIGCONT, in case it is stopped) and waits;
        SIGKILLs after <timeout>. Returns the exit status."""
        if self.alive():
            self.send(signal.SIGCONT)
            self.send(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.send(signal.SIGKILL)
                self.popen.wait(10)
        # The group may still hold children (java helpers, etc.).
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self in _registry:
            _registry.remove(self)
        return self.popen.returncode


def cleanup():
    """Kills every process this harness started and removes its temp dir."""
    global _tmp_root
    for p in list(_registry):
        try:
            p.stop(signal.SIGKILL, timeout=5)
        except Exception:
            pass
    _registry.clear()
    if _tmp_root and os.environ.get("SW_KEEP_TMP") != "1":
        shutil.rmtree(_tmp_root, ignore_errors=True)
        _tmp_root = None


atexit.register(cleanup)


def free_port():
    """A TCP port that was free a moment ago (callers retry on a bind race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_for(cond, timeout, what, proc=None, log=None, interval=0.05):
    """Polls <cond>() until it returns a true value (returned) or <timeout>
    seconds pass (HarnessError naming <what>). Fails early if <proc> died."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:     # the condition's own failure: keep polling
            last_exc = e
        if proc is not None and not proc.alive():
            raise HarnessError("%s: process exited with status %s\n%s" %
                               (what, proc.popen.returncode, log() if log else ""))
        if time.monotonic() > deadline:
            raise HarnessError("%s: not ready after %.0fs (last error: %r)\n%s" %
                               (what, timeout, last_exc, log() if log else ""))
        time.sleep(interval)


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return "(no log: %s)" % e


def require(path, package):
    if not os.path.exists(path):
        raise HarnessError("missing %s (Debian package %s; run tools/deps.sh)" % (path, package))


def native_password_hash(password):
    """MySQL's mysql_native_password hash: '*' + hex(SHA1(SHA1(pw))), upper case."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def live_logs():
    """(label, log_path) of every live component, for failure reports."""
    out = []
    for obj in list(_components):
        if getattr(obj, "stopped", False):
            continue
        try:
            out.append((obj.label(), obj.log_path))
        except Exception:
            pass
    return out


_components = []    # MariaDB/ZooKeeper/Router objects, for live_logs(); their
                    # .stopped is True after a deliberate stop()


# ------------------------------------------------------------------ MariaDB

TEMPLATE_REV = 3


def _template_datadir():
    """Initialises ONE datadir (mariadb-install-db, then app database and
    users) per mariadbd version in CACHE_DIR; later calls reuse it."""
    require(MARIADBD, "mariadb-server")
    require(INSTALL_DB, "mariadb-server")
    version = subprocess.run([MARIADBD, "--version"], capture_output=True,
                             text=True).stdout.split()
    vtag = "".join(c if c.isalnum() or c in ".-" else "_" for c in "-".join(version[2:3]))
    os.makedirs(CACHE_DIR, exist_ok=True)
    # Bump TEMPLATE_REV when what the template contains changes.
    final = os.path.join(CACHE_DIR, "datadir-%s-r%d" % (vtag or "unknown", TEMPLATE_REV))
    if os.path.exists(os.path.join(final, "READY")):
        return final
    with open(os.path.join(CACHE_DIR, "template.lock"), "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(final, "READY")):
            return final
        work = tempfile.mkdtemp(prefix="template-", dir=CACHE_DIR)
        data = os.path.join(work, "data")
        log = os.path.join(work, "install.log")
        with open(log, "wb") as lf:
            rc = subprocess.run([INSTALL_DB, "--no-defaults", "--user=root", "--datadir=" + data,
                                 "--auth-root-authentication-method=socket", "--skip-test-db",
                                 "--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M"],
                                stdout=lf, stderr=subprocess.STDOUT, timeout=120).returncode
        if rc != 0:
            raise HarnessError("mariadb-install-db failed (rc=%d):\n%s" % (rc, tail(log)))
        # Start it once to create what every instance needs.
        sock = os.path.join(work, "t.sock")
        errlog = os.path.join(work, "error.log")
        p = Proc([MARIADBD, "--no-defaults", "--user=root", "--datadir=" + data,
                  "--socket=" + sock, "--skip-networking", "--log-error=" + errlog,
                  "--pid-file=" + os.path.join(work, "t.pid")] + MARIADB_COMMON_ARGS, errlog)
        try:
            conn = wait_for(lambda: pymysql.connect(unix_socket=sock, user="root"), 60,
                            "template mariadbd", proc=p, log=lambda: tail(errlog))
            with conn.cursor() as c:
                for stmt in [
                    "CREATE DATABASE %s" % APP_DB,
                    "CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'" % (BACKEND_USER, BACKEND_PASSWORD),
                    "CREATE USER '%s'@'localhost' IDENTIFIED BY '%s'" % (BACKEND_USER, BACKEND_PASSWORD),
                    "GRANT ALL ON %s.* TO '%s'@'127.0.0.1'" % (APP_DB, BACKEND_USER),
                    "GRANT ALL ON %s.* TO '%s'@'localhost'" % (APP_DB, BACKEND_USER),
                    "CREATE USER 'root'@'127.0.0.1' IDENTIFIED BY '%s'" % ROOT_TCP_PASSWORD,
                    "GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION",
                    "CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'" % (REPL_USER, REPL_PASSWORD),
                    "GRANT REPLICATION SLAVE ON *.* TO '%s'@'127.0.0.1'" % REPL_USER,
                    "CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'" % (CONTROL_USER,
                                                                      CONTROL_PASSWORD),
                    "GRANT REPLICATION SLAVE ADMIN, REPLICA MONITOR, BINLOG ADMIN, BINLOG MONITOR,"
                    " CONNECTION ADMIN, READ_ONLY ADMIN, PROCESS, REPLICATION MASTER ADMIN, RELOAD"
                    " ON *.* TO '%s'@'127.0.0.1'" % CONTROL_USER,
                    "FLUSH PRIVILEGES",
                ]:
                    c.execute(stmt)
            conn.close()
        finally:
            rc = p.stop(signal.SIGTERM, timeout=60)
        if rc != 0:
            raise HarnessError("template mariadbd shutdown rc=%s:\n%s" % (rc, tail(errlog)))
        open(os.path.join(data, "READY"), "w").close()
        shutil.rmtree(final, ignore_errors=True)
        os.rename(data, final)
        shutil.rmtree(work, ignore_errors=True)
        return final


_server_ids = iter(range(1, 1 << 30))


class MariaDB:
    """A real mariadbd on 127.0.0.1:<free port>, datadir copied from the
    template. Has database `app`, users shardwire@127.0.0.1/@localhost
    (shardwire-pw, ALL on app.*), root@localhost via unix socket and
    root@127.0.0.1 with password ROOT_TCP_PASSWORD. Master settings
    (binlog, server_id, sync_binlog=1, flush_log_at_trx_commit=1) are on."""

    START_TIMEOUT = 60.0

    def __init__(self, name="db", extra_args=(), start=True, role="master"):
        """<role>: "master" (binlog, the durability settings), "semisync"
        (a replicated shard's master: also lossless semi-sync), "standby"
        (a replica's settings; call replicate_from() once started)."""
        self.name = name
        self.role = role
        self.dir = _new_dir("mariadb-" + name)
        self.datadir = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "mysqld.sock")
        self.log_path = os.path.join(self.dir, "error.log")
        self.server_id = next(_server_ids)
        self.extra_args = list(extra_args)
        self.port = None
        self.proc = None
        self.start_seconds = None
        shutil.copytree(_template_datadir(), self.datadir)
        os.unlink(os.path.join(self.datadir, "READY"))
        _components.append(self)
        if start:
            self.start()

    def label(self):
        return "mariadb %s port=%s" % (self.name, self.port)

    def argv(self):
        return [MARIADBD, "--no-defaults", "--user=root", "--datadir=" + self.datadir,
                "--socket=" + self.socket, "--port=%d" % self.port,
                "--bind-address=127.0.0.1", "--log-error=" + self.log_path,
                "--pid-file=" + os.path.join(self.dir, "mysqld.pid"),
                "--server-id=%d" % self.server_id] + \
            MARIADB_COMMON_ARGS + MARIADB_MASTER_ARGS + \
            {"master": [], "semisync": MARIADB_SEMISYNC_MASTER_ARGS,
             "standby": MARIADB_STANDBY_ARGS}[self.role] + self.extra_args

    def start(self):
        """Starts mariadbd (same port and datadir on a restart) and waits until
        root can run a query. The first start retries on a port race."""
        if self.proc and self.proc.alive():
            return
        self.stopped = False
        t0 = time.monotonic()
        first = self.port is None
        for attempt in range(3 if first else 1):
            if first:
                self.port = free_port()
            log_pos = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
            self.proc = Proc(self.argv(), self.log_path + ".stdout")
            try:
                wait_for(self._ready, self.START_TIMEOUT, self.label(), proc=self.proc,
                         log=self.log_tail)
                break
            except HarnessError:
                self.proc.stop(signal.SIGKILL)
                with open(self.log_path, "rb") as f:
                    f.seek(log_pos)
                    bind_race = b"Bind on TCP/IP port" in f.read()
                if not (first and bind_race) or attempt == 2:
                    raise
        self.start_seconds = time.monotonic() - t0

    def _ready(self):
        c = pymysql.connect(unix_socket=self.socket, user="root", connect_timeout=2)
        c.close()
        return True

    def connect(self, user="root", password=None, database=APP_DB, **kw):
        """pymysql connection straight to this server: root over the unix
        socket by default, any other user over TCP."""
        if user == "root" and password is None:
            return pymysql.connect(unix_socket=self.socket, user="root", database=database,
                                   autocommit=True, **kw)
        return pymysql.connect(host="127.0.0.1", port=self.port, user=user,
                               password=password or "", database=database,
                               autocommit=True, **kw)

    def sql(self, stmt, params=None, database=APP_DB):
        """Runs one statement as root directly on this server; returns the
        rows as a tuple of tuples (empty for statements without a result)."""
        conn = self.connect(database=database)
        try:
            with conn.cursor() as c:
                c.execute(stmt, params)
                return c.fetchall()
        finally:
            conn.close()

    def replicate_from(self, master, timeout=30.0):
        """Makes this server a GTID replica of <master> and waits until both
        replication threads run."""
        self.sql("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='%s',"
                 " MASTER_PASSWORD='%s', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1"
                 % (master.port, REPL_USER, REPL_PASSWORD))
        self.sql("START SLAVE")
        wait_for(lambda: self.slave_running() == (True, True), timeout,
                 "%s replicating from %s" % (self.label(), master.label()), log=self.log_tail)

    def slave_status(self):
        """SHOW SLAVE STATUS as a dict (empty if not a replica)."""
        conn = self.connect(cursorclass=pymysql.cursors.DictCursor)
        try:
            with conn.cursor() as c:
                c.execute("SHOW SLAVE STATUS")
                return c.fetchone() or {}
        finally:
            conn.close()

    def slave_running(self):
        st = self.slave_status()
        return (st.get("Slave_IO_Running") == "Yes", st.get("Slave_SQL_Running") == "Yes")

    def wait_caught_up(self, master, timeout=30.0):
        """Waits until this replica has applied everything in <master>'s binlog."""
        def done():
            want = master.sql("SELECT @@gtid_binlog_pos")[0][0]
            return not want or self.sql("SELECT @@gtid_slave_pos")[0][0] == want
        wait_for(done, timeout, "%s caught up with %s" % (self.label(), master.label()),
                 log=self.log_tail)

    def kill(self, sig=signal.SIGKILL):
        """Sends <sig> to mariadbd (SIGKILL to crash, SIGSTOP/SIGCONT to hang)."""
        if self.proc:
            self.proc.send(sig)
            if sig == signal.SIGKILL:
                self.proc.popen.wait(10)

    def stop(self):
        """Clean shutdown (SIGTERM) and wait; returns the exit status."""
        self.stopped = True
        if self.proc:
            return self.proc.stop(signal.SIGTERM, timeout=60)
        return None

    def restart(self):
        self.stop()
        self.start()

    def alive(self):
        return bool(self.proc and self.proc.alive())

    def log_tail(self, n=40):
        return tail(self.log_path, n)


# ---------------------------------------------------------------- ZooKeeper

def _zk_cmd(port, word, timeout=2.0):
    """Sends a ZooKeeper four-letter word; returns the reply text."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(word.encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode("utf-8", "replace")


def _zk_argv(cfg):
    for jar in ZK_JARS:
        require(jar, "zookeeper" if "zookeeper" in jar else "libslf4j-java")
    require(JAVA, "default-jre-headless (dependency of zookeeper)")
    return [JAVA, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Dzookeeper.admin.enableServer=false",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-cp", ":".join(ZK_JARS),
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]


class _ZkNode:
    def __init__(self, dirname, myid=None):
        self.dir = dirname
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data, exist_ok=True)
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        self.log_path = os.path.join(self.dir, "zookeeper.log")
        self.port = free_port()
        self.myid = myid
        self.proc = None
        if myid is not None:
            with open(os.path.join(self.data, "myid"), "w") as f:
                f.write("%d\n" % myid)

    def write_cfg(self, servers=()):
        with open(self.cfg, "w") as f:
            f.write("tickTime=500\ninitLimit=20\nsyncLimit=10\n"
                    "dataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
                    "admin.enableServer=false\n4lw.commands.whitelist=*\n"
                    "maxClientCnxns=0\n" % (self.data, self.port))
            for line in servers:
                f.write(line + "\n")

    def start(self):
        if self.proc and self.proc.alive():
            return
        self.proc = Proc(_zk_argv(self.cfg), self.log_path, cwd=self.dir)

    def alive(self):
        return bool(self.proc and self.proc.alive())

    def serving(self):
        """True when the node answers ruok and serves clients (srvr works
        only once it is a leader/follower/standalone)."""
        if _zk_cmd(self.port, "ruok") != "imok":
            return False
        return "Mode:" in _zk_cmd(self.port, "srvr")

    def mode(self):
        for line in _zk_cmd(self.port, "srvr").splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return None


class ZooKeeper:
    """A standalone ZooKeeper (Debian's zookeeper package) on a free port."""

    START_TIMEOUT = 60.0

    def __init__(self, start=True):
        self.node = _ZkNode(_new_dir("zookeeper"))
        self.node.write_cfg()
        self.log_path = self.node.log_path
        _components.append(self)
        if start:
            self.start()

    def label(self):
        return "zookeeper port=%d" % self.port

    @property
    def port(self):
        return self.node.port

    @property
    def hosts(self):
        return "127.0.0.1:%d" % self.node.port

    def cmd(self, word):
        """Four-letter word (ruok, srvr, stat, mntr, ...) -> reply text."""
        return _zk_cmd(self.node.port, word)

    def start(self):
        """Starts (or restarts, same port and data) and waits for ruok -> imok."""
        self.stopped = False
        self.node.start()
        wait_for(self.node.serving, self.START_TIMEOUT, self.label(), proc=self.node.proc,
                 log=self.log_tail)

    def stop(self):
        self.stopped = True
        if self.node.proc:
            return self.node.proc.stop(signal.SIGTERM, timeout=20)

    def kill(self, sig=signal.SIGKILL):
        if self.node.proc:
            self.node.proc.send(sig)
            if sig == signal.SIGKILL:
                self.node.proc.popen.wait(10)

    def alive(self):
        return self.node.alive()

    def log_tail(self, n=40):
        return tail(self.log_path, n)


class ZooKeeperEnsemble:
    """An n-node ZooKeeper ensemble on loopback. Nodes are indexed 0..n-1."""

    START_TIMEOUT = 90.0

    def __init__(self, n=3, start=True):
        self.dir = _new_dir("zk-ensemble")
        self.nodes = [_ZkNode(os.path.join(self.dir, "node%d" % i), myid=i + 1)
                      for i in range(n)]
        servers = ["server.%d=127.0.0.1:%d:%d" % (i + 1, free_port(), free_port())
                   for i in range(n)]
        for node in self.nodes:
            node.write_cfg(servers)
        self.log_path = self.nodes[0].log_path
        _components.append(self)
        if start:
            for node in self.nodes:
                node.start()
            self.wait_quorum()

    def label(self):
        return "zookeeper-ensemble ports=%s" % ",".join(str(n.port) for n in self.nodes)

    @property
    def hosts(self):
        return ",".join("127.0.0.1:%d" % n.port for n in self.nodes)

    def wait_quorum(self, timeout=None):
        """Waits until every running node serves and one is leader."""
        def ok():
            live = [n for n in self.nodes if n.alive()]
            return all(n.serving() for n in live) and self.leader() is not None
        wait_for(ok, timeout or self.START_TIMEOUT, self.label(), log=self.log_tail)

    def leader(self):
        """Index of the current leader, or None."""
        for i, n in enumerate(self.nodes):
            try:
                if n.alive() and n.mode() == "leader":
                    return i
            except OSError:
                pass
        return None

    def kill(self, i, sig=signal.SIGKILL):
        p = self.nodes[i].proc
        if p:
            p.send(sig)
            if sig == signal.SIGKILL:
                p.popen.wait(10)

    def stop(self, i=None):
        self.stopped = i is None
        for n in (self.nodes if i is None else [self.nodes[i]]):
            if n.proc:
                n.proc.stop(signal.SIGTERM, timeout=20)

    def start(self, i):
        """Restarts node <i> and waits until it serves again."""
        n = self.nodes[i]
        n.start()
        wait_for(n.serving, self.START_TIMEOUT, "zookeeper node %d" % i, proc=n.proc,
                 log=lambda: tail(n.log_path))

    def log_tail(self, n=20):
        return "\n".join("-- node %d --\n%s" % (i, tail(x.log_path, n))
                         for i, x in enumerate(self.nodes))


# ------------------------------------------------------------------- Router

def _check_built(binary):
    """tests/run names binaries whose build failed in SW_BINARY_PROBLEM: a
    stale binary from an earlier build must not be tested."""
    problem = os.environ.get("SW_BINARY_PROBLEM", "")
    for item in problem.split(";"):
        item = item.strip()
        if item and os.path.abspath(binary) + " did not build" in item:
            raise HarnessError(item)


def shardwire_path():
    return os.environ.get("SW_SHARDWIRE", os.path.join(BUILD_DIR, "router", "shardwire"))


def shardctl_path():
    return os.environ.get("SW_SHARDCTL", os.path.join(BUILD_DIR, "tools", "shardctl"))


def addr(db):
    """"127.0.0.1:PORT" of a MariaDB, as maps and shardctl name it."""
    return "127.0.0.1:%d" % db.port


def move_masters(names, ddl):
    """{name: MariaDB}: one master per shard name, each with the tables of
    <ddl> in the app database and the grants `shardctl move` needs for the
    control account (docs/moves.md)."""
    out = {}
    for name in names:
        db = MariaDB(name)
        for stmt in list(ddl) + MOVE_GRANTS:
            db.sql(stmt)
        out[name] = db
    return out


# What `shardctl move` needs of the control account on a master.
MOVE_GRANTS = ["GRANT SELECT, INSERT, UPDATE, DELETE ON %s.* TO '%s'@'127.0.0.1'"
               % (APP_DB, CONTROL_USER),
               "GRANT REPLICATION SLAVE ON *.* TO '%s'@'127.0.0.1'" % CONTROL_USER]


def replicated_shard(name, n_standbys, schema=()):
    """A lossless semi-sync master <name> and <n_standbys> GTID standbys
    <name>-sbK replicating from it (attached before anything is written: the
    master waits for an acknowledgement). <schema> statements run on the
    master, and every standby is waited for. Returns (master, [standbys])."""
    master = MariaDB(name, role="semisync")
    standbys = []
    for k in range(n_standbys):
        sb = MariaDB("%s-sb%d" % (name, k), role="standby")
        sb.replicate_from(master)
        standbys.append(sb)
    for stmt in schema:
        master.sql(stmt)
    for sb in standbys:
        sb.wait_caught_up(master)
    return master, standbys


def shardctl(zk_hosts, *args, check=True, env=None, timeout=120):
    """Runs `shardctl --zk <zk_hosts> --timeout 3 ARGS...` (extra environment
    <env>); with <check>, asserts exit 0. Returns the CompletedProcess."""
    argv = [shardctl_path(), "--zk", zk_hosts, "--timeout", "3"] + list(args)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, **env) if env else None)
    if check:
        assert r.returncode == 0, (argv, r.returncode, r.stdout, r.stderr)
    return r


def failover_router_config(zk, name, **over):
    """Config of a router <name> on ZooKeeper <zk> with health checks every
    200 ms (down after 3 failures and 1 s) and automatic failover on, as the
    failover tests run them; keys in <over> replace or add."""
    cfg = {"zookeeper": zk.hosts, "router_id": name,
           "map_cache": os.path.join(tmp_root(), "%s.map.cache" % name),
           "pool_wait_timeout_ms": 2000, "connect_timeout_ms": 1000,
           "control_user": CONTROL_USER, "control_password": CONTROL_PASSWORD,
           "health_interval_ms": 200, "health_timeout_ms": 500,
           "health_down_after_fails": 3, "health_down_after_ms": 1000,
           "auto_failover": "on", "failover_router_wait_ms": 5000,
           "failover_flap_window_ms": 600000}
    cfg.update(over)
    return cfg


class FailoverSetup:
    """The failover fault scenarios' cluster: ZooKeeper <zk> (started by the
    caller), shard s0 = a lossless master and two standbys holding the
    ledger table, and three routers ra, rb, rc with auto_failover on (fast
    probes, map_lease_ms 3000, no flap window, the replication account;
    more settings in <router_config>), each with extra environment
    <router_env>. With <leader_env>, ra gets that environment instead and is
    made the coordinator (the others start once it says so), so a test
    hook (SHARDWIRE_TEST_FAILOVER_PAUSE_AFTER) holds the one that acts."""

    def __init__(self, zk, router_env=None, leader_env=None, router_config=None):
        from ledger import LEDGER_DDL
        self.zk = zk
        self.master, self.standbys = replicated_shard("m", 2, [LEDGER_DDL])
        self.servers = [self.master] + self.standbys
        self.ctl("init", "--acl", "open", "--shard",
                 shard_spec("s0", self.master, self.standbys))
        self.routers = []
        for name in ("ra", "rb", "rc"):
            r = Router(failover_router_config(
                zk, name, failover_router_wait_ms=3000, map_lease_ms=3000,
                failover_flap_window_ms=0, repl_user=REPL_USER, repl_password=REPL_PASSWORD,
                **(router_config or {})), start=False)
            r.start(env=leader_env if leader_env and name == "ra" else router_env)
            if leader_env and name == "ra":
                wait_for(lambda: "is now the coordinator" in self.log(r), 30,
                         "ra the coordinator")
            self.routers.append(r)

    def ctl(self, *a):
        return shardctl(self.zk.hosts, *a).stdout

    def status(self):
        return json.loads(self.ctl("--json", "status"))

    def master_addr(self):
        return self.status()["shards"][0]["master"]

    @staticmethod
    def log(router):
        with open(router.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def writers(self, base, routers=None):
        """One ledger writer per router of <routers> (default: all), started
        and seen acknowledged."""
        from ledger import Writer
        ws = [Writer(base + i, r, userid_base=100 * (base + i)) for i, r in
              enumerate(routers or self.routers)]
        for w in ws:
            w.start()
        wait_for(lambda: all(len(w.acked) >= 20 for w in ws), 30, "writes flowing")
        return ws

    def finish(self, ws, on):
        """Stops the writers <ws>; asserts every acknowledged row is on <on>;
        returns its rows."""
        from ledger import stop_and_check
        return stop_and_check(ws, on)

    def stop(self):
        for r in self.routers:
            r.stop(check=False)
        for s in self.servers:
            s.stop()


def shard_spec(shard, master, standbys):
    """`shardctl init --shard` text for <shard>: NAME=MASTER[,standby=H:P...]."""
    return "%s=%s" % (shard, ",".join([addr(master)] + ["standby=%s" % addr(sb)
                                                        for sb in standbys]))


def map_text(shards, n_vbuckets=1024, key_columns="userid", key_type="int"):
    """Map file text spreading <n_vbuckets> evenly over <shards>, a list of
    (name, "host:port") or (name, "host:port", ["host:port", ...standbys])
    in order."""
    lines = ["version 1", "vbuckets %d" % n_vbuckets, "key_columns %s" % key_columns,
             "key_type %s" % key_type]
    for sh in shards:
        lines.append("shard %s master=%s" % (sh[0], sh[1]) +
                     "".join(" standby=%s" % sb for sb in (sh[2] if len(sh) > 2 else [])))
    n = len(shards)
    for i, (name, *_) in enumerate(shards):
        lo, hi = n_vbuckets * i // n, n_vbuckets * (i + 1) // n - 1
        lines.append("vb %d-%d %s" % (lo, hi, name))
    return "\n".join(lines) + "\n"


def _read_handshake(port):
    """True once something on <port> sends a MySQL HandshakeV10 (protocol 10)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        hdr = b""
        while len(hdr) < 5:
            b = s.recv(5 - len(hdr))
            if not b:
                return False
            hdr += b
        return hdr[4] == 10


class Router:
    """A shardwire daemon started with a config written from <config> (keys
    override the defaults below; a list value repeats the key) and, given
    <map_text>, a map file whose path becomes map_file. With
    SW_TEST_ROUTER=host:port nothing is started: tests target that router."""

    START_TIMEOUT = 30.0

    def __init__(self, config=None, map_text=None, start=True):
        self.external = os.environ.get("SW_TEST_ROUTER")
        self.dir = _new_dir("router")
        self.config_path = os.path.join(self.dir, "shardwire.conf")
        self.map_path = None
        self.log_path = os.path.join(self.dir, "shardwire.log")
        self.proc = None
        self.returncode = None
        if self.external:
            host, _, port = self.external.rpartition(":")
            self.host, self.port = host or "127.0.0.1", int(port)
        else:
            self.host, self.port = "127.0.0.1", free_port()
        self.config = {
            "listen": "%s:%d" % (self.host, self.port),
            "workers": 2,
            "database": APP_DB,
            "shard_key": "userid",
            "backend_user": BACKEND_USER,
            "backend_password": BACKEND_PASSWORD,
            "user": ["%s %s" % (APP_USER, native_password_hash(APP_PASSWORD))],
            "max_allowed_packet": 67108864,
            "connect_timeout_ms": 2000,
            "handshake_timeout_ms": 5000,
            "log_level": "info",
        }
        if map_text is not None:
            self.map_path = os.path.join(self.dir, "map.txt")
            with open(self.map_path, "w") as f:
                f.write(map_text)
            self.config["map_file"] = self.map_path
        self.config.update(config or {})
        # A router on ZooKeeper needs credentials or the explicit open ACL
        # (docs/zookeeper.md); tests that do not test access control say open.
        if "zookeeper" in self.config and not any(
                k in self.config for k in ("zookeeper_auth", "zookeeper_auth_file",
                                           "zookeeper_acl")):
            self.config["zookeeper_acl"] = "open"
        self.write_config()
        _components.append(self)
        if start:
            self.start()

    def label(self):
        return "router port=%d%s" % (self.port, " (external)" if self.external else "")

    def write_config(self):
        with open(self.config_path, "w") as f:
            f.write("# written by tests/e2e/cluster.py\n")
            for k, v in self.config.items():
                for item in (v if isinstance(v, (list, tuple)) else [v]):
                    f.write("%s = %s\n" % (k, item))

    def start(self, extra_args=(), env=None):
        """Starts shardwire -c CONFIG (with extra environment <env>) and waits
        until it sends a MySQL greeting."""
        self.stopped = False
        if self.external:
            wait_for(lambda: _read_handshake(self.port), self.START_TIMEOUT, self.label())
            return
        binary = shardwire_path()
        _check_built(binary)
        if not os.access(binary, os.X_OK):
            raise HarnessError("router binary %s not found or not executable "
                               "(build it: tests/run builds build-test/; or set SW_SHARDWIRE)"
                               % binary)
        self.proc = Proc([binary, "-c", self.config_path] + list(extra_args), self.log_path,
                         cwd=self.dir, env=dict(os.environ, **env) if env else None)
        wait_for(lambda: _read_handshake(self.port), self.START_TIMEOUT, self.label(),
                 proc=self.proc, log=self.log_tail)

    def connect(self, user=APP_USER, password=APP_PASSWORD, database=APP_DB, **kw):
        """A pymysql connection to the router (autocommit on unless given)."""
        kw.setdefault("autocommit", True)
        kw.setdefault("connect_timeout", 10)
        return pymysql.connect(host=self.host, port=self.port, user=user, password=password,
                               database=database, **kw)

    def sanitizer_errors(self):
        """Lines of ASan/UBSan/LSan reports in the router log."""
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        keys = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                "SUMMARY: UndefinedBehaviorSanitizer", "SUMMARY: AddressSanitizer")
        return [l for l in text.splitlines() if any(k in l for k in keys)]

    def stop(self, timeout=20.0, check=True):
        """SIGTERM and wait (SIGKILL after <timeout>). With <check>, raises
        AssertionError if the exit was not clean or a sanitizer reported."""
        if self.external or not self.proc:
            return None
        self.stopped = True
        if not self.proc.alive():
            self.returncode = self.proc.popen.returncode
        else:
            self.returncode = self.proc.stop(signal.SIGTERM, timeout=timeout)
        if check:
            errs = self.sanitizer_errors()
            assert not errs, "router sanitizer report:\n" + "\n".join(errs) + \
                "\n" + self.log_tail(60)
            assert self.returncode == 0, "router exit status %s after SIGTERM\n%s" % (
                self.returncode, self.log_tail())
        return self.returncode

    def kill(self, sig=signal.SIGKILL):
        if self.proc and not self.external:
            self.proc.send(sig)
            if sig == signal.SIGKILL:
                self.proc.popen.wait(10)

    def alive(self):
        return bool(self.external or (self.proc and self.proc.alive()))

    def log_tail(self, n=40):
        if self.external:
            return "(external router %s: no log here)" % self.external
        return tail(self.log_path, n)


# ------------------------------------------------------------------ Cluster

def explain(statements, map_path=None):
    """Runs `shardctl explain [--map FILE] --json STMT...`; returns one dict
    per statement."""
    binary = shardctl_path()
    _check_built(binary)
    if not os.access(binary, os.X_OK):
        raise HarnessError("shardctl binary %s not found (set SW_SHARDCTL or build it)" % binary)
    argv = [binary, "explain", "--json"]
    if map_path:
        argv += ["--map", map_path]
    r = subprocess.run(argv + list(statements), capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise HarnessError("%s failed rc=%d: %s" % (" ".join(argv[:4]), r.returncode,
                                                   r.stderr.strip()))
    out = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    if len(out) != len(statements):
        raise HarnessError("shardctl explain: %d statements, %d results:\n%s" % (
            len(statements), len(out), r.stdout))
    return out


class Cluster:
    """<n_shards> MariaDB masters s0..s{n-1}, a map file spreading the
    vbuckets evenly, and a Router on them (unless start_router=False)."""

    def __init__(self, n_shards=2, router_config=None, start_router=True, n_vbuckets=1024,
                 standbys=0):
        """With <standbys> > 0 every shard is a lossless semi-sync master with
        that many GTID standbys (self.standbys[name]), listed in the map."""
        self.shards = collections.OrderedDict()
        self.standbys = collections.OrderedDict()
        for i in range(n_shards):
            name = "s%d" % i
            if standbys:
                self.shards[name], self.standbys[name] = replicated_shard(name, standbys)
            else:
                self.shards[name], self.standbys[name] = MariaDB(name), []
        self.map_text = map_text([(n, "127.0.0.1:%d" % db.port,
                                   ["127.0.0.1:%d" % sb.port for sb in self.standbys[n]])
                                  for n, db in self.shards.items()],
                                 n_vbuckets=n_vbuckets)
        self.dir = _new_dir("cluster")
        self.map_file = os.path.join(self.dir, "map.txt")
        with open(self.map_file, "w") as f:
            f.write(self.map_text)
        self.router = None
        if start_router:
            self.start_router(router_config)

    def start_router(self, config=None):
        cfg = {"map_file": self.map_file}
        cfg.update(config or {})
        self.router = Router(cfg)
        return self.router

    def shards_of(self, userids):
        """Expected shard name for each userid, from `shardctl explain`."""
        res = explain(["SELECT * FROM accounts WHERE userid = %d" % int(u) for u in userids],
                      self.map_file)
        out = []
        for u, r in zip(userids, res):
            if "shard" not in r:
                raise HarnessError("shardctl explain gave no shard for userid %s: %r" % (u, r))
            out.append(r["shard"])
        return out

    def shard_of(self, userid):
        return self.shards_of([userid])[0]

    def db_of(self, userid):
        """The MariaDB object of the shard that should hold <userid>."""
        return self.shards[self.shard_of(userid)]

    def create_schema(self, sql):
        """Runs DDL (one statement or a list) on every shard's master
        directly; standbys get it by replication (waited for)."""
        for name, db in self.shards.items():
            for stmt in ([sql] if isinstance(sql, str) else sql):
                db.sql(stmt)
            for sb in self.standbys[name]:
                sb.wait_caught_up(db)

    def sql_all(self, stmt, params=None):
        """{shard name: rows} of <stmt> run directly on every shard."""
        return {n: db.sql(stmt, params) for n, db in self.shards.items()}

    def stop(self, check=True):
        try:
            if self.router:
                self.router.stop(check=check)
        finally:
            for sbs in self.standbys.values():
                for sb in sbs:
                    sb.stop()
            for db in self.shards.values():
                db.stop()


# --------------------------------------------------------------- mariadb CLI

CliResult = collections.namedtuple("CliResult", "rc stdout stderr")


def mysql_cli(port, user, password, sql, database=APP_DB, host="127.0.0.1",
              args=("--batch",), timeout=60):
    """Runs the real `mariadb` client: -h<host> -P<port> -u<user> -p<pw>
    <database> -e <sql>. Returns CliResult(rc, stdout, stderr)."""
    require(MARIADB_CLI, "mariadb-client")
    argv = [MARIADB_CLI, "--no-defaults", "-h" + host, "-P%d" % port, "-u" + user,
            "--protocol=TCP", "--connect-timeout=10"] + list(args)
    if password is not None:
        argv.append("-p" + password)
    if database:
        argv.append(database)
    r = subprocess.run(argv + ["-e", sql], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return CliResult(r.returncode, r.stdout, r.stderr)


# ------------------------------------------------------------- vbucket moves

def move_env(**kw):
    """The environment `shardctl move` (and switchover) runs with: the
    control and replication accounts, plus <kw>."""
    e = dict(os.environ, SHARDWIRE_CONTROL_USER=CONTROL_USER,
             SHARDWIRE_CONTROL_PASSWORD=CONTROL_PASSWORD, SHARDWIRE_REPL_USER=REPL_USER,
             SHARDWIRE_REPL_PASSWORD=REPL_PASSWORD)
    e.update(kw)
    return e


def move_argv(zk_hosts, root, *args):
    return [shardctl_path(), "--zk", zk_hosts, "--root", root, "--timeout", "5"] + list(args)


def move_ctl(zk_hosts, root, *args, check=True, timeout=120):
    """Runs shardctl on <root>; with <check>, asserts exit 0."""
    r = subprocess.run(move_argv(zk_hosts, root, *args), capture_output=True, text=True,
                       timeout=timeout, env=move_env())
    if check:
        assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r


def stopped(pid):
    """True when process <pid> is stopped (SIGSTOP)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


def map_owners(text):
    """{vbucket: shard} of a map's text (`shardctl dump-map`)."""
    own = {}
    for line in text.splitlines():
        if line.startswith("vb "):
            rng, shard = line.split()[1], line.split()[2]
            lo, _, hi = rng.partition("-")
            for vb in range(int(lo), int(hi or lo) + 1):
                own[vb] = shard
    return own


class MoveRig:
    """A fresh ZooKeeper root for the `shardctl move` tests: the vbuckets
    spread over <shards> ([(name, master, [standbys])], in order), then the
    <spare> shards added owning nothing; the ledger table emptied (on every
    writable server of <servers>, every MariaDB the tests use; standbys get
    it by replication); <n_routers> routers on the root (keys of
    <router_config> override the defaults); writers of the write ledger
    (ledger.py) through them on <users> users from 2000."""

    _count = [0]

    def __init__(self, zk, servers, shards, spare=(), n_vbuckets=16, n_routers=2,
                 router_config=None, users=48):
        MoveRig._count[0] += 1
        self.zk, self.servers, self.users = zk, list(servers), users
        self.root = root = "/mv%d" % MoveRig._count[0]
        spec = [arg for name, m, sbs in shards for arg in ("--shard", shard_spec(name, m, sbs))]
        self.ctl("init", "--acl", "open", "--vbuckets", str(n_vbuckets), *spec)
        for name, m, sbs in spare:
            self.ctl("add-shard", name, addr(m), *[a for sb in sbs for a in ("--standby",
                                                                              addr(sb))])
        for db in self.servers:
            if db.alive() and db.sql("SELECT @@read_only")[0][0] == 0:
                db.sql("DELETE FROM ledger")
        self.routers = []
        for k in range(n_routers):
            name = "r%c" % (ord("a") + k)
            self.routers.append(Router(dict({
                "zookeeper": zk.hosts, "zk_root": root, "router_id": name,
                "map_cache": os.path.join(tmp_root(), "%s-%s.map" % (root.strip("/"), name)),
                "pool_wait_timeout_ms": 3000, "move_hold_ms": 20000}, **(router_config or {}))))
        if n_routers:
            wait_for(lambda: len(json.loads(self.ctl("--json", "routers").stdout)["routers"])
                     == n_routers, 20, "routers registered")
        self.writers = []

    def ctl(self, *args, check=True, timeout=120):
        return move_ctl(self.zk.hosts, self.root, *args, check=check, timeout=timeout)

    def argv(self, *args):
        return move_argv(self.zk.hosts, self.root, *args)

    def start_writers(self, n=4, userids=None, first=1):
        """Starts <n> more writers through the routers, on every user (or
        on <userids>); waits until each had writes acknowledged."""
        from ledger import Writer
        new = [Writer(i, self.routers[i % len(self.routers)], userid_base=2000,
                      users=self.users, pause=0.003, userids=userids)
               for i in range(first, first + n)]
        for w in new:
            w.start()
        self.writers += new
        wait_for(lambda: all(len(w.acked) >= 10 for w in new), 30, "writes flowing")
        return new

    def owners(self):
        """{vbucket: shard} as the map says."""
        return map_owners(self.ctl("dump-map").stdout)

    def masters(self):
        """{shard: MariaDB} of the masters the map names."""
        by_addr = {addr(db): db for db in self.servers}
        out = {}
        for line in self.ctl("dump-map").stdout.splitlines():
            if line.startswith("shard "):
                words = dict(w.split("=", 1) for w in line.split()[2:] if "=" in w)
                out[line.split()[1]] = by_addr[words["master"]]
        return out

    def vbuckets(self, users):
        """{userid: vbucket} by the map."""
        path = os.path.join(tmp_root(), "%s.map" % self.root.strip("/"))
        with open(path, "w") as f:
            f.write(self.ctl("dump-map").stdout)
        res = explain(["SELECT * FROM ledger WHERE userid = %d" % u for u in users], path)
        return {u: r["vbucket"] for u, r in zip(users, res)}

    def fill(self, shard_db, per_user, pred=lambda vb: True):
        """<per_user> rows (writer 0) for each user whose vbucket passes
        <pred>, written on <shard_db> directly; returns the keys."""
        vbs = self.vbuckets(list(range(2000, 2000 + self.users)))
        keys = [(u, i) for u, vb in sorted(vbs.items()) if pred(vb) for i in range(per_user)]
        conn = shard_db.connect()
        with conn.cursor() as c:
            c.executemany("INSERT INTO ledger VALUES (%s, %s, 0)", keys)
        conn.close()
        return keys

    def check_ledger(self, source, moving, filled=None):
        """Stops the writers; every acknowledged row once, on the master of
        the shard owning it, and nothing of the <moving> vbuckets left on
        <source>'s master; given <filled> (keys written as writer 0), the
        rows of writer 0 are exactly those. Returns the errors the writers
        saw."""
        from ledger import lost as lost_keys, errors
        for w in self.writers:
            w.stop.set()
        for w in self.writers:
            w.join(30)
        own, masters = self.owners(), self.masters()
        where, zero = {}, set()
        for name, db in masters.items():
            for (u, i, wid) in db.sql("SELECT userid, id, writer FROM ledger"):
                assert (u, i) not in where, ("duplicate", (u, i), where[(u, i)], name)
                where[(u, i)] = name
                if wid == 0:
                    zero.add((u, i))
        vbs = self.vbuckets(sorted({u for u, _ in where} |
                                   {k[0] for w in self.writers for k in w.keys()}))
        assert sum(len(w.acked) for w in self.writers) > 50
        assert lost_keys(self.writers, set(where)) == []
        assert filled is None or zero == set(filled), (len(zero), len(set(filled)))
        wrong = [(k, n) for k, n in where.items() if own[vbs[k[0]]] != n]
        assert wrong == [], wrong[:5]
        assert not [k for k, n in where.items() if n == source and vbs[k[0]] in moving]
        return errors(self.writers)

    def paused_move(self, point, *args):
        """Starts `shardctl move ...` that stops itself at <point>
        (SHARDWIRE_MOVE_PAUSE); returns it once it is stopped there."""
        p = subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=move_env(SHARDWIRE_MOVE_PAUSE=point))
        wait_for(lambda: stopped(p.pid) or p.poll() is not None, 90, "mover at " + point)
        assert p.poll() is None, p.communicate()
        return p

    def journal(self):
        """The first move's journal, as `shardctl --json moves` shows it."""
        return json.loads(self.ctl("--json", "moves").stdout)["moves"][0]

    def stop(self):
        for w in self.writers:
            w.stop.set()
        for r in self.routers:
            r.stop()

"""
tests/e2e/test_harness.py - tests of the e2e harness itself (cluster.py and
the runner's cleanup). Needs no shardwire binary.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import cluster
import runner

db = None


def setup_module():
    global db
    db = cluster.MariaDB("harness")


def teardown_module():
    assert db.stop() == 0, db.log_tail()


def test_mariadb_answers():
    assert db.sql("SELECT 1") == ((1,),)
    # Master settings from FIELD-NOTES.
    row = db.sql("SELECT @@log_bin, @@sync_binlog, @@innodb_flush_log_at_trx_commit, "
                 "@@server_id, DATABASE()")
    assert row[0][:3] == (1, 1, 1), row
    assert row[0][3] == db.server_id and row[0][4] == "app", row


def test_service_user_over_tcp():
    c = db.connect(user="shardwire", password="shardwire-pw")
    try:
        with c.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            assert cur.fetchone()[0] == "shardwire@127.0.0.1"
            cur.execute("CREATE TABLE svc_t (id INT PRIMARY KEY)")
            cur.execute("INSERT INTO svc_t VALUES (1)")
            cur.execute("DROP TABLE svc_t")
    finally:
        c.close()


def test_mysql_cli():
    r = cluster.mysql_cli(db.port, "shardwire", "shardwire-pw", "SELECT 40 + 2 AS x")
    assert r.rc == 0 and r.stdout == "x\n42\n", r
    r = cluster.mysql_cli(db.port, "shardwire", "wrong", "SELECT 1")
    assert r.rc != 0 and "Access denied" in r.stderr, r


def test_native_password_hash_matches_mariadb():
    expect = db.sql("SELECT PASSWORD('app-pw')")[0][0]
    assert cluster.native_password_hash("app-pw") == expect


def test_kill_and_restart_keeps_committed_rows():
    db.sql("CREATE TABLE IF NOT EXISTS crash_t (id INT PRIMARY KEY)")
    db.sql("INSERT INTO crash_t VALUES (7)")
    port = db.port
    db.kill(signal.SIGKILL)
    assert not db.alive()
    db.restart()
    assert db.port == port
    assert db.sql("SELECT id FROM crash_t") == ((7,),)
    db.sql("DROP TABLE crash_t")


def test_sigstop_hangs_and_sigcont_resumes():
    import pymysql
    db.kill(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        try:
            pymysql.connect(host="127.0.0.1", port=db.port, user="shardwire",
                            password="shardwire-pw", connect_timeout=1, read_timeout=1)
            raise AssertionError("a stopped mariadbd answered")
        except pymysql.err.OperationalError:
            pass
        assert time.monotonic() - t0 < 5
    finally:
        db.kill(signal.SIGCONT)
    assert db.sql("SELECT 1") == ((1,),)


def test_zookeeper_ruok_stop_start():
    zk = cluster.ZooKeeper()
    try:
        assert zk.cmd("ruok") == "imok"
        assert "Mode: standalone" in zk.cmd("srvr")
        assert zk.hosts == "127.0.0.1:%d" % zk.port
        zk.stop()
        assert not zk.alive()
        zk.start()
        assert zk.cmd("ruok") == "imok"
    finally:
        zk.stop()


def test_zookeeper_ensemble_elects_new_leader():
    ens = cluster.ZooKeeperEnsemble(3)
    try:
        old = ens.leader()
        assert old is not None
        ens.kill(old)
        ens.wait_quorum()
        new = ens.leader()
        assert new is not None and new != old
        ens.start(old)
        assert ens.nodes[old].mode() == "follower"
        assert len(ens.hosts.split(",")) == 3
    finally:
        ens.stop()


def test_map_text_and_router_config():
    text = cluster.map_text([("s0", "127.0.0.1:1"), ("s1", "127.0.0.1:2")])
    assert text.splitlines()[-2:] == ["vb 0-511 s0", "vb 512-1023 s1"], text
    r = cluster.Router({"log_level": "debug", "user": ["app *AB", "other *CD"]},
                       map_text=text, start=False)
    conf = open(r.config_path).read()
    assert "log_level = debug\n" in conf and "user = app *AB\nuser = other *CD\n" in conf
    assert "map_file = %s\n" % r.map_path in conf and open(r.map_path).read() == text
    assert "listen = 127.0.0.1:%d\n" % r.port in conf


def test_router_missing_binary_is_named():
    old = os.environ.get("SW_SHARDWIRE")
    os.environ["SW_SHARDWIRE"] = "/nonexistent/shardwire"
    try:
        cluster.Router({})
        raise AssertionError("Router started without a binary")
    except cluster.HarnessError as e:
        assert "/nonexistent/shardwire" in str(e)
    finally:
        if old is None:
            del os.environ["SW_SHARDWIRE"]
        else:
            os.environ["SW_SHARDWIRE"] = old


CHILD = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, %r)
    import cluster
    db = cluster.MariaDB("child")
    zk = cluster.ZooKeeper()
    print(db.proc.pid, zk.node.proc.pid, cluster.tmp_root(), flush=True)
    if sys.argv[1] == "raise":
        raise RuntimeError("boom")
    if sys.argv[1] == "hang":
        time.sleep(600)
""")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours would still "exist": check its state.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def _child(mode, env=None):
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, **(env or {}))
    env.pop("SW_KEEP_TMP", None)
    return subprocess.Popen([sys.executable, "-c", CHILD % here, mode], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_cleanup_on_exit_and_exception():
    for mode in ("exit", "raise"):
        p = _child(mode)
        out, err = p.communicate(timeout=120)
        assert out.strip(), err
        pid_db, pid_zk, tmp = out.split()
        cluster.wait_for(lambda: not _alive(int(pid_db)) and not _alive(int(pid_zk)), 10,
                         "processes gone after %s" % mode)
        assert not os.path.exists(tmp), tmp
        assert (p.returncode == 0) == (mode == "exit"), (mode, p.returncode, err)


def test_cleanup_after_sigkill_via_pidfile():
    pidfile = os.path.join(cluster.tmp_root(), "pids")
    p = _child("hang", {"SW_E2E_PIDFILE": pidfile})
    line = p.stdout.readline()
    assert line.strip(), p.stderr.read() if p.poll() is not None else "no output"
    pid_db, pid_zk, tmp = line.split()
    p.kill()
    p.wait(10)
    assert _alive(int(pid_db)) and _alive(int(pid_zk))   # orphans, until swept
    assert runner.sweep(pidfile) >= 2
    cluster.wait_for(lambda: not _alive(int(pid_db)) and not _alive(int(pid_zk)), 10,
                     "processes gone after sweep")
    assert not os.path.exists(tmp), tmp

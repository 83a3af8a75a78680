"""
tests/e2e/test_health.py - health checks on the router's control thread
(issue 10, first part): every master and standby of the map is probed over
the control-plane account with a hard deadline; a killed or hung (SIGSTOP)
server goes down, a server that answers with an error (access denied) is
alive, and a master or standby outside the lossless semi-sync setup is
reported. Real replicated MariaDB shards, the real router; the verdicts are
read from the router's log lines.
"""

import re
import signal
import time

import cluster

C = None
HEALTH = {
    "control_user": cluster.CONTROL_USER,
    "control_password": cluster.CONTROL_PASSWORD,
    "health_interval_ms": 200,
    "health_timeout_ms": 500,
    "health_down_after_fails": 3,
    "health_down_after_ms": 1000,
}


def setup_module():
    global C
    C = cluster.Cluster(1, standbys=1, start_router=False)
    C.create_schema(["CREATE TABLE t (userid BIGINT NOT NULL, id INT NOT NULL,"
                     " PRIMARY KEY (userid, id))"])
    C.start_router(HEALTH)


def teardown_module():
    C.stop()


def log_text(router=None):
    with open((router or C.router).log_path, encoding="utf-8", errors="replace") as f:
        return f.read()


def wait_log(pattern, timeout=15.0, router=None, start=0):
    """Waits until the router log (from byte <start>) matches <pattern>."""
    rx = re.compile(pattern)

    def found():
        return rx.search(log_text(router)[start:])
    cluster.wait_for(found, timeout, "router log line /%s/" % pattern,
                     log=(router or C.router).log_tail)
    return found()


def server(db):
    return "127.0.0.1:%d" % db.port


def test_all_servers_up_and_lossless():
    master, sb = C.shards["s0"], C.standbys["s0"][0]
    wait_log(r"health: server up shard=s0 role=master server=%s was=unknown" % server(master))
    wait_log(r"health: server up shard=s0 role=standby server=%s was=unknown" % server(sb))
    # The harness's shards are in the lossless setup: nothing to warn about.
    assert "not in the lossless replication setup" not in log_text(), C.router.log_tail()


def test_hung_standby_goes_down_and_comes_back():
    sb = C.standbys["s0"][0]
    pos = len(log_text())
    sb.kill(signal.SIGSTOP)
    try:
        m = wait_log(r"health: server down shard=s0 role=standby server=%s was=suspect "
                     r"fails=(\d+) error=\"([^\"]*)\"" % server(sb), start=pos)
        assert int(m.group(1)) >= 3
        assert "no answer within 500 ms" in m.group(2) or "timeout" in m.group(2).lower(), \
            m.group(0)
    finally:
        sb.kill(signal.SIGCONT)
    wait_log(r"health: server up shard=s0 role=standby server=%s was=down" % server(sb),
             start=pos)


def test_access_denied_is_alive_not_down():
    """A probe answered with an error proves the server is alive."""
    C.router.stop()
    r = C.start_router(dict(HEALTH, control_password="wrong"))
    try:
        master = C.shards["s0"]
        wait_log(r"health: server up shard=s0 role=master server=%s was=unknown" % server(master),
                 router=r)
        wait_log(r"health: server up shard=s0 role=standby", router=r)
        # A negative check needs a window: longer than down_after_ms plus
        # several probe intervals, in which a dead-looking server would have
        # gone suspect and down.
        time.sleep(1.6)
        assert "server down" not in log_text(r) and "server suspect" not in log_text(r), \
            r.log_tail()
    finally:
        r.stop()
        C.start_router(HEALTH)


def test_unsafe_master_reported():
    """A plain (not semi-sync) shard master is reported with the setting."""
    plain = cluster.MariaDB("plain")
    text = cluster.map_text([("p0", server(plain))])
    r = cluster.Router(dict(HEALTH), map_text=text)
    try:
        wait_log(r"health: master is not in the lossless replication setup shard=p0 "
                 r"server=%s problem=\"rpl_semi_sync_master_enabled=OFF" % server(plain),
                 router=r)
        plain.sql("SET GLOBAL rpl_semi_sync_master_enabled = 1")
        plain.sql("SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC")
        wait_log(r"problem=\"rpl_semi_sync_master_timeout is short", router=r)
        plain.sql("SET GLOBAL rpl_semi_sync_master_timeout = 4294967295")
        wait_log(r"health: master setup is lossless again shard=p0", router=r)
    finally:
        r.stop()
        plain.stop()


def test_killed_master_goes_down():
    master = C.shards["s0"]
    pos = len(log_text())
    master.kill(signal.SIGKILL)
    try:
        m = wait_log(r"health: server down shard=s0 role=master server=%s was=suspect "
                     r"fails=\d+ error=\"([^\"]*)\"" % server(master), start=pos)
        assert "connect" in m.group(1), m.group(0)
    finally:
        master.start()
        C.standbys["s0"][0].sql("STOP SLAVE")
        C.standbys["s0"][0].sql("START SLAVE")
    wait_log(r"health: server up shard=s0 role=master server=%s was=down" % server(master),
             start=pos)

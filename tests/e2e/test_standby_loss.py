"""
tests/e2e/test_standby_loss.py - a shard whose standbys are gone, and a
master crashing together with standbys (issue 10 items 1, 5, 6, 11).

Two replicated shards behind two routers with automatic failover: s0 is a
master and two standbys, s1 a master and one. Each scenario runs under a
write ledger through both routers (writers spread over users of both
shards) and ends with no acknowledged write lost:

* every standby of s0 killed: writes to s0 get error 1290 naming the shard
  within a few seconds (no longer joining commits that wait for an
  acknowledgement that cannot come), a transaction that wrote gets the
  error at COMMIT instead of hanging, reads and s1 go on, nothing fails
  over; restarted (standby settings: relay_log_recovery=0, sync_relay_log=1)
  the standbys take acknowledgements again and writes succeed; the same
  with the standbys stopped (SIGSTOP) and woken; the same with the master
  idle (it still counts the killed standbys: the routers' probes of the
  standbys refuse writes, and the first write gets 1290 at once), with
  which statements count as writes;
* s0's master and one of its standbys killed at once: nothing is promoted
  while the dead standby may hold acknowledged transactions the survivor
  lacks; once it is back (restarted, not rebuilt) the coordinator fails
  over to the standby holding the most; the old master, restarted with
  --init-rpl-role=SLAVE, holds no errant transaction and rejoins;
* s1's master and its only standby killed at once: nothing can be promoted,
  `shardctl status` reports the shard down and why, clients get errors;
  the master restarted as it was (it is still the map's master and its
  binlog holds every acknowledged transaction) and then the standby bring
  the shard back;
* the same with the standby restarted first: it is promoted (its relay log
  holds every acknowledged transaction), nothing acknowledged is lost, and
  the old master, started with --init-rpl-role=SLAVE, rejoins as its
  standby (or is refused with its errant transactions named).
"""

import json
import signal
import time
import urllib.request

import pymysql

import cluster
import test_console
from cluster import addr
from rawclient import RawClient, err_of
from ledger import LEDGER_DDL as LEDGER, Writer, errors as ledger_errors, \
    lost as lost_keys

ZK = None
SHARDS = {}          # name: [master, standby, ...] (the map's order; updated on failover)
ROUTERS = {}
ADMIN = {}           # router name: admin HTTP port
USERS = {}           # shard name: userids living there
PROBES = []          # (userid, id) of the test's own acknowledged writes
_probe_ids = iter(range(90000000, 99999999))


def ctl(*args, check=True, env=None):
    return cluster.shardctl(ZK.hosts, *args, check=check, env=env)


def shard(name):
    return [s for s in json.loads(ctl("--json", "status").stdout)["shards"]
            if s["name"] == name][0]


def router_status(name):
    with urllib.request.urlopen("http://127.0.0.1:%d/status" % ADMIN[name], timeout=5) as f:
        return json.loads(f.read())


def master_health(name, shard_name):
    """The router's /status health entry of <shard_name>'s master."""
    st = router_status(name)
    master = [s for s in st["map"]["shards"] if s["name"] == shard_name][0]["master"]
    return [h for h in st["health"] if h["server"] == master and h["role"] == "master"][0]


def log_of(r):
    with open(r.log_path, encoding="utf-8", errors="replace") as f:
        return f.read()


def try_sql(router, sql, params=None):
    """Runs <sql> through <router> on a fresh connection: None when it
    succeeded, else (errno, message)."""
    try:
        c = router.connect(connect_timeout=5, read_timeout=30, write_timeout=30)
        try:
            with c.cursor() as cur:
                cur.execute(sql, params)
        finally:
            c.close()
    except pymysql.err.MySQLError as e:
        return (e.args[0], str(e.args[1]) if len(e.args) > 1 else str(e))
    return None


def try_write(router, userid):
    key = (userid, next(_probe_ids))
    err = try_sql(router, "INSERT INTO ledger (userid, id, writer) VALUES (%s, %s, 99)", key)
    if err is None:
        PROBES.append(key)
    return err


def start_writers(first_wid):
    """Four writers through both routers, ids <first_wid>.. (unique keys
    across the tests)."""
    ws = [Writer(first_wid + i, list(ROUTERS.values())[i % 2], userid_base=1000, users=50)
          for i in range(4)]
    for w in ws:
        w.start()
    cluster.wait_for(lambda: all(len(w.acked) >= 20 for w in ws), 60, "writes flowing")
    return ws


def more_writes(ws, n=20):
    counts = [len(w.acked) for w in ws]
    cluster.wait_for(lambda: all(len(w.acked) >= c + n for w, c in zip(ws, counts)), 60,
                     "writes acknowledged again")


def stop_and_check(ws):
    """Stops the writers; asserts every acknowledged row (theirs and the
    probes') is on its shard's master now. Returns the errors they saw."""
    for w in ws:
        w.stop.set()
    for w in ws:
        w.join(60)
    rows = set()
    for dbs in SHARDS.values():
        rows |= {(u, i) for u, i in dbs[0].sql("SELECT userid, id FROM ledger")}
    lost = lost_keys(ws, rows) + [k for k in PROBES if k not in rows]
    acked = sum(len(w.acked) for w in ws) + len(PROBES)
    assert not lost, "acknowledged but lost: %d of %d: %s" % (len(lost), acked, lost[:5])
    return ledger_errors(ws)


def setup_module():
    global ZK
    ZK = cluster.ZooKeeper()
    for name, n_sb in (("s0", 2), ("s1", 1)):
        m, sbs = cluster.replicated_shard(name + "m", n_sb, [LEDGER])
        SHARDS[name] = [m] + sbs
    ctl("init", "--acl", "open", "--shard", cluster.shard_spec("s0", SHARDS["s0"][0],
                                                               SHARDS["s0"][1:]),
        "--shard", cluster.shard_spec("s1", SHARDS["s1"][0], SHARDS["s1"][1:]))
    for name in ("ra", "rb"):
        ADMIN[name] = cluster.free_port()
        ROUTERS[name] = cluster.Router(cluster.failover_router_config(
            ZK, name, admin_listen="127.0.0.1:%d" % ADMIN[name], failover_buffer_ms=2000,
            standby_lost_ms=1500, rule=["allow /^FLUSH TABLES$/"]))
    # Which of the writers' users live on which shard.
    for u in range(1000, 1050):
        assert try_write(ROUTERS["ra"], u) is None
    on_s0 = {u for (u,) in SHARDS["s0"][0].sql("SELECT DISTINCT userid FROM ledger")}
    USERS["s0"], USERS["s1"] = sorted(on_s0), sorted(set(range(1000, 1050)) - on_s0)
    assert USERS["s0"] and USERS["s1"], USERS


def teardown_module():
    for r in ROUTERS.values():
        r.stop()            # a clean exit, and no sanitizer report (leaks included)
    for dbs in SHARDS.values():
        for db in dbs:
            db.stop()
    ZK.stop()


def kill_together(dbs):
    """SIGKILL to every server of <dbs> first, then wait for them: as close
    to one moment as the test can make it."""
    for db in dbs:
        db.proc.send(signal.SIGKILL)
    for db in dbs:
        db.proc.popen.wait(10)


def test_every_standby_killed_refuses_writes_without_failover():
    ra, rb = ROUTERS["ra"], ROUTERS["rb"]
    master, standbys = SHARDS["s0"][0], SHARDS["s0"][1:]
    u0, u1 = USERS["s0"][0], USERS["s1"][0]
    before = shard("s0")
    logs = {n: len(log_of(r)) for n, r in ROUTERS.items()}
    ws = start_writers(10)
    # A transaction that wrote before the loss.
    tx = ra.connect(read_timeout=30)
    txc = tx.cursor()
    txc.execute("BEGIN")
    txc.execute("INSERT INTO ledger (userid, id, writer) VALUES (%s, 91000001, 98)", (u0,))
    t0 = time.monotonic()
    kill_together(standbys)
    # The writers' commits now wait; both routers see no acknowledgement
    # coming and refuse writes to s0.
    for name in ROUTERS:
        cluster.wait_for(lambda: master_health(name, "s0").get("writes_refused"), 30,
                         "router %s refusing writes to s0" % name)
    t_refused = time.monotonic() - t0
    h = master_health("ra", "s0")
    assert h["verdict"] == "up" and h["stalled_ms"] >= 1500, h
    err = try_write(ra, u0)
    assert err and err[0] == 1290, err
    assert "write refused: no standby of shard s0" in err[1], err
    assert addr(master) in err[1] and "Restart or reattach a standby" in err[1], err
    err = try_write(rb, u0)
    assert err and err[0] == 1290 and "shard s0" in err[1], err
    # The open transaction gets the error at COMMIT, at once, and stays open.
    t = time.monotonic()
    try:
        txc.execute("COMMIT")
        raise AssertionError("COMMIT of a transaction that wrote on s0 succeeded")
    except pymysql.err.OperationalError as e:
        assert e.args[0] == 1290 and "COMMIT refused" in e.args[1], e.args
        assert "still open" in e.args[1], e.args
    assert time.monotonic() - t < 5
    txc.execute("ROLLBACK")
    tx.close()
    # A new transaction: its write is refused at once, its reads and COMMIT
    # (nothing to acknowledge) work.
    c = ra.connect(read_timeout=30)
    with c.cursor() as cur:
        cur.execute("BEGIN")
        try:
            cur.execute("INSERT INTO ledger (userid, id, writer) VALUES (%s, 91000002, 98)",
                        (u0,))
            raise AssertionError("write to s0 inside a transaction succeeded")
        except pymysql.err.OperationalError as e:
            assert e.args[0] == 1290, e.args
        cur.execute("SELECT COUNT(*) FROM ledger WHERE userid = %s", (u0,))
        assert cur.fetchone()[0] > 0
        cur.execute("COMMIT")
    c.close()
    # Prepared statements: the PREPARE works (it writes nothing), the EXECUTE
    # is refused.
    rc = RawClient(ra.port)
    try:
        assert rc.login(cluster.APP_USER, cluster.APP_PASSWORD, cluster.APP_DB)[0] == 0
        for sql, values in (("INSERT INTO ledger (userid, id, writer) VALUES (%d, ?, 97)" % u0,
                             [91000003]),
                            ("INSERT INTO ledger (userid, id, writer) VALUES (?, ?, 97)",
                             [u0, 91000004])):
            stmt, _, _ = rc.prepare(sql)
            rc.execute(stmt, values)
            kind, p = rc.read_binary_result()[:2]
            assert kind == "err" and err_of(p)[0] == 1290, (sql, kind, p)
    finally:
        rc.close()
    # Reads of s0 and writes to s1 go on.
    assert try_sql(rb, "SELECT COUNT(*) FROM ledger WHERE userid = %s", (u0,)) is None
    assert try_write(ra, u1) is None and try_write(rb, u1) is None
    # It shows: /status, the metric, shardctl status (table and JSON).
    st = router_status("ra")
    assert st["stats"]["rejected_by_reason"]["no_standby"] >= 2, st["stats"]
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % ADMIN["ra"], timeout=5) as f:
        metrics = f.read().decode()
    assert 'shardwire_master_writes_refused{shard="s0",role="master",server="%s"} 1' % (
        addr(master)) in metrics, metrics
    assert 'shardwire_statements_rejected_total{reason="no_standby"}' in metrics
    cluster.wait_for(lambda: shard("s0")["state"] == "writes_refused", 20,
                     "shardctl status: s0 writes_refused")
    s0 = shard("s0")
    assert s0["servers"][0]["routers_refusing_writes"] >= 1, s0
    assert "restart or reattach a standby" in s0["state_detail"], s0
    assert "shard s0: WRITES REFUSED" in ctl("status").stdout
    dom = test_console.browse(ADMIN["ra"])
    marks = dom.having("class", "warn writes-refused")
    assert marks and "writes refused" in marks[0][2], [e for e in dom.elems if "warn" in
                                                      e[1].get("class", "")]
    # No failover: the master is up, only its standbys are gone.
    after = shard("s0")
    assert (after["master"], after["standbys"], after["term"]) == \
        (before["master"], before["standbys"], before["term"]), (before, after)
    for n, r in ROUTERS.items():
        assert "failover: shard=s0" not in log_of(r)[logs[n]:], n
    # The standbys come back with their relay logs (standby settings):
    # acknowledgements flow, the waiting commits complete, writes succeed.
    t1 = time.monotonic()
    for sb in standbys:
        sb.start()
    for r in (ra, rb):
        cluster.wait_for(lambda: try_write(r, u0) is None, 60, "writes to s0 succeed again")
    t_back = time.monotonic() - t1
    assert not master_health("ra", "s0")["writes_refused"]
    more_writes(ws)
    errors = stop_and_check(ws)
    print("errors seen by the writers:", errors)
    # (Whether a writer meets the refusal is timing: the four may all be
    # inside commits to s0 sent before it, which wait for the restart.
    # The probes above met it.)
    assert all(code in (1290, 2013) for code, _ in errors), errors
    assert not master.sql("SELECT 1 FROM ledger WHERE id BETWEEN 91000001 AND 91000004")
    for sb in standbys:
        sb.wait_caught_up(master)
    assert shard("s0")["term"] == before["term"]
    print("standbys killed: writes refused %.2f s after the kill; writes accepted %.2f s "
          "after the restart; %d acknowledged, 0 lost" % (
              t_refused, t_back, sum(len(w.acked) for w in ws)))


def test_every_standby_stopped_refuses_writes_until_woken():
    """SIGSTOP: the master keeps counting the standbys (their connections
    stay open), but its commits wait and none is acknowledged."""
    master, standbys = SHARDS["s0"][0], SHARDS["s0"][1:]
    u0 = USERS["s0"][0]
    ws = start_writers(40)
    for sb in standbys:
        sb.kill(signal.SIGSTOP)
    try:
        for name in ROUTERS:
            cluster.wait_for(lambda: master_health(name, "s0").get("writes_refused"), 30,
                             "router %s refusing writes to s0" % name)
        assert master_health("ra", "s0")["commits_waiting"] >= 1
        err = try_write(ROUTERS["rb"], u0)
        assert err and err[0] == 1290 and "no standby of shard s0" in err[1], err
    finally:
        for sb in standbys:
            sb.kill(signal.SIGCONT)
    for r in ROUTERS.values():
        cluster.wait_for(lambda: try_write(r, u0) is None, 60, "writes to s0 succeed again")
    more_writes(ws)
    errors = stop_and_check(ws)
    assert all(code in (1290, 2013) for code, _ in errors), errors
    for sb in standbys:
        sb.wait_caught_up(master)


def test_every_standby_killed_while_master_idle():
    """No write running: the master keeps counting the killed standbys until
    its next heartbeat to them (~10 s), so its counters show nothing; the
    routers' own probes of the standbys refuse writes within a few seconds,
    and the first write gets the error instead of waiting. Also which
    statements count as writes (docs/failover.md)."""
    ra, rb = ROUTERS["ra"], ROUTERS["rb"]
    master, standbys = SHARDS["s0"][0], SHARDS["s0"][1:]
    u0 = USERS["s0"][0]
    logs = {n: len(log_of(r)) for n, r in ROUTERS.items()}
    for sb in standbys:
        sb.wait_caught_up(master)
    cluster.wait_for(lambda: all(not master_health(n, "s0").get("writes_refused")
                                 for n in ROUTERS), 30, "s0 accepting writes")
    t0 = time.monotonic()
    kill_together(standbys)
    for name in ROUTERS:
        cluster.wait_for(lambda: master_health(name, "s0").get("writes_refused"), 30,
                         "router %s refusing writes to s0" % name)
    t_refused = time.monotonic() - t0
    # The master has not noticed: the refusal came from the probes.
    clients = int(master.sql("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'")[0][1])
    print("master still counts %d standbys %.2f s after the kill" % (clients, t_refused))
    for n, r in ROUTERS.items():
        assert "no standby answers this router's probes" in log_of(r)[logs[n]:], n
    t = time.monotonic()
    err = try_write(ra, u0)
    t_first = time.monotonic() - t
    assert err and err[0] == 1290 and "no standby of shard s0" in err[1], err
    assert t_first < 5, t_first
    # What counts as a write: every statement that can change rows or the
    # binary log is refused with 1290; statements shardwire never runs
    # (LOAD DATA, CALL, several statements in one query) get their own
    # error; a locking read is served.
    for sql in ("REPLACE INTO ledger (userid, id, writer) VALUES (%d, 91000011, 96)" % u0,
                "INSERT INTO ledger (userid, id, writer) SELECT userid, id + 1000000, 96 "
                "FROM ledger WHERE userid = %d AND id = 91000011" % u0,
                "UPDATE ledger SET writer = 95 WHERE userid = %d" % u0,
                "DELETE FROM ledger WHERE userid = %d AND id = 1" % u0,
                "FLUSH TABLES"):        # allowed by the routers' rule
        err = try_sql(rb, sql)
        assert err and err[0] == 1290, (sql, err)
    for sql in ("LOAD DATA LOCAL INFILE '/dev/null' INTO TABLE ledger",
                "CALL cleanup(%d)" % u0,
                "INSERT INTO ledger (userid, id, writer) VALUES (%d, 91000012, 96); "
                "INSERT INTO ledger (userid, id, writer) VALUES (%d, 91000013, 96)" % (u0, u0)):
        err = try_sql(rb, sql)
        assert err and err[0] != 1290 and "shardwire" in err[1], (sql, err)
    for sql in ("SELECT id FROM ledger WHERE userid = %d LIMIT 1 FOR UPDATE" % u0,
                "SELECT id FROM ledger WHERE userid = %d LIMIT 1 LOCK IN SHARE MODE" % u0):
        assert try_sql(rb, sql) is None, sql
    # Back: the standbys restarted, writes succeed (and FLUSH TABLES goes on).
    for sb in standbys:
        sb.start()
    for r in (ra, rb):
        cluster.wait_for(lambda: try_write(r, u0) is None, 60, "writes to s0 succeed again")
    err = try_sql(rb, "FLUSH TABLES")   # reaches the master (the app user lacks RELOAD)
    assert err is None or err[0] == 1227, err
    assert not master.sql("SELECT 1 FROM ledger WHERE id BETWEEN 91000011 AND 92000013")
    for sb in standbys:
        sb.wait_caught_up(master)
    print("standbys killed, master idle: writes refused %.2f s after the kill, the first "
          "write answered in %.2f s" % (t_refused, t_first))


def restarted_refused(logs, name, db):
    """Whether a coordinator refused to promote in shard <name> because
    standby <db> restarted (its relay log emptied) since <logs>."""
    return any("failover: shard=%s" % name in log_of(r)[logs[n]:] and
               "standby %s of shard %s restarted" % (addr(db), name) in log_of(r)[logs[n]:]
               for n, r in ROUTERS.items())


def back_on_old_master(name, master, standbys, ws):
    """<name>'s old master restarted as it was (still the map's master; with
    AFTER_SYNC its binlog holds every acknowledged transaction): writes
    through both routers, nothing acknowledged lost, the standbys hold the
    same rows, `shardctl status` ok. Returns the writers' errors."""
    master.start()
    for r in ROUTERS.values():
        cluster.wait_for(lambda: try_write(r, USERS[name][0]) is None, 60,
                         "writes to %s succeed again" % name)
    more_writes(ws)
    errors = stop_and_check(ws)
    print("errors seen by the writers:", errors)
    for sb in standbys:
        sb.wait_caught_up(master)
        assert sb.sql("SELECT COUNT(*) FROM ledger") == master.sql("SELECT COUNT(*) FROM ledger")
    cluster.wait_for(lambda: shard(name)["state"] == "ok", 30, "shardctl status: %s ok" % name)
    return errors


def test_master_and_one_of_two_standbys_crash_together():
    old, a, b = SHARDS["s0"]
    before = shard("s0")
    logs = {n: len(log_of(r)) for n, r in ROUTERS.items()}
    ws = start_writers(20)
    kill_together([old, a])

    # Nothing is promoted while <a> is down: it may hold acknowledged
    # transactions <b> lacks (semi-sync waits for one acknowledgement).
    def refused():
        return any("failover: shard=s0" in log_of(r)[logs[n]:] and
                   "does not answer" in log_of(r)[logs[n]:] for n, r in ROUTERS.items())
    cluster.wait_for(refused, 60, "the coordinator refusing to promote without %s" % a.label())
    st = shard("s0")
    assert st["master"] == addr(old), st
    cluster.wait_for(lambda: shard("s0")["state"] == "master_down", 20, "s0 reported down")
    assert "1 of 2 standbys up" in shard("s0")["state_detail"], shard("s0")
    # <a> restarted: MariaDB emptied its relay log at startup (GTID
    # replication), so what only it acknowledged is gone from it: still no
    # promotion.
    a.start()
    cluster.wait_for(lambda: restarted_refused(logs, "s0", a), 60,
                     "the coordinator refusing: %s restarted" % a.label())
    assert shard("s0")["master"] == addr(old)
    # The old master, restarted as it was, brings the shard back.
    t0 = time.monotonic()
    back_on_old_master("s0", old, [a, b], ws)
    after = shard("s0")
    assert (after["master"], after["standbys"]) == (before["master"], before["standbys"])
    print("master and one standby killed: no promotion (the restarted standby lost its relay "
          "log); back on the old master %.2f s after its restart; %d acknowledged, 0 lost" % (
              time.monotonic() - t0, sum(len(w.acked) for w in ws)))


def test_master_and_only_standby_crash_together():
    ra, rb = ROUTERS["ra"], ROUTERS["rb"]
    master, sb = SHARDS["s1"]
    u0, u1 = USERS["s0"][0], USERS["s1"][0]
    before = shard("s1")
    logs = {n: len(log_of(r)) for n, r in ROUTERS.items()}
    ws = start_writers(30)
    kill_together([master, sb])
    # Clients get an error naming the shard (after failover_buffer_ms).
    cluster.wait_for(lambda: shard("s1")["state"] == "master_down", 30, "s1 reported down")
    s1 = shard("s1")
    assert "no standby answers" in s1["state_detail"], s1
    assert "shard s1: DOWN" in ctl("status").stdout
    err = try_write(ra, u1)
    assert err and err[0] == 2003 and "s1" in err[1], err
    err = try_sql(rb, "SELECT COUNT(*) FROM ledger WHERE userid = %s", (u1,))
    assert err and err[0] == 2003, err
    assert try_write(rb, u0) is None            # s0 goes on
    # Nothing promoted: the coordinator refuses (the standby does not answer).
    cluster.wait_for(lambda: any("failover: shard=s1" in log_of(r)[logs[n]:] and
                                 "refused" in log_of(r)[logs[n]:]
                                 for n, r in ROUTERS.items()), 60, "promotion refused")
    after = shard("s1")
    assert (after["master"], after["standbys"]) == (before["master"], before["standbys"])
    # Recovery: the master first, restarted as it was (it is still the map's
    # master, and its binlog holds every acknowledged transaction; started
    # with --init-rpl-role=SLAVE it would drop a tail the standby may hold),
    # then the standby with its relay log.
    master.start()
    cluster.wait_for(lambda: shard("s1")["servers"][0]["routers_up"] == 2, 30,
                     "both routers see s1's master up")
    sb.start()
    for r in (ra, rb):
        cluster.wait_for(lambda: try_write(r, u1) is None, 60, "writes to s1 succeed again")
    more_writes(ws)
    errors = stop_and_check(ws)
    print("errors seen by the writers:", errors)
    assert all(code in (2003, 2013, 1290) for code, _ in errors), errors
    sb.wait_caught_up(master)
    assert sb.sql("SELECT COUNT(*) FROM ledger") == master.sql("SELECT COUNT(*) FROM ledger")
    cluster.wait_for(lambda: shard("s1")["state"] == "ok", 30, "shardctl status: s1 ok")
    after = shard("s1")
    assert (after["master"], after["standbys"]) == (before["master"], before["standbys"])


def test_lone_standby_restarted_before_its_master():
    """s1's master and only standby crash together and the standby comes
    back first. Every acknowledged commit reached its relay log (AFTER_SYNC),
    but MariaDB empties a GTID replica's relay log at startup, whatever
    relay_log_recovery says: promoting it would lose what it acknowledged
    and had not applied. So it is not promoted; the old master, restarted
    as it was, brings the shard back with nothing lost."""
    master, sb = SHARDS["s1"]
    before = shard("s1")
    logs = {n: len(log_of(r)) for n, r in ROUTERS.items()}
    ws = start_writers(50)
    # Acknowledged transactions only in the standby's relay log at the
    # crash: its SQL thread stopped, its IO thread still acknowledging.
    sb.sql("STOP SLAVE SQL_THREAD")
    more_writes(ws, 10)
    unapplied = master.sql("SELECT COUNT(*) FROM ledger")[0][0] - \
        sb.sql("SELECT COUNT(*) FROM ledger")[0][0]
    kill_together([master, sb])
    assert unapplied >= 10, unapplied
    cluster.wait_for(lambda: shard("s1")["state"] == "master_down", 30, "s1 reported down")
    sb.start()
    cluster.wait_for(lambda: restarted_refused(logs, "s1", sb), 60,
                     "the coordinator refusing: %s restarted" % sb.label())
    assert sb.sql("SELECT @@read_only")[0][0] == 1
    # What a promotion would have lost: acknowledged rows of s1 that the
    # restarted standby neither holds nor can fetch any more.
    on_sb = {(u, i) for u, i in sb.sql("SELECT userid, id FROM ledger")}
    lacking = [k for k in lost_keys(ws, on_sb) if k[0] in USERS["s1"]]
    assert lacking, "the restarted standby holds every acknowledged row: relay log kept?"
    t0 = time.monotonic()
    errors = back_on_old_master("s1", master, [sb], ws)
    assert all(code in (2003, 2013, 1290) for code, _ in errors), errors
    after = shard("s1")
    assert (after["master"], after["standbys"]) == (before["master"], before["standbys"])
    print("master and only standby killed, standby restarted first (%d rows not applied "
          "there at the crash, %d acknowledged rows missing from it after its restart): not "
          "promoted; back on the old master %.2f s after its restart; %d acknowledged, "
          "0 lost" % (unapplied, len(lacking), time.monotonic() - t0,
                      sum(len(w.acked) for w in ws)))

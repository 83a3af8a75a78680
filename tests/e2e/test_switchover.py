"""
tests/e2e/test_switchover.py - `shardctl switchover` (issue 10, item 8): a
planned master change under a write ledger through two routers loses no
acknowledged write, turns the old master into a standby of the new one and
is journaled with a new term; a second switchover goes back to the old
master. Bad input (unknown shard, a server that is not a standby, a standby
that does not answer, one that is not replicating or lags) gets a clear
error and changes nothing. Real ZooKeeper, replicated MariaDB shards
(semi-sync AFTER_SYNC), real routers.
"""

import json
import os
import re
import signal
import subprocess
import time

import cluster
from cluster import addr
from ledger import LEDGER_DDL as LEDGER, Writer, errors as ledger_errors, lost as lost_keys

ZK = None
MASTER = None
STANDBYS = []
ROUTERS = []


def ctl(*args, env=None, check=True):
    argv = [cluster.shardctl_path(), "--zk", ZK.hosts, "--timeout", "3"] + list(args)
    e = dict(os.environ)
    e.update({"SHARDWIRE_CONTROL_USER": cluster.CONTROL_USER,
              "SHARDWIRE_CONTROL_PASSWORD": cluster.CONTROL_PASSWORD,
              "SHARDWIRE_REPL_USER": cluster.REPL_USER,
              "SHARDWIRE_REPL_PASSWORD": cluster.REPL_PASSWORD})
    e.update(env or {})
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=e)
    if check:
        assert r.returncode == 0, (argv, r.returncode, r.stdout, r.stderr)
    return r


def status():
    return json.loads(ctl("--json", "status").stdout)


def shard_line():
    s = [s for s in status()["shards"] if s["name"] == "s0"][0]
    return {k: s[k] for k in ("name", "master", "standbys", "vbuckets", "paused", "term")}


def setup_module():
    global ZK, MASTER
    ZK = cluster.ZooKeeper()
    MASTER, sbs = cluster.replicated_shard("m", 2, [LEDGER])
    STANDBYS.extend(sbs)
    ctl("init", "--acl", "open", "--shard", cluster.shard_spec("s0", MASTER, STANDBYS))
    for name in ("ra", "rb"):
        ROUTERS.append(cluster.Router({
            "zookeeper": ZK.hosts, "router_id": name,
            "map_cache": os.path.join(cluster.tmp_root(), "%s.map.cache" % name),
            "pool_wait_timeout_ms": 2000, "connect_timeout_ms": 1000}))


def teardown_module():
    for r in ROUTERS:
        r.stop(check=False)
    for db in [MASTER] + STANDBYS:
        db.stop()
    ZK.stop()


def test_refusals_change_nothing():
    before = shard_line()
    version = status()["version"]
    r = ctl("switchover", "nope", check=False)
    assert r.returncode == 4 and "no shard 'nope'" in r.stderr, r
    r = ctl("switchover", "s0", "--to", addr(MASTER), check=False)
    assert r.returncode == 4 and "not a standby of shard s0" in r.stderr, r
    r = ctl("switchover", "s0", env={"SHARDWIRE_REPL_USER": ""}, check=False)
    assert r.returncode == 1 and "SHARDWIRE_REPL_USER" in r.stderr, r
    # A standby that does not answer.
    STANDBYS[1].kill(signal.SIGSTOP)
    try:
        r = ctl("switchover", "s0", "--to", addr(STANDBYS[0]), check=False)
        assert r.returncode == 4 and "does not answer" in r.stderr, r
        assert "nothing changed" in r.stderr, r
    finally:
        STANDBYS[1].kill(signal.SIGCONT)
    # A standby that is not replicating.
    STANDBYS[0].sql("STOP SLAVE SQL_THREAD")
    try:
        r = ctl("switchover", "s0", "--to", addr(STANDBYS[0]), check=False)
        assert r.returncode == 4 and "is not replicating" in r.stderr, r
    finally:
        STANDBYS[0].sql("START SLAVE SQL_THREAD")
    # A standby that lags: it applies the master's events 30 s late.
    sb = STANDBYS[0]
    sb.sql("STOP SLAVE")
    sb.sql("CHANGE MASTER TO MASTER_DELAY=30")
    sb.sql("START SLAVE")
    try:
        MASTER.sql("INSERT INTO ledger (userid, id, writer) VALUES (1, 1, 0)")
        cluster.wait_for(lambda: int(sb.slave_status().get("Seconds_Behind_Master") or 0) >= 2,
                         20, "the delayed standby lagging")
        r = ctl("switchover", "s0", "--to", addr(sb), "--max-lag", "1", check=False)
        assert r.returncode == 4 and re.search(r"is \d+ s behind the master \(at most 1 s",
                                               r.stderr), r
    finally:
        sb.sql("STOP SLAVE")
        sb.sql("CHANGE MASTER TO MASTER_DELAY=0")
        sb.sql("START SLAVE")
    sb.wait_caught_up(MASTER)
    assert shard_line() == before, (shard_line(), before)
    assert status()["version"] == version
    assert MASTER.sql("SELECT @@read_only")[0][0] == 0
    for s in STANDBYS:
        assert s.slave_running() == (True, True)


def twenty_more_then_stop(writers, what):
    """Waits until each of <writers> had 20 more writes acknowledged, then
    stops them all."""
    counts = [len(w.acked) for w in writers]
    cluster.wait_for(lambda: all(len(w.acked) >= c + 20 for w, c in zip(writers, counts)), 30,
                     what)
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(30)


def switchover_under_load(to, old, first_writer):
    writers = [Writer(first_writer + i, ROUTERS[i % 2], userid_base=3000 + 100 * i)
               for i in range(4)]
    for w in writers:
        w.start()
    cluster.wait_for(lambda: all(len(w.acked) >= 30 for w in writers), 30, "writes flowing")
    term = shard_line()["term"]
    r = ctl("--json", "switchover", "s0", "--to", addr(to), check=False)
    assert r.returncode == 0, (r.stdout, r.stderr)
    done = json.loads(r.stdout.splitlines()[-1])
    assert done["event"] == "done" and done["master"] == addr(to) and done["standby"] == addr(old)
    twenty_more_then_stop(writers, "writes acknowledged after the switchover")
    line = shard_line()
    assert line["master"] == addr(to) and line["standbys"][-1] == addr(old), line
    assert not line["paused"] and line["term"] == term + 1, line
    # No acknowledged write lost, none twice; the old master follows.
    rows = {(u, i) for u, i in to.sql("SELECT userid, id FROM ledger")}
    acked = [k for w in writers for k in w.keys()]
    lost = lost_keys(writers, rows)
    assert not lost, "acknowledged but lost: %d of %d, e.g. %s" % (len(lost), len(acked), lost[:5])
    assert len(acked) == len(set(acked))
    assert to.sql("SELECT @@read_only")[0][0] == 0
    assert to.sql("SELECT @@rpl_semi_sync_master_enabled")[0][0] == 1
    assert old.sql("SELECT @@read_only")[0][0] == 1
    assert old.sql("SELECT @@rpl_semi_sync_master_enabled")[0][0] == 0
    st = old.slave_status()
    assert st["Master_Port"] == to.port and old.slave_running() == (True, True), st
    for s in [MASTER] + STANDBYS:
        if s is not to:
            cluster.wait_for(lambda: s.slave_status().get("Master_Port") == to.port, 10,
                             "every standby follows the new master")
            s.wait_caught_up(to)
            assert {(u, i) for u, i in s.sql("SELECT userid, id FROM ledger")} == rows
    # Journaled and in the history.
    st = status()
    fo = st["shards"][0]["failover"]
    assert fo["kind"] == "switchover" and fo["state"] == "done", fo
    assert fo["old"] == addr(old) and fo["new"] == addr(to), fo
    hist = st["history"][-1]
    assert hist["kind"] == "switchover" and hist["state"] == "done", hist
    assert int(hist["pause_ms"]) == done["pause_ms"], (hist, done)
    errors = ledger_errors(writers)
    by_code = {}
    for (code, _), n in errors.items():
        by_code[code] = by_code.get(code, 0) + n
    print("switchover %s -> %s: writes paused %d ms (%d ms in all); %d acknowledged, "
          "%d failed %s" % (addr(old), addr(to), done["pause_ms"], done["ms"], len(acked),
                            sum(w.failed for w in writers), by_code))
    return done, errors


def test_switchover_under_load_loses_nothing():
    """Routers hold the paused shard's statements: the clients see a pause
    (target: under 1 s; asserted under 2 s for a loaded CI machine) and no
    error."""
    done, errors = switchover_under_load(STANDBYS[0], MASTER, 10)
    assert done["pause_ms"] < 2000, done
    assert not errors, errors


def test_switchover_back_to_the_old_master():
    done, errors = switchover_under_load(MASTER, STANDBYS[0], 20)
    assert done["pause_ms"] < 2000, done
    assert not errors, errors


def db_at(address):
    return [s for s in [MASTER] + STANDBYS if addr(s) == address][0]


def killed_at(state):
    """Starts `shardctl switchover s0`, held by the test hook right after it
    journaled <state>, and kills it there with SIGKILL. Returns the journal
    as the dead runner left it."""
    argv = [cluster.shardctl_path(), "--zk", ZK.hosts, "--timeout", "3", "switchover", "s0"]
    env = dict(os.environ, SHARDWIRE_CONTROL_USER=cluster.CONTROL_USER,
               SHARDWIRE_CONTROL_PASSWORD=cluster.CONTROL_PASSWORD,
               SHARDWIRE_REPL_USER=cluster.REPL_USER, SHARDWIRE_REPL_PASSWORD=cluster.REPL_PASSWORD,
               SHARDWIRE_TEST_SWITCHOVER_PAUSE_AFTER=state)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        cluster.wait_for(lambda: status()["shards"][0]["failover"].get("state") == state, 60,
                         "the switchover at state %s" % state)
    finally:
        p.kill()
        p.communicate(timeout=10)
    fo = status()["shards"][0]["failover"]
    assert fo["kind"] == "switchover" and fo["in_progress"], fo
    return fo


def resumed_under_load(state, first_writer):
    writers = [Writer(first_writer + i, ROUTERS[i % 2], userid_base=7000 + 100 * i)
               for i in range(2)]
    for w in writers:
        w.start()
    cluster.wait_for(lambda: all(len(w.acked) >= 20 for w in writers), 30, "writes flowing")
    fo = killed_at(state)
    assert shard_line()["paused"], shard_line()
    # Anything else is refused and says how to go on.
    r = ctl("failover", "s0", check=False)
    assert r.returncode != 0 and "shardctl switchover" in r.stderr, r
    # Re-run, without --force: the dead runner's journal is found.
    r = ctl("switchover", "s0", check=False)
    assert r.returncode == 0, (r.stdout, r.stderr)
    out = r.stdout + r.stderr
    twenty_more_then_stop(writers, "writes after the resumed switchover")
    line = shard_line()
    assert not line["paused"], line
    assert status()["shards"][0]["failover"]["state"] == "done"
    # Exactly one writable server, the map's master; nothing lost.
    writable = [addr(s) for s in [MASTER] + STANDBYS if s.sql("SELECT @@read_only")[0][0] == 0]
    assert writable == [line["master"]], (writable, line)
    new = db_at(line["master"])
    rows = {(u, i) for u, i in new.sql("SELECT userid, id FROM ledger")}
    lost = lost_keys(writers, rows)
    assert not lost, "acknowledged but lost: %d, e.g. %s" % (len(lost), lost[:5])
    for s in [MASTER] + STANDBYS:
        if s is not new:
            cluster.wait_for(lambda: s.slave_status().get("Master_Port") == new.port and
                             s.slave_running() == (True, True), 20,
                             "every standby follows the master")
    return fo, out, line


def test_switchover_killed_while_paused_is_rolled_back_then_run():
    """Killed after pausing, before the fence: the re-run rolls it back (the
    old master writable, the shard unpaused, journal aborted) and then does
    the switchover it was asked for."""
    old = shard_line()["master"]
    fo, out, line = resumed_under_load("paused", 30)
    assert "rolling back" in out and "rollback: the shard is unpaused" in out, out
    assert line["master"] != old, line
    hist = status()["history"]
    assert [h["state"] for h in hist[-2:]] == ["aborted", "done"], hist[-2:]


def test_switchover_killed_after_catching_up_is_rolled_forward():
    """Killed once the target caught up (the old master fenced): the re-run
    finishes that switchover: its target is the master, the old one its
    standby."""
    fo, out, line = resumed_under_load("caught_up", 40)
    assert "rolling forward" in out, out
    assert line["master"] == fo["new"] and fo["old"] in line["standbys"], (line, fo)

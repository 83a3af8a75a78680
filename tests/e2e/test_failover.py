"""
tests/e2e/test_failover.py - `shardctl failover` (issue 10, manual part):
a killed master is replaced by the standby that received the most, with a
write ledger through two routers showing that no acknowledged write is lost;
and the safety refusals (a live master, an unreachable standby, a bad
candidate, an unknown shard) change nothing. Real ZooKeeper, replicated
MariaDB shards (semi-sync AFTER_SYNC), real routers, kill -9.
"""

import json
import os
import signal
import subprocess
import time

import cluster
from cluster import addr

ZK = None
MASTER = None
STANDBYS = []
ROUTERS = []
from ledger import LEDGER_DDL as LEDGER, Writer, lost as lost_keys


def ctl(*args, env=None, check=True):
    argv = [cluster.shardctl_path(), "--zk", ZK.hosts, "--timeout", "3"] + list(args)
    e = dict(os.environ)
    e.update({"SHARDWIRE_CONTROL_USER": cluster.CONTROL_USER,
              "SHARDWIRE_CONTROL_PASSWORD": cluster.CONTROL_PASSWORD})
    e.update(env or {})
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=e)
    if check:
        assert r.returncode == 0, (argv, r.returncode, r.stdout, r.stderr)
    return r



def shard_line():
    """s0 as the map has it (status adds health views, which move, and the
    journal, where a refused attempt is recorded as aborted)."""
    st = json.loads(ctl("--json", "status").stdout)
    s = [s for s in st["shards"] if s["name"] == "s0"][0]
    return {k: s[k] for k in ("name", "master", "standbys", "vbuckets")}


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
            "pool_wait_timeout_ms": 2000, "connect_timeout_ms": 1000,
            "control_user": cluster.CONTROL_USER, "control_password": cluster.CONTROL_PASSWORD,
            "health_interval_ms": 200, "health_timeout_ms": 500,
            "health_down_after_ms": 1000}))


def teardown_module():
    for r in ROUTERS:
        r.stop(check=False)
    for db in [MASTER] + STANDBYS:
        db.stop()
    ZK.stop()


def health_views():
    """{(router id, server): health dict} from `shardctl --json status`."""
    st = json.loads(ctl("--json", "status").stdout)
    return {(r["id"], h["server"]): h for r in st["routers"] for h in r["health"]}


def test_status_shows_every_routers_health_view():
    servers = [addr(MASTER)] + [addr(sb) for sb in STANDBYS]

    def all_up():
        v = health_views()
        return all(v.get((r, s), {}).get("verdict") == "up" for r in ("ra", "rb")
                   for s in servers)
    cluster.wait_for(all_up, 20, "both routers see every server up")
    v = health_views()
    assert v[("ra", addr(MASTER))]["role"] == "master"
    assert v[("ra", addr(MASTER))]["safe"] == "1"
    sb = v[("rb", addr(STANDBYS[0]))]
    assert sb["role"] == "standby" and sb["io"] == "1" and sb["sql"] == "1", sb
    # A hung standby is seen as down by both, with the reason.
    STANDBYS[0].kill(signal.SIGSTOP)
    try:
        cluster.wait_for(lambda: all(health_views().get((r, addr(STANDBYS[0])), {})
                                     .get("verdict") == "down" for r in ("ra", "rb")),
                         20, "both routers see the stopped standby down")
        assert "no answer within 500 ms" in health_views()[("ra", addr(STANDBYS[0]))]["error"]
        table = ctl("status").stdout
        assert "HEALTH" in table and "down" in table, table
    finally:
        STANDBYS[0].kill(signal.SIGCONT)
    cluster.wait_for(all_up, 20, "the standby up again")


def test_refusals_change_nothing():
    before = shard_line()
    version = json.loads(ctl("--json", "status").stdout)["version"]
    r = ctl("failover", "s0", check=False)
    assert r.returncode == 4 and "answers" in r.stderr and "nothing changed" in r.stderr, r
    r = ctl("failover", "nope", check=False)
    assert r.returncode == 4 and "no shard 'nope'" in r.stderr, r
    r = ctl("failover", "s0", env={"SHARDWIRE_CONTROL_USER": ""}, check=False)
    assert r.returncode == 1 and "control-plane account" in r.stderr, r
    r = ctl("failover", "s0", "--force", "--to", addr(MASTER), check=False)
    assert r.returncode == 4 and "not a standby" in r.stderr, r
    # A standby that does not answer may hold what the others lack.
    STANDBYS[1].kill(signal.SIGSTOP)
    try:
        r = ctl("failover", "s0", "--force", check=False)
        assert r.returncode == 4 and "does not answer" in r.stderr, r
    finally:
        STANDBYS[1].kill(signal.SIGCONT)
    assert shard_line() == before
    assert json.loads(ctl("--json", "status").stdout)["version"] == version
    for sb in STANDBYS:
        assert sb.slave_running() == (True, True)
    assert MASTER.sql("SELECT @@read_only")[0][0] == 0


def test_killed_master_replaced_without_losing_acknowledged_writes():
    writers = [Writer(i, ROUTERS[i % 2]) for i in range(4)]
    for w in writers:
        w.start()
    cluster.wait_for(lambda: all(len(w.acked) >= 50 for w in writers), 30, "writes flowing")
    MASTER.kill(signal.SIGKILL)
    t_kill = time.monotonic()
    r = ctl("failover", "s0", check=False)
    t_done = time.monotonic()
    assert r.returncode == 0, (r.stdout, r.stderr)
    new = None
    for sb in STANDBYS:
        if "master is now %s" % addr(sb) in r.stdout:
            new = sb
    assert new is not None, r.stdout
    other = [sb for sb in STANDBYS if sb is not new][0]
    # Writes go on through both routers on the new master.
    counts = [len(w.acked) for w in writers]
    cluster.wait_for(lambda: all(len(w.acked) >= c + 20 for w, c in zip(writers, counts)), 30,
                     "writes acknowledged after the failover")
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(30)
    rows = {(u, i) for u, i in new.sql("SELECT userid, id FROM ledger")}
    acked = [k for w in writers for k in w.keys()]
    lost = lost_keys(writers, rows)
    assert not lost, "acknowledged but lost: %d of %d, e.g. %s" % (len(lost), len(acked), lost[:5])
    assert len(acked) == len(set(acked))
    # The new master is writable and lossless, the other standby follows it.
    assert new.sql("SELECT @@read_only")[0][0] == 0
    assert new.sql("SELECT @@rpl_semi_sync_master_enabled")[0][0] == 1
    st = other.slave_status()
    assert st["Master_Port"] == new.port and st["Slave_IO_Running"] == "Yes", st
    other.wait_caught_up(new)
    assert {(u, i) for u, i in other.sql("SELECT userid, id FROM ledger")} == rows
    line = shard_line()
    assert line["master"] == addr(new) and line["standbys"] == [addr(other)], line
    # Journaled with a new term and recorded in the history.
    st = json.loads(ctl("--json", "status").stdout)
    fo = st["shards"][0]["failover"]
    assert fo["state"] == "done" and fo["new"] == addr(new) and fo["old"] == addr(MASTER), fo
    assert fo["coordinator"].startswith("shardctl-"), fo
    done = [h for h in st["history"] if h["state"] == "done"]
    assert done[-1]["term"] == str(fo["term"]) and done[-1]["new"] == addr(new), st["history"]
    print("failover took %.2f s after the kill; %d writes acknowledged, %d failed" % (
        t_done - t_kill, len(acked), sum(w.failed for w in writers)))


def rejoin_env():
    return {"SHARDWIRE_REPL_USER": cluster.REPL_USER,
            "SHARDWIRE_REPL_PASSWORD": cluster.REPL_PASSWORD}


def test_rejoin_of_a_diverged_server_refused():
    """A server with transactions the master lacks needs a rebuild: refused,
    left read-only and not replicating, the map unchanged."""
    stray = cluster.MariaDB("stray")
    try:
        stray.sql("CREATE TABLE local_only (x INT)")      # a transaction of its own
        before = shard_line()
        r = ctl("rejoin", "s0", addr(stray), env=rejoin_env(), check=False)
        assert r.returncode == 4, (r.stdout, r.stderr)
        assert "needs a rebuild" in r.stderr and "map is unchanged" in r.stderr, r.stderr
        assert shard_line() == before
        assert stray.sql("SELECT @@read_only")[0][0] == 1
        assert stray.slave_status() == {}
        r = ctl("rejoin", "s0", shard_line()["master"], env=rejoin_env(), check=False)
        assert r.returncode == 4 and "already in the map" in r.stderr, r.stderr
        r = ctl("rejoin", "s0", addr(stray), check=False)
        assert r.returncode == 1 and "SHARDWIRE_REPL_USER" in r.stderr, r.stderr
    finally:
        stray.stop()


def test_old_master_rejoins_as_standby():
    """The killed master, restarted with --init-rpl-role=SLAVE (recovery
    drops its unacknowledged tail), becomes a standby of the new master and
    gets every row."""
    MASTER.extra_args.append("--init-rpl-role=SLAVE")
    MASTER.start()
    line = shard_line()
    new = [sb for sb in STANDBYS if addr(sb) == line["master"]][0]
    r = ctl("rejoin", "s0", addr(MASTER), env=rejoin_env(), check=False)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "is a standby again" in r.stdout, r.stdout
    line = shard_line()
    assert addr(MASTER) in line["standbys"], line
    assert MASTER.sql("SELECT @@read_only")[0][0] == 1
    assert MASTER.slave_running() == (True, True)
    # Writes through the routers reach it.
    c = ROUTERS[0].connect()
    with c.cursor() as cur:
        cur.execute("INSERT INTO ledger (userid, id, writer) VALUES (7, 99999999, 9)")
    c.close()
    MASTER.wait_caught_up(new)
    assert MASTER.sql("SELECT COUNT(*) FROM ledger")[0][0] == \
        new.sql("SELECT COUNT(*) FROM ledger")[0][0]
    assert MASTER.sql("SELECT writer FROM ledger WHERE id = 99999999") == ((9,),)

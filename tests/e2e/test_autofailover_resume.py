"""
tests/e2e/test_autofailover_resume.py - a coordinator that dies in the
middle of a failover (kill -9 right after it published the new master in
the map, before the new master was made writable) is succeeded by another
router, which reads the shard's journal and finishes the promotion.
"""

import json
import os
import signal
import subprocess

import cluster
from cluster import addr

ZK = None
MASTER = None
STANDBYS = []
ROUTERS = []


def ctl(*args):
    r = subprocess.run([cluster.shardctl_path(), "--zk", ZK.hosts, "--timeout", "3"] +
                       list(args), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r



def master_in_map():
    st = json.loads(ctl("--json", "status").stdout)
    return st["shards"][0]["master"]


def shard_paused():
    st = json.loads(ctl("--json", "status").stdout)
    return st["shards"][0]["paused"]


def start_router(name, env=None):
    r = cluster.Router({
        "zookeeper": ZK.hosts, "router_id": name,
        "map_cache": os.path.join(cluster.tmp_root(), "%s.map.cache" % name),
        "control_user": cluster.CONTROL_USER, "control_password": cluster.CONTROL_PASSWORD,
        "health_interval_ms": 200, "health_timeout_ms": 500, "health_down_after_fails": 3,
        "health_down_after_ms": 1000, "auto_failover": "on", "failover_router_wait_ms": 3000},
        start=False)
    r.start(env=env)
    ROUTERS.append(r)
    return r


def log_of(r):
    with open(r.log_path, encoding="utf-8", errors="replace") as f:
        return f.read()


def setup_module():
    global ZK, MASTER
    ZK = cluster.ZooKeeper()
    MASTER, sbs = cluster.replicated_shard("m", 2)
    STANDBYS.extend(sbs)
    ctl("init", "--acl", "open", "--shard", cluster.shard_spec("s0", MASTER, STANDBYS))


def teardown_module():
    for r in ROUTERS:
        r.stop(check=False)
    for db in [MASTER] + STANDBYS:
        db.stop()
    ZK.stop()


def test_successor_finishes_a_published_failover():
    paused = start_router("rp", env={"SHARDWIRE_TEST_FAILOVER_PAUSE_AFTER": "published"})
    cluster.wait_for(lambda: "is now the coordinator" in log_of(paused), 20,
                     "rp the coordinator")
    other = start_router("rq")
    cluster.wait_for(lambda: "coordinator candidate" in log_of(other), 20, "rq a candidate")
    MASTER.kill(signal.SIGKILL)
    cluster.wait_for(lambda: "test pause after state=published" in log_of(paused), 30,
                     "rp paused after publishing")
    cand = master_in_map()
    new = [sb for sb in STANDBYS if addr(sb) == cand][0]
    # Published but not finished: the candidate is still read-only, and the
    # map holds the shard's statements (paused) rather than sending writes
    # that would get "read only".
    assert new.sql("SELECT @@read_only")[0][0] == 1
    assert shard_paused()
    paused.kill(signal.SIGKILL)
    cluster.wait_for(lambda: "is now the coordinator" in log_of(other), 30,
                     "rq the coordinator after rp died")
    cluster.wait_for(lambda: "state=done" in log_of(other), 30, "rq finished the failover")
    assert "resumed_by=rq" in log_of(other)
    assert master_in_map() == cand
    assert new.sql("SELECT @@read_only")[0][0] == 0
    assert not shard_paused()
    c = other.connect()
    with c.cursor() as cur:
        cur.execute("SELECT 1 FROM DUAL")
    c.close()
    sb = [s for s in STANDBYS if s is not new][0]
    cluster.wait_for(lambda: sb.slave_status().get("Master_Port") == new.port, 10,
                     "the other standby repointed")

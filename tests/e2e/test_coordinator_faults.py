"""
tests/e2e/test_coordinator_faults.py - a coordinator stopped (SIGSTOP) in the
middle of a failover and woken up after another router took over (issue 10,
items 4 and 11); and a `shardctl switchover` killed (-9) half-way, which the
routers' coordinator finishes or rolls back on its own (item 8).

Each scenario: shard s0 (master + 2 standbys), three routers with
auto_failover on, the first (ra) the coordinator; ledger writers through
the other two; the master killed (-9). ra is stopped at one point of the
failover, kept stopped until its ZooKeeper session has expired and another
router has carried the failover out with a newer term, then woken up. It
must change nothing: no second promotion, no map or journal change by it,
the new master stays writable (no read_only flip), no server written to but
the new master (no errant GTIDs), nothing acknowledged lost, and its log
says it stood down. The points:

  * right after the journal step `prepared` (the test hook
    SHARDWIRE_TEST_FAILOVER_PAUSE_AFTER holds it there);
  * right after `published` (the map names the candidate, paused);
  * inside a blocking MariaDB call: waiting for the candidate to apply its
    relay log (the standbys' appliers held by FLUSH TABLES WITH READ LOCK
    until ra is stopped).

The switchover scenarios share one cluster (the same shard and routers, the
repl account configured): shardctl is held by its test hook
(SHARDWIRE_TEST_SWITCHOVER_PAUSE_AFTER) after `paused`, `caught_up` or
`published` and killed there under ledger writers through the three routers
(or, once, stopped there and woken after the coordinator ended it: it must
stand down).
Its runner node in ZooKeeper goes with its session; then the coordinator
rolls back (paused: the target was not touched) or forward (caught_up,
published), by the rules of a shardctl re-run: one writable server, the
map's master, every standby following it, the shard unpaused, nothing lost.
"""

import os
import signal
import subprocess
import time

import cluster
from cluster import addr
from ledger import errant_gtids

PAUSE = {"SHARDWIRE_TEST_FAILOVER_PAUSE_MS": "8000"}


def wait_log(r, pos, text, timeout, what):
    return cluster.wait_for(lambda: text in cluster.FailoverSetup.log(r)[pos:], timeout, what,
                            log=lambda: r.log_tail(80))


def stopped_then_woken(pause_after=None, hold_appliers=False):
    """Runs one scenario (see the module comment); returns ra's log after it
    was woken up."""
    zk = cluster.ZooKeeper()
    env = dict(PAUSE, SHARDWIRE_TEST_FAILOVER_PAUSE_AFTER=pause_after) if pause_after else {}
    s = cluster.FailoverSetup(zk, leader_env=env)
    locks = []
    try:
        ra, others = s.routers[0], s.routers[1:]
        ws = s.writers(10, others)
        old = s.master
        if hold_appliers:
            for sb in s.standbys:
                c = sb.connect()
                with c.cursor() as cur:
                    cur.execute("FLUSH TABLES WITH READ LOCK")
                locks.append(c)
            counts = [len(w.acked) for w in ws]
            cluster.wait_for(lambda: all(len(w.acked) >= c + 20 for w, c in zip(ws, counts)),
                             30, "writes acknowledged while the standbys do not apply")
        old.kill(signal.SIGKILL)
        if pause_after:
            wait_log(ra, 0, "test pause after state=%s" % pause_after, 60,
                     "ra held after %s" % pause_after)
        else:
            wait_log(ra, 0, "candidate: ", 60, "ra choosing a candidate")
        ra.kill(signal.SIGSTOP)
        pos = len(s.log(ra))
        # Not past the point it was stopped at.
        assert "applied:" not in s.log(ra) or pause_after, s.log(ra)[-2000:]
        for c in locks:
            c.close()
        term_ra = s.status()["shards"][0]["term"]

        def taken_over():
            st = s.status()["shards"][0]
            fo = st["failover"]
            return fo["state"] == "done" and fo["coordinator"] != "ra" and \
                st["term"] > term_ra and st
        try:
            cluster.wait_for(taken_over, 90, "another router finishing the failover")
        finally:
            ra.kill(signal.SIGCONT)
        # Read again: status reads the map before the journal, so the read
        # that saw `done` may hold a map from just before the unpause (the
        # coordinator unpauses, then writes `done`).
        after = s.status()["shards"][0]
        new = [x for x in s.standbys if addr(x) == after["master"]][0]
        assert not after["paused"], after
        wait_log(ra, pos, "stood down", 60, "ra standing down after waking up")
        woke = s.log(ra)[pos:]
        # Long enough for anything it would still do to show.
        counts = [len(w.acked) for w in ws]
        cluster.wait_for(lambda: all(len(w.acked) >= c + 30 for w, c in zip(ws, counts)), 60,
                         "writes on the new master after ra woke up")
        final = s.status()["shards"][0]
        assert final["master"] == after["master"] and final["term"] == after["term"], \
            (after, final)
        assert final["failover"] == after["failover"], (after["failover"], final["failover"])
        assert not final["paused"], final
        assert new.sql("SELECT @@read_only")[0][0] == 0
        for line in woke.splitlines():
            assert not any(k in line for k in ("state=", "repoint:", "abort:", "writable:",
                                                 "promote:", "fence:")), woke
        other = [x for x in s.standbys if x is not new][0]
        assert other.sql("SELECT @@read_only")[0][0] == 1
        cluster.wait_for(lambda: other.slave_status().get("Master_Port") == new.port, 30,
                         "the other standby following the new master")
        assert errant_gtids(other, new) == 0
        s.finish(ws, new)
        return woke
    finally:
        for c in locks:
            try:
                c.close()
            except Exception:
                pass
        s.stop()
        zk.stop()


def test_stopped_after_prepared_stands_down():
    woke = stopped_then_woken(pause_after="prepared")
    assert "no longer holds its election or runner node" in woke, woke


def test_stopped_after_published_stands_down():
    woke = stopped_then_woken(pause_after="published")
    assert "no longer holds its election or runner node" in woke, woke


def test_stopped_while_the_candidate_applies_stands_down():
    stopped_then_woken(hold_appliers=True)


SW = {}


def switchover_setup():
    if not SW:
        SW["zk"] = cluster.ZooKeeper()
        SW["s"] = cluster.FailoverSetup(SW["zk"])
    return SW["s"]


def teardown_module():
    if SW:
        SW["s"].stop()
        SW["zk"].stop()


def switchover_killed_at(state, sig=signal.SIGKILL):
    """Kills `shardctl switchover s0` held after <state> under writers (or,
    with <sig> SIGSTOP, stops it, and wakes it once the switchover ended) and
    waits for the coordinator to end it. Returns (journal as the dead one
    left it, journal at the end, shard line at the end, seconds from the
    kill until the shard was unpaused and the journal closed; with SIGSTOP
    also shardctl's exit status and stderr)."""
    s = switchover_setup()
    ws = s.writers(100 * (len(s.status()["history"]) + 1))
    argv = [cluster.shardctl_path(), "--zk", s.zk.hosts, "--timeout", "3", "switchover", "s0"]
    env = dict(os.environ, SHARDWIRE_CONTROL_USER=cluster.CONTROL_USER,
               SHARDWIRE_CONTROL_PASSWORD=cluster.CONTROL_PASSWORD,
               SHARDWIRE_REPL_USER=cluster.REPL_USER,
               SHARDWIRE_REPL_PASSWORD=cluster.REPL_PASSWORD,
               SHARDWIRE_TEST_SWITCHOVER_PAUSE_AFTER=state,
               SHARDWIRE_TEST_SWITCHOVER_PAUSE_MS="8000")
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env)
    def at_state():
        fo = s.status()["shards"][0]["failover"]
        return fo.get("state") == state and fo
    try:
        left = cluster.wait_for(at_state, 60, "the switchover at state %s" % state)
        # shardctl status names the held runner, alive (its node is there).
        assert left["runner"].startswith("shardctl-") and \
            left["runner"].endswith("-%d" % p.pid), left
        assert left["runner_alive"] and left["takeover_by"] is None, left
        text = s.ctl("status")
        assert "runner %s: alive" % left["runner"] in text, text
    finally:
        p.send_signal(sig)
        if sig == signal.SIGKILL:
            p.communicate(timeout=10)
    t_kill = time.monotonic()
    assert left["kind"] == "switchover" and left["in_progress"], left

    def ended():
        sh = s.status()["shards"][0]
        fo = sh["failover"]
        # Meanwhile: the runner gone, the coordinator takes over (or runs it).
        if fo["in_progress"] and fo["runner"] != left["runner"]:
            assert fo["runner"] in ("ra", "rb", "rc") and not fo["runner_alive"], fo
        elif fo["in_progress"] and not fo["runner_alive"]:
            assert fo["takeover_by"] in ("ra", "rb", "rc"), fo
        return not fo["in_progress"] and not sh["paused"] and (fo, sh)
    try:
        fo, line = cluster.wait_for(ended, 60, "the coordinator ending the switchover")
    finally:
        if sig == signal.SIGSTOP:
            p.send_signal(signal.SIGCONT)
    took = time.monotonic() - t_kill
    woke = None
    if sig == signal.SIGSTOP:
        out, err = p.communicate(timeout=60)
        woke = (p.returncode, err)
        assert s.status()["shards"][0]["failover"] == fo, (fo, err)
    assert fo["coordinator"] in ("ra", "rb", "rc") and fo["term"] > left["term"], (left, fo)
    counts = [len(w.acked) for w in ws]
    cluster.wait_for(lambda: all(len(w.acked) >= c + 20 for w, c in zip(ws, counts)), 60,
                     "writes after the switchover ended")
    master = [x for x in s.servers if addr(x) == line["master"]][0]
    writable = [addr(x) for x in s.servers if x.sql("SELECT @@read_only")[0][0] == 0]
    assert writable == [line["master"]], (writable, line)
    for x in s.servers:
        if x is not master:
            cluster.wait_for(lambda: x.slave_status().get("Master_Port") == master.port and
                             x.slave_running() == (True, True), 30,
                             "every standby follows the master")
            assert errant_gtids(x, master) == 0
    s.finish(ws, master)
    print("switchover %s at %s: ended by %s (%s) %.1f s after the signal" % (
        "stopped" if woke else "killed", state, fo["coordinator"], fo["state"], took))
    return (left, fo, line, took) + ((woke,) if woke else ())


def test_switchover_killed_while_paused_is_rolled_back_by_the_coordinator():
    left, fo, line, took = switchover_killed_at("paused")
    assert fo["state"] == "aborted" and line["master"] == left["old"], (fo, line)


def test_switchover_killed_after_catching_up_is_rolled_forward_by_the_coordinator():
    left, fo, line, took = switchover_killed_at("caught_up")
    assert fo["state"] == "done" and line["master"] == left["new"], (fo, line)
    assert left["old"] in line["standbys"], line


def test_switchover_killed_after_publishing_is_closed_by_the_coordinator():
    left, fo, line, took = switchover_killed_at("published")
    assert fo["state"] == "done" and line["master"] == left["new"], (fo, line)


def test_switchover_stopped_after_catching_up_stands_down_when_woken():
    """shardctl stopped (not killed) after caught_up: its session expires,
    the coordinator rolls the switchover forward; woken, shardctl changes
    nothing more and says it stood down (exit 3)."""
    left, fo, line, took, (rc, err) = switchover_killed_at("caught_up", signal.SIGSTOP)
    assert fo["state"] == "done" and line["master"] == left["new"], (fo, line)
    assert rc == 3 and "stood down" in err, (rc, err)

"""
tests/e2e/test_move_faults.py - `shardctl move` under faults (issue 13,
docs/moves.md): the mover killed (kill -9) in catch-up, after the freeze
(before the flip), after the flip (before cleanup) and in cleanup, each
time rerun to the end with a write ledger through two routers clean (every
acknowledged row once, on the shard the map names, none left on the
source); the source master killed in the copy (the move stops with a clear
message, --abort works with the source still down), in catch-up and while
frozen (unfrozen, the other shard served meanwhile, a rerun once it is back
finishes); a stand-in failover of the source or of the destination while
frozen (the flip is refused, the vbuckets unfrozen, a rerun copies again;
real promotions are in test_move_promotion.py); the mover killed after the
first chunk of cleanup's deletes; a chunk of cleanup, and one of catch-up
(on string and binary primary keys), losing to a client's lock and tried
again; the mover stalled past its ZooKeeper session while frozen; a read-only destination refused; the progress events
of every phase. The slow faults (a router killed in the cutover, ZooKeeper
down) are in long_move_faults.py.

The mover is stopped at a named point with SHARDWIRE_MOVE_PAUSE (it stops
itself with SIGSTOP there), so each kill lands in the phase it names.
"""

import json
import os
import pty
import signal
import subprocess

import cluster
from ledger import LEDGER_DDL

# Tables with string primary key parts (issue 13): the mover names keys by
# hex literals, one key per statement; non-ASCII text, quotes and
# backslashes in keys and values, binary keys with 0x00/0xff bytes. Created
# only for the test that uses them: a BINARY key part makes every move
# check its rows while frozen (docs/moves.md, "The row check"), which the
# other tests must not change.
SKEYS_DDL = ("CREATE TABLE skeys (userid BIGINT NOT NULL, k VARCHAR(64) CHARACTER SET "
             "utf8mb4 NOT NULL, v VARCHAR(200) CHARACTER SET utf8mb4, PRIMARY KEY (userid, k))")
BKEYS_DDL = ("CREATE TABLE bkeys (userid BIGINT NOT NULL, k VARBINARY(16) NOT NULL, "
             "f BINARY(4) NOT NULL, v BLOB, PRIMARY KEY (userid, k, f))")
STR_COLS = {"ledger": ("userid", "id", "writer"), "skeys": ("userid", "k", "v"),
            "bkeys": ("userid", "k", "f", "v")}

ZK = None
S = {}            # name -> MariaDB: s0, s1, s2 and s0b (a stand-in new master of s0)
VB = 16


def setup_module():
    global ZK
    ZK = cluster.ZooKeeper()
    S.update(cluster.move_masters(("s0", "s1", "s2", "s0b"), [LEDGER_DDL]))


def teardown_module():
    for db in S.values():
        db.stop()
    ZK.stop()


def env(**kw):
    return cluster.move_env(**kw)


def argv(root, *args):
    return cluster.move_argv(ZK.hosts, root, *args)


def ctl(root, *args, check=True, timeout=120):
    return cluster.move_ctl(ZK.hosts, root, *args, check=check, timeout=timeout)


class Setup(cluster.MoveRig):
    """A fresh root: s0 owns 0-7, s1 8-15, s2 nothing; empty ledgers; two
    routers (none without <routers>); writers on users of every vbucket."""

    def __init__(self, routers=True, router_config=None):
        super().__init__(ZK, S.values(), [(n, S[n], []) for n in ("s0", "s1")],
                         spare=[("s2", S["s2"], [])], n_vbuckets=VB,
                         n_routers=2 if routers else 0, router_config=router_config)

    def check_ledger(self, source="s0", moving=range(0, 4), filled=None):
        return super().check_ledger(source, moving, filled)


MOVE = ("move", "0-3", "--to", "s2", "--database", "app", "--router-wait", "20")


def test_mover_killed_in_catchup_resumes():
    st = Setup()
    try:
        st.start_writers()
        p = st.paused_move("catchup", *MOVE)
        p.kill()
        p.wait()
        assert st.journal()["phase"] == "catchup"
        assert "frozen" not in ctl(st.root, "dump-map").stdout
        r = ctl(st.root, *MOVE)
        assert "resuming at phase catchup" in r.stdout and "done:" in r.stdout, r.stdout
        errs = st.check_ledger()
        assert errs == {}, errs
        assert st.journal()["phase"] == "done"
    finally:
        st.stop()


def test_mover_killed_frozen_before_flip_resumes():
    st = Setup()
    try:
        st.start_writers()
        p = st.paused_move("frozen", *MOVE)
        p.kill()
        p.wait()
        dump = ctl(st.root, "dump-map").stdout
        assert "vb 0-3 s0 frozen\n" in dump, dump
        assert st.journal()["phase"] == "cutover"
        # statements for the frozen vbuckets are held meanwhile, not refused
        before = sum(len(w.acked) for w in st.writers)
        r = ctl(st.root, *MOVE)
        assert "resuming at phase cutover" in r.stdout and "done:" in r.stdout, r.stdout
        assert sum(len(w.acked) for w in st.writers) > before
        errs = st.check_ledger()
        assert errs == {}, errs
        assert "frozen" not in ctl(st.root, "dump-map").stdout
    finally:
        st.stop()


def test_mover_killed_after_flip_and_in_cleanup_resumes():
    for point in ("flipped", "cleanup"):
        st = Setup()
        try:
            st.start_writers()
            p = st.paused_move(point, *MOVE)
            p.kill()
            p.wait()
            assert "vb 0-3 s2" in ctl(st.root, "dump-map").stdout
            r = ctl(st.root, *MOVE)
            assert "done:" in r.stdout, r.stdout
            if point == "flipped":
                assert "the map already names s2; cleanup remains" in r.stdout, r.stdout
            # too late to abort once flipped
            r = ctl(st.root, "move", "--abort", st.journal()["id"], check=False)
            assert r.returncode == 4 and "too late to abort" in r.stderr, r.stderr
            errs = st.check_ledger()
            assert errs == {}, errs
        finally:
            st.stop()


def test_source_master_killed_in_copy_then_abort():
    st = Setup(routers=False)
    conn = S["s0"].connect()
    with conn.cursor() as c:
        c.executemany("INSERT INTO ledger VALUES (%s, %s, 0)",
                      [(u, i) for u in range(2000, 2048) for i in range(20)])
    conn.close()
    p = subprocess.Popen(argv(st.root, *MOVE, "--rate", "60"), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env())
    try:
        cluster.wait_for(lambda: S["s2"].sql("SELECT COUNT(*) FROM ledger")[0][0] > 0, 30,
                         "the copy started")
        S["s0"].kill()
        out, err = p.communicate(timeout=60)
        assert p.returncode != 0, out
        assert "source" in err and "stopped before its flip, at phase copy" in err, err
        assert "--abort" in err, err
        ms = st.journal()
        assert ms["phase"] == "copy" and ms["error"], ms
        before = ctl(st.root, "dump-map").stdout
        r = ctl(st.root, "move", "--abort", ms["id"])
        assert "aborted" in r.stdout, r.stdout
        assert S["s2"].sql("SELECT COUNT(*) FROM ledger")[0][0] == 0
        assert ctl(st.root, "dump-map").stdout == before
        assert st.journal()["phase"] == "aborted"
    finally:
        if p.poll() is None:
            p.kill()
        S["s0"].start()
    assert S["s0"].sql("SELECT COUNT(*) FROM ledger")[0][0] == 48 * 20


def test_failover_of_source_or_destination_while_frozen_stops_the_flip():
    """A stand-in failover: the map names another master for the source s0,
    then for the destination s2, while the move is frozen (no writers: rows
    written to the stand-in are not a real failover's)."""
    for shard, role in (("s0", "source"), ("s2", "destination")):
        st = Setup(routers=False)
        conn = S["s0"].connect()
        with conn.cursor() as c:
            c.executemany("INSERT INTO ledger VALUES (%s, %s, 0)",
                          [(u, i) for u in range(2000, 2048) for i in range(5)])
        conn.close()
        users = st.vbuckets(list(range(2000, 2048)))
        moving = sorted(u for u, vb in users.items() if vb < 4)
        p = st.paused_move("frozen", *MOVE)
        old = cluster.addr(S[shard])
        try:
            ctl(st.root, "set-master", shard, cluster.addr(S["s0b"]))
            p.send_signal(signal.SIGCONT)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
        assert p.returncode == 5, (out, err)
        assert "the master of %s %s changed from %s to %s" % (
            role, shard, old, cluster.addr(S["s0b"])) in err, err
        dump = ctl(st.root, "dump-map").stdout
        assert "frozen" not in dump and "vb 0-7 s0" in dump, dump
        ms = st.journal()
        assert ms["phase"] == "copy" and "changed" in ms["error"], ms
        # the old master back in the map: the rerun copies again and finishes
        ctl(st.root, "set-master", shard, old)
        r = ctl(st.root, *MOVE)
        assert "resuming at phase copy" in r.stdout and "done:" in r.stdout, r.stdout
        got = sorted(u for (u,) in S["s2"].sql("SELECT userid FROM ledger"))
        assert got == sorted(u for u in moving for _ in range(5)), got
        assert S["s0"].sql("SELECT COUNT(*) FROM ledger")[0][0] == (48 - len(moving)) * 5
        assert S["s0b"].sql("SELECT COUNT(*) FROM ledger")[0][0] == 0


def moving_rows(db, users):
    """Rows of <db>'s ledger whose users are in <users>."""
    return db.sql("SELECT COUNT(*) FROM ledger WHERE userid IN (%s)"
                  % ",".join(str(u) for u in users))[0][0]


def test_source_master_killed_in_catchup_or_frozen_then_resumed():
    """The source master killed (kill -9) with the mover in catch-up, then
    with its vbuckets frozen: the move stops with an error naming the
    source, nothing stays frozen, writes to the other shard's vbuckets go on
    while the master is down; once it is back a rerun finishes and no
    acknowledged write is lost."""
    for point, phase in (("catchup", "catchup"), ("frozen", "cutover")):
        st = Setup()
        try:
            filled = st.fill(S["s0"], 5, lambda vb: vb < 8)
            vbs = st.vbuckets(list(range(2000, 2048)))
            st.start_writers(2)
            others = st.start_writers(2, userids=[u for u, vb in vbs.items() if vb >= 8],
                                      first=3)
            p = st.paused_move(point, *MOVE)
            S["s0"].kill()
            p.send_signal(signal.SIGCONT)
            out, err = p.communicate(timeout=60)
            assert p.returncode == 5, (out, err)
            assert "source" in err and cluster.addr(S["s0"]) in err, err
            assert "stopped before its flip, at phase catchup" in err, err
            ms = st.journal()
            assert ms["phase"] == "catchup" and ms["error"], ms
            dump = st.ctl("dump-map").stdout
            assert "frozen" not in dump and "vb 0-7 s0" in dump, dump
            # the other shard's vbuckets are served meanwhile
            counts = [len(w.acked) for w in others]
            cluster.wait_for(lambda: all(len(w.acked) >= c + 20 for w, c in
                                         zip(others, counts)), 30,
                             "writes to s1's vbuckets with s0 down (after %s)" % point)
            S["s0"].start()
            r = st.ctl(*MOVE)
            assert "resuming at phase catchup" in r.stdout and "done:" in r.stdout, r.stdout
            st.check_ledger(filled=filled)
        finally:
            st.stop()
            S["s0"].start()


def test_mover_killed_in_the_middle_of_cleanup_deletes_resumes():
    """Killed after the first chunk of cleanup's deletes (SHARDWIRE_MOVE_PAUSE
    =deleting; --rate 200 makes chunks of 20 rows): part of the moved rows
    are still on the source; the rerun deletes the rest, the destination
    keeps every row."""
    st = Setup()
    try:
        filled = st.fill(S["s0"], 10, lambda vb: vb < 8)
        vbs = st.vbuckets(list(range(2000, 2048)))
        moving = [u for u, vb in vbs.items() if vb < 4]
        st.start_writers()
        p = st.paused_move("deleting", *MOVE, "--rate", "200")
        left = moving_rows(S["s0"], moving)
        on_dst = moving_rows(S["s2"], moving)
        p.kill()
        p.wait()
        assert 0 < left and left + 20 <= on_dst, (left, on_dst)
        assert st.journal()["phase"] == "cleanup"
        r = st.ctl(*MOVE)
        assert "resuming at phase cleanup" in r.stdout and "done:" in r.stdout, r.stdout
        assert moving_rows(S["s0"], moving) == 0
        errs = st.check_ledger(filled=filled)
        assert errs == {}, errs
    finally:
        st.stop()


def open_bystander(router, userid):
    """A connection through <router> left in a transaction on user <userid>
    (a vbucket that does not move): row (userid, 2) committed first, then
    uncommitted: (userid, 1) inserted, (userid, 2) updated to writer 98."""
    conn = router.connect(read_timeout=300)
    with conn.cursor() as c:
        c.execute("INSERT INTO ledger (userid, id, writer) VALUES (%s, 2, 99)", (userid,))
        c.execute("BEGIN")
        c.execute("INSERT INTO ledger (userid, id, writer) VALUES (%s, 1, 99)", (userid,))
        c.execute("UPDATE ledger SET writer = 98 WHERE userid = %s AND id = 2", (userid,))
    return conn


def test_open_transactions_on_users_that_do_not_move_never_stall_a_move():
    """Open, uncommitted transactions on users of vbuckets that do not move,
    one on the source and one on the destination (s1, owning 8-15), held
    from before the copy to after the cleanup: the move runs through
    without waiting for them (before, the source's cleanup DELETE, a row-IN
    list the optimizer ran as a full scan, waited innodb_lock_wait_timeout
    for the first and failed with 1205); then both commit, their rows
    intact, and the ledger is clean."""
    st = Setup()
    conns = []
    try:
        vbs = st.vbuckets(list(range(3000, 3200)))
        on_s0 = next(u for u, vb in sorted(vbs.items()) if 4 <= vb < 8)
        on_s1 = next(u for u, vb in sorted(vbs.items()) if vb >= 8)
        filled = st.fill(S["s0"], 10, lambda vb: vb < 8)
        st.start_writers()
        ra, rb = st.routers
        conns = [open_bystander(ra, on_s0), open_bystander(rb, on_s1)]
        r = st.ctl("move", "0-3", "--to", "s1", "--database", "app", "--router-wait", "20",
                   check=False, timeout=240)
        assert r.returncode == 0 and "done:" in r.stdout, (r.returncode, r.stdout, r.stderr)
        assert "trying again" not in r.stdout + r.stderr, r.stdout + r.stderr
        # the bystanders were open all along; they commit now, rows intact
        for conn, userid, db in ((conns[0], on_s0, S["s0"]), (conns[1], on_s1, S["s1"])):
            conn.commit()
            assert db.sql("SELECT id, writer FROM ledger WHERE userid = %s ORDER BY id",
                          (userid,)) == ((1, 99), (2, 98)), userid
        errs = st.check_ledger(filled=filled)
        assert errs == {}, errs
        assert {st.owners()[vb] for vb in range(4)} == {"s1"}
    finally:
        for conn in conns:
            conn.close()
        st.stop()


def test_cleanup_chunk_that_loses_to_a_lock_is_tried_again():
    """A client holding a moved row on the source directly (what an operator
    must never do) when cleanup starts: cleanup's chunk waits out its lock
    wait (10 s), says it tries again, and once the lock is gone the move
    finishes, nothing of the moved vbuckets left on the source."""
    st = Setup()
    locker = None
    p = None
    try:
        filled = st.fill(S["s0"], 10, lambda vb: vb < 8)
        vbs = st.vbuckets(sorted({u for u, _ in filled}))
        key = next(k for k in filled if vbs[k[0]] < 4)
        st.start_writers()
        p = st.paused_move("cleanup", *MOVE)
        locker = S["s0"].connect()
        with locker.cursor() as c:
            c.execute("BEGIN")
            c.execute("SELECT * FROM ledger WHERE userid = %s AND id = %s FOR UPDATE", key)
        p.send_signal(signal.SIGCONT)
        seen = []
        for line in p.stdout:
            seen.append(line)
            if "trying again (2 of 5)" in line:
                break
        assert "wait for a lock" in "".join(seen), seen
        locker.rollback()
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and "done:" in out, (out, err)
        errs = st.check_ledger(filled=filled)
        assert errs == {}, errs
    finally:
        if locker:
            locker.close()
        if p and p.poll() is None:
            p.kill()
        st.stop()


def hex_rows(db, users, tables=tuple(STR_COLS)):
    """{table: sorted rows} of the string-key test's <tables> on <db>, of
    the users <users>, every column as HEX() (byte for byte)."""
    inlist = ",".join(str(u) for u in users)
    return {t: sorted(db.sql("SELECT %s FROM %s WHERE userid IN (%s)" % (
        ", ".join("HEX(%s)" % c for c in cols), t, inlist)))
        for t, cols in STR_COLS.items() if t in tables}


STR_KEYS = ["plain", "naïve 'quoted'", "back\\slash \\' \\0", 'dq " \t tab', "日本語の鍵",
            "emoji \U0001F600", "0x41", "%_ like"]
BIN_KEYS = [(b"\x00", b"\x00\x00\x00\x00"), (b"\xff\xfe'\\", b"A"), (b"'", b"\x00\xffB"),
            (b"\\0\x00z", b"\xff\xff\xff\xff"), (b"k\x00", b"\x00")]


def test_catchup_chunk_that_loses_to_a_lock_is_tried_again_string_keys():
    """String and binary primary keys through copy, catch-up and cleanup,
    and catch-up's bounded retry: with the mover stopped after its first
    catch-up round, rows of the moving users are updated, deleted and
    inserted on the source (ledger, skeys with utf8mb4 keys, bkeys with
    VARBINARY/BINARY keys), and a client holds one of those rows on the
    destination directly (FOR UPDATE). The mover is killed there and run
    again, so the changes are applied in the catch-up phase (continued, a
    move would apply them in the cutover's rounds, here frozen: bkeys has
    a BINARY key part): its first round waits out its lock wait (10 s) and
    says it tries again; once the lock is gone the move finishes: the
    destination holds byte for byte the source's rows of the moving users
    as they were, the source none of them and its other rows unchanged.
    Then, bkeys dropped, the users moved back with skeys rows changed
    while paused at catchup: the row check reads those rows by their
    VARCHAR keys (no frozen full read) and the rows arrive byte for byte."""
    for db in S.values():
        db.sql(SKEYS_DDL)
        db.sql(BKEYS_DDL)
    st = Setup(routers=False)
    locker = None
    p = None
    try:
        st.fill(S["s0"], 3, lambda vb: vb < 8)
        vbs = st.vbuckets(list(range(2000, 2048)))
        mine = sorted(u for u, vb in vbs.items() if vb < 8)
        moving = [u for u in mine if vbs[u] < 4]
        staying = [u for u in mine if vbs[u] >= 4]
        conn = S["s0"].connect()
        with conn.cursor() as c:
            c.executemany("INSERT INTO skeys VALUES (%s, %s, %s)",
                          [(u, k, "v of %s: ‘%s’ \\ é" % (u, k)) for u in mine for k in STR_KEYS])
            c.executemany("INSERT INTO bkeys VALUES (%s, %s, %s, %s)",
                          [(u, k, f, k + b"\x00'\\" + f) for u in mine for k, f in BIN_KEYS])
        p = st.paused_move("catchup", *MOVE)
        # work for catch-up: every kind of change on string and binary keys
        inlist = ",".join(str(u) for u in mine)
        with conn.cursor() as c:
            c.execute("UPDATE skeys SET v = CONCAT(v, %%s) WHERE userid IN (%s) AND k <> %%s"
                      % inlist, (" ✓ \\'\"", STR_KEYS[0]))
            c.execute("DELETE FROM skeys WHERE userid IN (%s) AND k = %%s" % inlist,
                      (STR_KEYS[1],))
            c.executemany("INSERT INTO skeys VALUES (%s, %s, 'new ü')",
                          [(u, "neu 'ß' \\ %d" % u) for u in mine])
            c.execute("UPDATE bkeys SET v = CONCAT(v, 0x00ff27) WHERE userid IN (%s)" % inlist)
            c.execute("DELETE FROM bkeys WHERE userid IN (%s) AND k = %%s AND f = %%s" % inlist,
                      BIN_KEYS[2])
            c.executemany("INSERT INTO bkeys VALUES (%s, %s, %s, NULL)",
                          [(u, b"\xc3\x28'%d" % u, b"\x00") for u in mine])
            c.execute("UPDATE ledger SET writer = 7 WHERE userid IN (%s)" % inlist)
        conn.commit()
        conn.close()
        want, kept = hex_rows(S["s0"], moving), hex_rows(S["s0"], staying)
        assert all(want.values()) and all(kept.values()), (want, kept)
        # a client holds a changed row of a moving user on the destination
        locker = S["s2"].connect()
        with locker.cursor() as c:
            c.execute("BEGIN")
            c.execute("SELECT * FROM skeys WHERE userid = %s AND k = %s FOR UPDATE",
                      (moving[0], STR_KEYS[2]))
            assert c.rowcount == 1
        p.kill()
        p.wait()
        p = subprocess.Popen(argv(st.root, *MOVE), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env())
        seen = []
        for line in p.stdout:
            seen.append(line)
            if "trying again (2 of 5)" in line:
                break
        text = "".join(seen)
        assert "resuming at phase catchup" in text and "table skeys:" in text, seen
        assert "changed rows wait for a lock" in text and "round 1:" not in text, seen
        locker.rollback()
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and "done:" in out, (out, err)
        assert hex_rows(S["s2"], moving) == want
        assert hex_rows(S["s2"], staying) == {t: [] for t in STR_COLS}
        assert hex_rows(S["s0"], moving) == {t: [] for t in STR_COLS}
        assert hex_rows(S["s0"], staying) == kept
        # back to s0 without bkeys: the row check then reads the changed
        # rows by their VARCHAR keys (not the frozen full read)
        for db in S.values():
            db.sql("DROP TABLE bkeys")
        back = ("move", "0-3", "--to", "s0", "--database", "app")
        p = st.paused_move("catchup", *back)
        S["s2"].sql("UPDATE skeys SET v = CONCAT(v, %s) WHERE k <> %s", ("¿\\'", STR_KEYS[0]))
        S["s2"].sql("DELETE FROM skeys WHERE k = %s", (STR_KEYS[3],))
        want = hex_rows(S["s2"], moving, ("skeys",))
        p.send_signal(signal.SIGCONT)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and "row check: both sides read" in out, (out, err)
        assert hex_rows(S["s0"], moving, ("skeys",)) == want
        assert hex_rows(S["s2"], moving, ("skeys",)) == {"skeys": []}
    finally:
        if locker:
            locker.close()
        if p and p.poll() is None:
            p.kill()
        st.stop()
        for db in S.values():
            db.sql("DROP TABLE IF EXISTS skeys, bkeys")


def test_progress_events_of_every_phase():
    """`shardctl --json move`: a "rows" event of each step (copy, catch-up,
    cleanup) with counts that match what moved: N rows copied, the M
    written after the snapshot applied by catch-up (reading exactly the
    binary log bytes it was behind), N + M deleted by cleanup."""
    st = Setup(routers=False)
    n = len(st.fill(S["s0"], 25, lambda vb: vb < 4))
    k = len(st.fill(S["s0"], 5, lambda vb: 4 <= vb < 8))
    vbs = st.vbuckets(list(range(2000, 2048)))
    moving = [u for u, vb in vbs.items() if vb < 4]
    p = subprocess.Popen(argv(st.root, "--json", *MOVE, "--rate", "300"), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env())
    events, m = [], 0
    try:
        for line in p.stdout:
            events.append(json.loads(line))
            if "snapshot of the source" in events[-1].get("line", "") and not m:
                # one transaction of M rows after the snapshot, before the copy ends
                conn = S["s0"].connect()
                with conn.cursor() as c:
                    c.execute("INSERT INTO ledger VALUES " + ", ".join(
                        "(%d, %d, 0)" % (u, 1000 + i) for u in moving for i in range(4)))
                conn.close()
                m = 4 * len(moving)
        assert p.wait(60) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
    rows = [e for e in events if e["event"] == "rows"]
    mid = st.journal()["id"]
    assert all(e["move"] == mid for e in rows), rows

    def of(phase, step):
        got = [e for e in rows if e["phase"] == phase and e["step"] == step]
        assert got, (phase, step, events)
        assert [e["rows"] for e in got] == sorted(e["rows"] for e in got), got
        for e in got:
            assert e["rate"] >= 0 and e["eta_s"] >= -1, e
        return got
    copy = of("copy", "copy")
    assert {"rows", "scanned", "estimate", "rate", "eta_s"} <= set(copy[-1]), copy[-1]
    assert copy[-1]["rows"] == n and copy[-1]["scanned"] == n + k, (copy[-1], n, k)
    assert copy[-1]["rate"] > 0 and copy[-1]["eta_s"] == 0, copy[-1]
    assert len(copy) >= 2, copy     # throttled to 300 rows/s: more than one event
    cu = of("catchup", "catchup")
    assert {"rows", "events", "bytes", "behind_bytes", "bytes_rate", "eta_s"} <= set(cu[0])
    assert cu[0]["rows"] == 0 and cu[0]["behind_bytes"] > 0, cu[0]
    assert cu[-1]["rows"] == m and cu[-1]["behind_bytes"] == 0 and cu[-1]["eta_s"] == 0, cu
    assert cu[-1]["bytes"] == cu[0]["behind_bytes"] and cu[-1]["events"] >= 4, cu
    assert cu[-1]["rate"] > 0 and cu[-1]["bytes_rate"] > 0, cu[-1]
    assert of("cutover", "catchup")[-1]["rows"] == 0
    cl = of("cleanup", "cleanup")
    assert {"rows", "scanned", "expected", "rate", "eta_s"} <= set(cl[-1]), cl[-1]
    assert cl[-1]["rows"] == cl[-1]["expected"] == n + m, (cl[-1], n, m)
    assert cl[-1]["scanned"] == n + m + k and cl[-1]["eta_s"] == 0, cl[-1]
    assert len(cl) >= 2 and 0 < cl[0]["rows"] < n + m, cl   # throttled: seen mid-way
    assert moving_rows(S["s2"], moving) == n + m and moving_rows(S["s0"], moving) == 0
    # back to s0 on a terminal: a bar redrawn in place for the copy and the cleanup
    rc, text = on_terminal(argv(st.root, "move", "0-3", "--to", "s0", "--database", "app",
                                "--rate", "300"))
    assert rc == 0, text
    assert "\r" in text and "copy [" in text and "cleanup [" in text, text
    assert "rows deleted" in text and "eta " in text, text
    assert moving_rows(S["s0"], moving) == n + m and moving_rows(S["s2"], moving) == 0


def on_terminal(args):
    """Runs <args> with its output on a terminal; returns (exit status,
    what it wrote there)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(args, stdout=slave, stderr=slave, env=env())
    os.close(slave)
    out = []
    while True:
        try:
            b = os.read(master, 4096)
        except OSError:        # EIO: the other side is closed
            break
        if not b:
            break
        out.append(b.decode(errors="replace"))
    os.close(master)
    return p.wait(60), "".join(out)


def test_read_only_destination_is_refused():
    """The control account may write through read_only (READ_ONLY ADMIN), so
    the mover checks it: a read-only destination (a standby, a deposed
    master) is refused before anything changes."""
    st = Setup(routers=False)
    S["s2"].sql("SET GLOBAL read_only = 1")
    try:
        r = st.ctl(*MOVE, check=False)
    finally:
        S["s2"].sql("SET GLOBAL read_only = 0")
    assert r.returncode == 4 and "is read-only" in r.stderr, r
    assert "nothing was changed" in r.stderr, r.stderr
    assert st.ctl("moves").stdout.startswith("no moves")


def zk_sockets_closed_by_server(pid):
    """True when every TCP connection of process <pid> to ZooKeeper is
    closed from ZooKeeper's side (CLOSE_WAIT: a stopped process cannot
    close its end), i.e. its session has expired."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    states = []
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            w = line.split()
            if w[9] in inodes and int(w[2].split(":")[1], 16) == ZK.port:
                states.append(w[3])
    return bool(states) and all(s == "08" for s in states)


def test_mover_stalled_past_its_zookeeper_session_while_frozen_finishes():
    """The mover stopped while its vbuckets are frozen until ZooKeeper
    expires its session (a stall: a paused VM, a swapped-out process):
    continued, it opens a new session and finishes the move."""
    st = Setup(routers=False)
    filled = st.fill(S["s0"], 5, lambda vb: vb < 8)
    p = st.paused_move("frozen", *MOVE)
    try:
        cluster.wait_for(lambda: zk_sockets_closed_by_server(p.pid), 60,
                         "ZooKeeper expiring the stopped mover's session")
        p.send_signal(signal.SIGCONT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0 and "done:" in out, (out, err)
    dump = st.ctl("dump-map").stdout
    assert "frozen" not in dump and "vb 0-3 s2" in dump, dump
    vbs = st.vbuckets(list(range(2000, 2048)))
    moved = [k for k in filled if vbs[k[0]] < 4]
    assert set(S["s2"].sql("SELECT userid, id FROM ledger")) == set(moved)

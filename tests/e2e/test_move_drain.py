"""
tests/e2e/test_move_drain.py - the bound on a move's cutover (issue 13, item
2; docs/moves.md, "cutover"): work still open on the frozen vbuckets
move_drain_ms after the freeze is ended by the routers, which then
acknowledge, so one idle transaction cannot stall a move.

One move of vbuckets 0-3 from s0 to s2 (the setup and write ledger of
test_move_faults.py, two routers with move_drain_ms 1500), with, open
across the freeze:
  * an idle transaction that wrote a row of a moving vbucket (router ra),
    in a session with a user variable: its next statement gets error 1213
    saying it was rolled back because the vbucket is moving (and that the
    session's state went with the connection), the row is on neither
    shard, the retry commits on the destination;
  * an idle transaction on a moving vbucket whose next statement is
    ROLLBACK (router rb): answered OK, the session goes on;
  * a transaction running SELECT SLEEP(60) after writing a row of a moving
    vbucket (router rb): the statement ends with error 1213 long before the
    sleep would, its row is on neither shard;
  * idle transactions on vbuckets that do not move, one on s0 and one on
    s1: untouched, open through the cleanup, they commit after the move.
The move finishes within move_drain_ms plus slack (without the cut it would
wait its --router-wait and give up), and the ledger through both routers
loses nothing and sees no error.
"""

import re
import signal
import threading
import time

import pymysql

import cluster
import test_move_faults as mf

DRAIN_MS = 1500


def setup_module():
    mf.setup_module()


def teardown_module():
    mf.teardown_module()


def rows_of(key):
    """Where row <key> (userid, id) is, by shard name."""
    return [n for n, db in mf.S.items() if db.alive() and
            db.sql("SELECT COUNT(*) FROM ledger WHERE userid = %s AND id = %s", key)[0][0]]


def open_txn(router, key, user_variable=False):
    """A connection through <router> left idle in a transaction that
    inserted <key> (after setting a user variable: pinned state)."""
    conn = router.connect(read_timeout=90)
    with conn.cursor() as c:
        if user_variable:
            c.execute("SET @mark = 1")
        c.execute("BEGIN")
        c.execute("INSERT INTO ledger (userid, id, writer) VALUES (%s, %s, 99)", key)
    return conn


def cut_error(e):
    """The error a cut transaction gets: 1213, rolled back, the vbucket
    moving, retry."""
    code, msg = e.args[0], str(e.args[1])
    assert code == 1213, e.args
    assert "rolled back" in msg and "being moved" in msg and "vbucket" in msg, msg
    assert "move_drain_ms" in msg and "Retry" in msg, msg


def test_transactions_outliving_move_drain_ms_are_cut():
    st = mf.Setup(router_config={"move_drain_ms": DRAIN_MS})
    ra, rb = st.routers
    sleeper = {}
    p = None
    try:
        vbs = st.vbuckets(list(range(3000, 3200)))
        moving = [u for u, vb in vbs.items() if vb < 4]
        still_s0 = [u for u, vb in vbs.items() if 4 <= vb < 8]
        on_s1 = [u for u, vb in vbs.items() if vb >= 8]
        st.start_writers()
        idle_key, rb_key, sleep_key = (moving[0], 1), (moving[1], 2), (moving[2], 3)
        idle = open_txn(ra, idle_key, user_variable=True)
        rolled = open_txn(rb, rb_key)
        bystanders = [open_txn(ra, (still_s0[0], 4)), open_txn(rb, (on_s1[0], 5))]
        slow = open_txn(rb, sleep_key)

        def sleep():
            t0 = time.monotonic()
            try:
                with slow.cursor() as c:
                    c.execute("SELECT SLEEP(60)")
                sleeper["result"] = "no error"
            except pymysql.err.MySQLError as e:
                sleeper["error"] = e
            sleeper["seconds"] = time.monotonic() - t0
        th = threading.Thread(target=sleep, daemon=True)
        th.start()
        cluster.wait_for(lambda: mf.S["s0"].sql(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
            "WHERE INFO = 'SELECT SLEEP(60)'")[0][0] == 1, 30, "the sleep running on s0")

        # stopped before its cleanup: the transactions that do not move stay
        # open through it (its deletes on s0 lock the moved rows only)
        t0 = time.monotonic()
        p = st.paused_move("cleanup", *mf.MOVE)
        assert time.monotonic() - t0 < 90

        # the statement in flight was ended by the cut, not by its sleep, on
        # the router and on the server
        th.join(30)
        assert not th.is_alive()
        assert "error" in sleeper, sleeper
        cut_error(sleeper["error"])
        assert sleeper["seconds"] < 45, sleeper
        assert mf.S["s0"].sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                              "WHERE INFO = 'SELECT SLEEP(60)'")[0][0] == 0
        # the idle transaction hears of it with its next statement
        try:
            with idle.cursor() as c:
                c.execute("INSERT INTO ledger (userid, id, writer) VALUES (%s, 6, 99)",
                          (idle_key[0],))
            raise AssertionError("the cut transaction's next statement succeeded")
        except pymysql.err.MySQLError as e:
            cut_error(e)
            # the user variable lived on the closed connection: said so
            assert "user variables" in str(e.args[1]) and "gone too" in str(e.args[1]), e.args
        # ROLLBACK of a cut transaction is answered OK
        rolled.rollback()
        # nothing of the cut transactions committed anywhere
        for key in (idle_key, rb_key, sleep_key, (idle_key[0], 6)):
            assert rows_of(key) == [], (key, rows_of(key))
        # each session goes on: the retries commit on the destination
        for conn, key in ((idle, idle_key), (rolled, rb_key), (slow, sleep_key)):
            with conn.cursor() as c:
                c.execute("BEGIN")
                c.execute("INSERT INTO ledger (userid, id, writer) VALUES (%s, %s, 99)", key)
                c.execute("COMMIT")
            assert rows_of(key) == ["s2"], (key, rows_of(key))
        for conn in (idle, rolled, slow):
            conn.close()
        p.send_signal(signal.SIGCONT)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and "done:" in out, (out, err)
        assert "trying again" not in out + err, out + err
        # transactions on vbuckets that did not move were left alone, open
        # through the cleanup
        for conn, key, shard in ((bystanders[0], (still_s0[0], 4), "s0"),
                                 (bystanders[1], (on_s1[0], 5), "s1")):
            conn.commit()
            conn.close()
            assert rows_of(key) == [shard], (key, rows_of(key))
        m = re.search(r"frozen (\d+) ms: freeze \d+, routers (\d+)", out)
        assert m, out
        # the routers acknowledged once move_drain_ms had passed, not before
        # (the open transactions kept them) and not much later
        assert DRAIN_MS <= int(m.group(2)) < DRAIN_MS + 8000, out
        logs = "".join(open(x.log_path, errors="replace").read() for x in (ra, rb))
        assert "outcome=rolled_back" in logs and "after cutting" in logs, logs[-3000:]
        errs = st.check_ledger()
        assert errs == {}, errs
    finally:
        if p and p.poll() is None:
            p.kill()
        st.stop()

"""
tests/e2e/ledger.py - the write ledger of the failover tests and benchmark:
writers insert unique rows through a router and record every outcome, so a
checker can tell acknowledged-but-lost rows, duplicates and which errors the
clients saw.

  w = Writer(wid, router)             # thread; w.start(); ...; w.stop.set()
  w.acked   [((userid, id), monotonic time of the OK)]
  w.failed  statements that got an error
  w.errors  {(errno, first 60 chars of the message): count}

Rows go to `ledger (userid, id, writer)`: ids are unique per writer
(wid * 10,000,000 + n) and userids cycle through <users> values from
<userid_base> (or through the list <userids>), so every writer spreads over
several users.
"""

import threading
import time

import pymysql

LEDGER_DDL = ("CREATE TABLE ledger (userid BIGINT NOT NULL, id BIGINT NOT NULL, "
              "writer INT NOT NULL, PRIMARY KEY (userid, id))")


class Writer(threading.Thread):
    def __init__(self, wid, router, userid_base=1000, users=50, pause=0.0, userids=None):
        super().__init__(daemon=True)
        self.wid, self.router = wid, router
        self.userid_base, self.users, self.pause = userid_base, users, pause
        self.userids = list(userids) if userids else None   # instead of the range
        self.acked, self.failed, self.errors = [], 0, {}
        self.stop = threading.Event()

    def keys(self):
        return [k for k, _ in self.acked]

    def run(self):
        conn, n = None, 0
        while not self.stop.is_set():
            n += 1
            key = (self.userids[n % len(self.userids)] if self.userids else
                   self.userid_base + n % self.users, self.wid * 10000000 + n)
            try:
                if conn is None:
                    conn = self.router.connect(connect_timeout=3, read_timeout=15,
                                               write_timeout=15)
                with conn.cursor() as c:
                    c.execute("INSERT INTO ledger (userid, id, writer) VALUES (%s, %s, %s)",
                              (key[0], key[1], self.wid))
                self.acked.append((key, time.monotonic()))
            except pymysql.err.MySQLError as e:
                self.failed += 1
                what = (e.args[0], str(e.args[1] if len(e.args) > 1 else e)[:60])
                self.errors[what] = self.errors.get(what, 0) + 1
                if conn:
                    try:
                        conn.close()
                    except Exception:
                        pass
                conn = None
                time.sleep(0.01)
            if self.pause:
                time.sleep(self.pause)
        if conn:
            conn.close()


def lost(writers, rows):
    """Acknowledged keys of <writers> missing from <rows> (a set of keys)."""
    return [k for w in writers for k in w.keys() if k not in rows]


def stop_and_check(writers, db):
    """Stops <writers>, waits for them, and asserts that every acknowledged
    row is in the ledger of <db>. Returns <db>'s rows (a set of keys)."""
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(30)
    rows = {(u, i) for u, i in db.sql("SELECT userid, id FROM ledger")}
    missing = lost(writers, rows)
    assert not missing, "acknowledged but lost: %d of %d, e.g. %s" % (
        len(missing), sum(len(w.acked) for w in writers), missing[:5])
    return rows


def errors(writers):
    out = {}
    for w in writers:
        for k, v in w.errors.items():
            out[k] = out.get(k, 0) + v
    return out


def deposed(old_rows, new_rows):
    """Rows committed on a deposed master that its successor lacks: a write
    the deposed master took after the change (or one the failover lost)."""
    return sorted(old_rows - new_rows)


def errant_gtids(old_db, new_db):
    """How many transactions the deposed master <old_db> wrote to its binlog
    under its own server id that <new_db> never received (unacknowledged
    commits: with AFTER_SYNC a commit is in the binlog before the standby's
    acknowledgement is awaited)."""
    def state(db):
        out = {}
        for g in filter(None, db.sql("SELECT @@gtid_binlog_state")[0][0].split(",")):
            d, s, n = (int(x) for x in g.strip().split("-"))
            out[(d, s)] = n
        return out
    old, new = state(old_db), state(new_db)
    sid = old_db.server_id
    return sum(n - new.get((d, s), 0) for (d, s), n in old.items()
               if s == sid and n > new.get((d, s), 0))

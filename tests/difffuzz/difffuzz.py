#!/usr/bin/python3
"""
tests/difffuzz/difffuzz.py - standing differential fuzzer for the analyzer.

  /usr/bin/python3 tests/difffuzz/difffuzz.py [--seed N] [--seconds S]
      [--count N] [--leaks FILE] [--build DIR] [--batch N] [--minimize N]

Generates statements from MariaDB's token classes and grammar (gen.py),
asks the analyzer for each decision (the test-only analyze_cli, built in
<build>/tests/fuzz/, with the router's database `app` and key `userid`),
and runs every statement the analyzer ROUTES to user U on a real mariadbd
started in a temp dir (tests/e2e/cluster.py) that holds rows of many users
in several tables, with ids colliding across users. A routed statement
leaks when:

  * it changed a row of another user: every statement runs in a
    transaction; all other users' rows are read before and after it, then
    it is rolled back (and the rollback is checked);
  * its outcome depends on other users' rows: it is run once on the full
    data set and once on a copy holding only U's rows; the results (sorted
    rows, or the error number), the affected-row count and, for writes,
    U's rows afterwards must be the same.

Before fuzzing, the checker must catch a few known-unconfined statements
and pass a few confined ones (self_check), or the run fails with status 2.
A difference is re-checked on its own before it counts (so a plan that
happens to differ between two runs is reported as "unconfirmed", not as a
leak). Statements that fail on MariaDB (syntax the server refuses, unknown
columns, ...) are fine and counted.

Scoped mode (--scoped-share F, default 0.25): that share of the statements
is sent as on a tenant-scoped session (docs/orms.md) of a target user K,
mostly the user the statement names, with its key term often left out so
the scope's rewrite must add it; analyze_cli --user K decides, and what
the router would send (the rewrite, or the statement itself) must be
routed to K and pass the same check for K: never read or change another
user's rows.

Reports statements tried, routed, executed without error, leaks (must be 0)
per class of generator feature, and writes every leaking statement with its
evidence to --leaks (default <build>/difffuzz-leaks.txt). Deterministic for
a given --seed (and MariaDB version, whose keyword list is learnt at start).
Exit status: 0 no leak, 1 leaks, 2 the harness itself failed.
"""

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))

import pymysql  # noqa: E402

import cluster  # noqa: E402
import gen  # noqa: E402

DB = cluster.APP_DB


# ----------------------------------------------------------------- analyzer

def analyze(cli, sqls, user=None):
    """Decisions (dicts, one per statement) from analyze_cli -0; with <user>,
    as on a session scoped to that user (a rewrite is in "rewritten")."""
    data = b"".join(s.encode("utf-8", "surrogateescape") + b"\0" for s in sqls)
    argv = [cli, "-0", "--db", DB] + (["--user", str(user)] if user is not None else [])
    r = subprocess.run(argv, input=data, capture_output=True, timeout=300)
    if r.returncode != 0:
        raise cluster.HarnessError("%s exited %d: %s" % (cli, r.returncode,
                                                          r.stderr.decode()[-2000:]))
    out = [json.loads(l) for l in r.stdout.decode("latin-1").splitlines() if l.strip()]
    if len(out) != len(sqls):
        raise cluster.HarnessError("analyze_cli: %d statements, %d decisions" % (
            len(sqls), len(out)))
    return out


def sent_sql(d, sql):
    """The statement a router sends for decision <d> of <sql>: its scoped
    rewrite, or itself (analyze_cli writes bytes >= 0x7f as \\u00XX)."""
    if "rewritten" not in d:
        return sql
    return d["rewritten"].encode("latin-1").decode("utf-8", "surrogateescape")


def decide(cli, batch):
    """Decisions for a batch of Stmt: plain ones as they are, scoped ones
    (Stmt.scope set) as on a session scoped to that user."""
    out = [None] * len(batch)
    by_scope = collections.OrderedDict()
    for i, s in enumerate(batch):
        by_scope.setdefault(s.scope, []).append(i)
    for scope, idx in by_scope.items():
        for i, d in zip(idx, analyze(cli, [batch[i].sql for i in idx], user=scope)):
            out[i] = d
    return out


def routed_user(d):
    """The user a decision routes to, or None (not routed, a '?' key, or a
    key that is not one of the integers our data set knows)."""
    if d.get("decision") != "route" or d.get("param", -1) >= 0:
        return None
    try:
        return int(d["userid"])
    except (KeyError, TypeError, ValueError):
        return None


# ----------------------------------------------------------------- keywords

def learn_keywords(conn):
    """MariaDB's keyword classes, from the live server: every word of
    INFORMATION_SCHEMA.KEYWORDS (sql/lex.h's symbols) probed in two
    positions. Returns {'reserved', 'nonreserved', 'alias'} sets:
    reserved = a syntax error as a bare column name; nonreserved = parsed
    as a column name (unknown column 1054); alias = accepted as a bare
    table alias. Words that parse as something else (CURRENT_DATE, TRUE,
    ...) are in neither of the first two."""
    out = {"reserved": set(), "nonreserved": set(), "alias": set()}
    with conn.cursor() as c:
        c.execute("CREATE TABLE IF NOT EXISTS kwprobe (x INT)")
        c.execute("SELECT word FROM information_schema.KEYWORDS ORDER BY word")
        words = [r[0] for r in c.fetchall() if r[0][:1].isalpha()]
        for w in words:
            try:
                c.execute("SELECT %s FROM kwprobe WHERE 0" % w)
                c.fetchall()
            except pymysql.MySQLError as e:
                if e.args[0] == 1054:
                    out["nonreserved"].add(w.upper())
                elif e.args[0] == 1064:
                    out["reserved"].add(w.upper())
            try:
                c.execute("SELECT 1 FROM kwprobe %s WHERE 0" % w)
                c.fetchall()
                out["alias"].add(w.upper())
            except pymysql.MySQLError:
                pass
    if len(out["reserved"]) < 100 or len(out["nonreserved"]) < 100:
        raise cluster.HarnessError("keyword probe found too few keywords: %d reserved, %d not" % (
            len(out["reserved"]), len(out["nonreserved"])))
    return out


# ----------------------------------------------------------------- database

class Backend:
    """The live MariaDB, its schema and data, and one connection as the
    router's backend user on which the statements run."""

    def __init__(self):
        self.db = cluster.MariaDB("difffuzz")
        root = self.db.connect()
        try:
            with root.cursor() as c:
                for t in gen.TABLES:
                    c.execute("CREATE TABLE `%s` (%s) DEFAULT CHARSET=utf8mb4" % (
                        t, gen.COLUMN_DDL))
            self.keywords = learn_keywords(root)
        finally:
            root.close()
        self.conn = None
        self.loaded = None
        self.base = None
        self.reconnect()

    def reconnect(self):
        if self.conn:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn = pymysql.connect(host="127.0.0.1", port=self.db.port,
                                    user=cluster.BACKEND_USER, password=cluster.BACKEND_PASSWORD,
                                    database=DB, autocommit=True, charset="utf8mb4",
                                    read_timeout=60, write_timeout=60)
        with self.conn.cursor() as c:
            # ONLY_FULL_GROUP_BY: a column neither grouped nor aggregated
            # is an error, not a value that depends on the scan order (which
            # may differ between the full data set and U's rows only). It
            # changes no lexing or precedence.
            c.execute("SET SESSION max_statement_time = 5, innodb_lock_wait_timeout = 5,"
                      " sql_mode = CONCAT(@@sql_mode, ',ONLY_FULL_GROUP_BY')")
        self.loaded = None
        self.base = None

    def load(self, users):
        """Makes the tables hold rows 1..3 of each of <users>, nothing else."""
        users = tuple(sorted(set(users)))
        if self.loaded == users:
            return
        rows = [gen.row_values(u, i) for u in users for i in (1, 2, 3)]
        ph = ",".join(["%s"] * len(rows[0]))
        with self.conn.cursor() as c:
            for t in gen.TABLES:
                c.execute("DELETE FROM `%s`" % t)
                c.executemany("INSERT INTO `%s` VALUES (%s)" % (t, ph), rows)
        self.loaded = users
        self.base = None

    def snapshot(self, full=False):
        """{table: rows} of every table in one round trip: (userid, id, MD5
        of the whole row) per row, or the whole rows if <full>."""
        if full:
            snap = {}
            with self.conn.cursor() as c:
                for t in gen.TABLES:
                    c.execute("SELECT * FROM `%s` ORDER BY userid, id" % t)
                    snap[t] = c.fetchall()
            return snap
        if not hasattr(self, "_snap_sql"):
            cols = ",".join("IFNULL(`%s`,'\\N')" % c for c in gen.BASE_COLUMNS + gen.KW_COLUMNS)
            self._snap_sql = " UNION ALL ".join(
                "SELECT '%s', userid, id, MD5(CONCAT_WS(0x1f,%s)) FROM `%s`" % (t, cols, t)
                for t in gen.TABLES)
        snap = {t: [] for t in gen.TABLES}
        with self.conn.cursor() as c:
            c.execute(self._snap_sql)
            for t, userid, id_, h in c.fetchall():
                snap[t].append((userid, id_, h))
        for t in snap:
            snap[t].sort()
        return snap

    def run(self, sql, user, full_rows=False):
        """Runs <sql> in a transaction that is rolled back. Returns
        (outcome, others_changed, user_rows, restored): outcome is
        ('ok', sorted row reprs, rowcount) or ('error', errno);
        others_changed lists, per table whose rows of users other than
        <user> changed, the rows removed or changed and the rows added or
        changed (as (userid, id, hash), or whole rows with <full_rows>)."""
        if self.base is None:
            self.base = self.snapshot(full_rows)
        before = self.base
        with self.conn.cursor() as c:
            c.execute("BEGIN")
        try:
            with self.conn.cursor() as c:
                c.execute(sql)
                rows = c.fetchall() if c.description else ()
                while c.nextset():
                    pass
                outcome = ("ok", sorted(repr(r) for r in rows), c.rowcount)
        except pymysql.err.OperationalError as e:
            outcome = ("error", e.args[0] if e.args else None)
            if e.args and e.args[0] in (2006, 2013, 2014):     # connection gone
                self.reconnect()
                return outcome, [], None, False
        except pymysql.MySQLError as e:
            outcome = ("error", e.args[0] if e.args else None)
        after = self.snapshot(full_rows)
        with self.conn.cursor() as c:
            c.execute("ROLLBACK")
        changed = []
        for t in gen.TABLES:
            ob = [r for r in before[t] if r[0] != user]
            oa = [r for r in after[t] if r[0] != user]
            if ob != oa:
                gone = [r[:12] for r in ob if r not in oa]
                new = [r[:12] for r in oa if r not in ob]
                changed.append("%s: other users' rows changed: removed or old %r; added or "
                               "new %r" % (t, gone[:4], new[:4]))
        user_rows = {t: [r for r in after[t] if r[0] == user] for t in gen.TABLES}
        restored = self.snapshot(full_rows) == before
        if not restored:
            self.loaded = None
        return outcome, changed, user_rows, restored

    def stop(self):
        try:
            if self.conn:
                self.conn.close()
        finally:
            self.db.stop()


# ----------------------------------------------------------------- checking

def check_one(be, stmt, user):
    """Runs <stmt> for <user> on the full data set and on U's rows only.
    Returns (evidence list (empty = confined), full outcome)."""
    be.load(gen.ALL_USERS + [user])
    be.base = None
    full, changed, full_rows, restored = be.run(stmt.sql, user, full_rows=True)
    be.load([user])
    be.base = None
    only, _, only_rows, _ = be.run(stmt.sql, user, full_rows=True)
    be.base = None
    ev = list(changed)
    if not restored:
        ev.append("the rollback did not restore the tables (statement committed?)")
    if full != only:
        ev.append("outcome differs: with other users' rows %s; with U's rows only %s" % (
            _short(full), _short(only)))
    elif full_rows is not None and only_rows is not None and full_rows != only_rows:
        ev.append("U's rows after the statement differ (table, only with the full data, "
                  "only with U's rows): %r" % (_diff_rows(full_rows, only_rows),))
    return ev, full


def _short(outcome):
    s = repr(outcome)
    return s if len(s) < 600 else s[:600] + "...'"


def _diff_rows(a, b):
    return [(t, [r[:4] for r in a[t] if r not in b[t]], [r[:4] for r in b[t] if r not in a[t]])
            for t in a if a[t] != b[t]]


def check_group(be, user, items):
    """Runs the statements routed to <user> (a list of Stmt) in two phases
    (full data, then U only); returns [(stmt, full outcome, evidence)] for
    every statement, evidence empty when confined."""
    be.load(gen.ALL_USERS + [user])
    full = []
    for s in items:
        full.append(be.run(s.sql, user))
        if be.loaded is None:
            be.load(gen.ALL_USERS + [user])
    be.load([user])
    res = []
    for s, (f_out, changed, f_rows, restored) in zip(items, full):
        o_out, _, o_rows, _ = be.run(s.sql, user)
        if be.loaded is None:
            be.load([user])
        suspect = bool(changed) or not restored or f_out != o_out or (
            f_rows is not None and o_rows is not None and f_rows != o_rows)
        res.append((s, f_out, suspect))
    out = []
    for s, f_out, suspect in res:
        ev = []
        if suspect:
            ev, f_out = check_one(be, s, user)
            if not ev:
                ev = None           # differed once, not on its own: unconfirmed
        out.append((s, f_out, ev))
    return out


# The checker must tell these apart before its verdicts mean anything.
SELF_CHECK_LEAKY = [
    "SELECT id FROM orders WHERE userid = 42 OR 1 = 1",
    "SELECT COUNT(*) FROM orders o WHERE o.userid = 42 AND EXISTS (SELECT 1 FROM items i"
    " WHERE i.userid <> 42)",
    "SELECT o.id, (SELECT MAX(total) FROM items) FROM orders o WHERE o.userid = 42",
    "UPDATE orders SET note = 'x' WHERE userid = 42 OR id = 1",
    "INSERT INTO orders (userid, id) VALUES (43, 99)",
    "DELETE FROM items WHERE userid = 42 OR userid = 0",
    "UPDATE orders SET a = (SELECT MAX(a) FROM items WHERE userid = 7) WHERE userid = 42",
]
SELF_CHECK_CONFINED = [
    "SELECT id, note FROM orders WHERE userid = 42",
    "SELECT o.id, i.id FROM orders o JOIN items i ON i.userid = o.userid WHERE o.userid = 42",
    "UPDATE orders SET note = 'x' WHERE userid = 42",
    "INSERT INTO orders (userid, id, a) VALUES (42, 99, 1)",
    "DELETE FROM items WHERE userid = 42 AND id = 2",
    "SELECT COUNT(*), MAX(total) FROM notes WHERE userid = 42 GROUP BY userid",
]


def self_check(be):
    """Returns a list of problems: leaky statements the checker misses or
    confined ones it flags (both would make its verdicts worthless)."""
    bad = []
    for sql in SELF_CHECK_LEAKY:
        if not check_one(be, gen.Stmt(sql, 42, [], True), 42)[0]:
            bad.append("not caught as a leak: " + sql)
    for sql in SELF_CHECK_CONFINED:
        ev = check_one(be, gen.Stmt(sql, 42, [], True), 42)[0]
        if ev:
            bad.append("flagged although confined: %s (%s)" % (sql, ev))
    return bad


def minimize(be, cli, stmt, user, budget=200):
    """A shorter statement that is still routed to <user> and still leaks:
    drops space-separated chunks while that holds (at most <budget> tries)."""
    words = stmt.sql.split(" ")
    tries = 0
    changed = True
    while changed and tries < budget:
        changed = False
        i = 0
        while i < len(words) and tries < budget:
            cand = words[:i] + words[i + 1:]
            sql = " ".join(cand)
            tries += 1
            d = analyze(cli, [sql])[0]
            if sql.strip() and routed_user(d) == user:
                ev, _ = check_one(be, gen.Stmt(sql, user, stmt.labels, stmt.write), user)
                if ev:
                    words = cand
                    changed = True
                    continue
            i += 1
    return " ".join(words)


# ----------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=None, help="stop after this long")
    ap.add_argument("--count", type=int, default=None, help="stop after this many statements")
    ap.add_argument("--batch", type=int, default=400)
    ap.add_argument("--build", default=os.environ.get("SW_BUILD_DIR",
                                                      os.path.join(cluster.REPO, "build-test")))
    ap.add_argument("--leaks", default=None, help="file for leaking statements")
    ap.add_argument("--minimize", type=int, default=10,
                    help="shorten at most this many leaking statements (0: none)")
    ap.add_argument("--summary-json", default=None, help="write the counts as JSON here")
    ap.add_argument("--scoped-share", type=float, default=0.25,
                    help="the share of statements sent as on a scoped session")
    ap.add_argument("--trace", default=None,
                    help="write every routed statement and its outcome here (JSON lines)")
    args = ap.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the finally below stops mariadbd
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
    if args.seconds is None and args.count is None:
        args.count = 2000
    cli = os.path.join(args.build, "tests", "fuzz", "analyze_cli")
    try:
        cluster._check_built(cli)      # tests/run names binaries that did not build
    except cluster.HarnessError as e:
        print("difffuzz: %s" % e)
        return 2
    if not os.access(cli, os.X_OK):
        print("difffuzz: %s not found (build it: ninja -C %s)" % (cli, args.build))
        return 2
    leaks_path = args.leaks or os.path.join(args.build, "difffuzz-leaks.txt")

    t0 = time.monotonic()
    try:
        be = Backend()
    except Exception as e:
        print("difffuzz: could not start MariaDB: %s" % e)
        cluster.cleanup()
        return 2
    kw = be.keywords
    print("difffuzz: seed %d; MariaDB port %d; keywords: %d reserved, %d non-reserved, "
          "%d usable as table alias (learnt from the server in %.1fs)" % (
              args.seed, be.db.port, len(kw["reserved"]), len(kw["nonreserved"]),
              len(kw["alias"]), time.monotonic() - t0), flush=True)
    problems = self_check(be)
    if problems:
        print("difffuzz: the checker itself is broken:\n  " + "\n  ".join(problems))
        be.stop()
        cluster.cleanup()
        return 2
    print("difffuzz: self-check passed (%d leaky statements caught, %d confined ones not "
          "flagged)" % (len(SELF_CHECK_LEAKY), len(SELF_CHECK_CONFINED)), flush=True)
    g = gen.Gen(args.seed, kw)
    srng = random.Random(args.seed * 7919 + 1)      # the scoping choices
    n = {"tried": 0, "routed": 0, "routed_writes": 0, "executed_ok": 0, "errors": 0,
         "leaks": 0, "unconfirmed": 0, "scoped_tried": 0, "scoped_routed": 0,
         "scoped_rewritten": 0}
    per_class = collections.defaultdict(lambda: [0, 0, 0])     # tried, routed, leaks
    per_attack = collections.defaultdict(lambda: [0, 0, 0])
    leaks = []
    unconfirmed = []
    t_start = time.monotonic()
    trace = open(args.trace, "w") if args.trace else None
    rc = 0
    try:
        while True:
            left = None if args.count is None else args.count - n["tried"]
            if left is not None and left <= 0:
                break
            if args.seconds is not None and time.monotonic() - t_start >= args.seconds:
                break
            batch = []
            for _ in range(min(args.batch, left or args.batch)):
                scoped = srng.random() < args.scoped_share
                g.unkeyed = 0.6 if scoped else 0.0
                s = g.statement()
                if scoped:
                    s.scope = s.user if srng.random() < 0.8 else srng.choice(gen.TARGET_USERS)
                    s.labels = s.labels + ["scoped"]
                batch.append(s)
            g.unkeyed = 0.0
            decisions = decide(cli, batch)
            groups = collections.OrderedDict()
            for s, d in zip(batch, decisions):
                if s.scope is not None:
                    n["scoped_tried"] += 1
                    if routed_user(d) is not None and routed_user(d) != s.scope:
                        n["leaks"] += 1
                        ev = ["on a session scoped to %d, routed to %d" % (s.scope,
                                                                           routed_user(d))]
                        leaks.append((s, s.scope, ev))
                        print("LEAK scope=%d %s\n    %s" % (s.scope, json.dumps(s.sql), ev[0]),
                              flush=True)
                        continue
                    if "rewritten" in d:
                        s.labels = s.labels + ["rewritten"]
                    s.sql = sent_sql(d, s.sql)      # checked as sent
                n["tried"] += 1
                for c in s.labels:
                    per_class[c][0] += 1
                for c in s.attacks or ["none"]:
                    per_attack[c][0] += 1
                u = routed_user(d)
                if u is None:
                    continue
                n["routed"] += 1
                n["routed_writes"] += s.write
                if s.scope is not None:
                    n["scoped_routed"] += 1
                    n["scoped_rewritten"] += "rewritten" in s.labels
                for c in s.labels:
                    per_class[c][1] += 1
                for c in s.attacks or ["none"]:
                    per_attack[c][1] += 1
                groups.setdefault(u, []).append(s)
            for u, items in groups.items():
                for s, f_out, ev in check_group(be, u, items):
                    if trace:
                        trace.write(json.dumps({"user": u, "sql": s.sql, "labels": s.labels,
                                                "outcome": f_out[:2], "leak": ev}) + "\n")
                    if f_out[0] == "ok":
                        n["executed_ok"] += 1
                    else:
                        n["errors"] += 1
                    if ev is None:
                        n["unconfirmed"] += 1
                        unconfirmed.append(s)
                    elif ev:
                        n["leaks"] += 1
                        for c in s.labels:
                            per_class[c][2] += 1
                        for c in s.attacks or ["none"]:
                            per_attack[c][2] += 1
                        leaks.append((s, u, ev))
                        print("LEAK user=%d %s\n    %s" % (u, json.dumps(s.sql), "\n    ".join(ev)),
                              flush=True)
        # shortened forms of the first leaks, to show the class
        for k, (s, u, ev) in enumerate(leaks[:args.minimize]):
            if s.scope is None:     # minimize() reads without a scope
                s.short = minimize(be, cli, s, u)
    except Exception:
        print("difffuzz: harness failure:\n%s" % traceback.format_exc())
        rc = 2
    finally:
        secs = time.monotonic() - t_start
        with open(leaks_path, "w") as f:
            f.write("# difffuzz seed %d: %d leaking statements (JSON strings; evidence below each)\n"
                    % (args.seed, len(leaks)))
            for s, u, ev in leaks:
                f.write("LEAK user=%d attack=%s classes=%s\n  sql: %s\n" % (
                    u, ",".join(s.attacks) or "-", ",".join(s.labels), json.dumps(s.sql)))
                if getattr(s, "short", None) and s.short != s.sql:
                    f.write("  shortest still leaking: %s\n" % json.dumps(s.short))
                for e in ev:
                    f.write("  evidence: %s\n" % e)
            for s in unconfirmed:
                f.write("UNCONFIRMED (differed once, not when re-run alone): %s\n" %
                        json.dumps(s.sql))
        if trace:
            trace.close()
        be.stop()
        cluster.cleanup()
    print("\nclass (features used)   tried   routed  leaks")
    for c in sorted(per_class):
        t, r, l = per_class[c]
        print("%-22s %7d %8d %6d" % (c, t, r, l))
    print("\nattack next to the key  tried   routed  leaks")
    for c in sorted(per_attack):
        t, r, l = per_attack[c]
        print("%-22s %7d %8d %6d" % (c, t, r, l))
    print("\ndifffuzz: seed %d, %.0fs: %d statements tried, %d routed (%d writes), "
          "%d executed without error, %d failed on MariaDB, %d unconfirmed differences, "
          "%d LEAKS%s" % (args.seed, secs, n["tried"], n["routed"], n["routed_writes"],
                          n["executed_ok"], n["errors"], n["unconfirmed"], n["leaks"],
                          " (see %s)" % leaks_path if leaks else ""))
    print("difffuzz: scoped sessions: %d statements, %d routed to the scope's user (%d of "
          "them rewritten)" % (n["scoped_tried"], n["scoped_routed"], n["scoped_rewritten"]))
    if args.summary_json:
        with open(args.summary_json, "w") as f:
            json.dump(dict(n, seed=args.seed, seconds=secs, leaks_file=leaks_path,
                           per_class={c: v for c, v in per_class.items()},
                           per_attack={c: v for c, v in per_attack.items()}), f)
    if rc:
        return rc
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())

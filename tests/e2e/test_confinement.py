#!/usr/bin/python3
"""
tests/e2e/test_confinement.py - the analyzer's promise, checked against a
real MariaDB: every corpus statement (tests/corpus/analyze.txt, default
config) that `shardctl explain` routes to user U reads and changes only rows
of U.

Differential method, no knowledge of the statement needed:
  * reads: the statement returns the same result on the full data set as on
    a copy holding only U's rows (so no other user's row influenced it);
  * writes: run in a transaction on the full data set, every row of every
    other user is unchanged afterwards (then rolled back).
The data set has several rows per user with ids that collide across users,
so a join or subquery that is not limited to U picks up other users' rows.
A deliberately unconfined statement is run through the same check to show
the check can fail.

Runs under tests/e2e/runner.py, or standalone:
  /usr/bin/python3 tests/e2e/test_confinement.py
"""

import os
import re
import sys

import pymysql

import cluster

CORPUS = os.path.join(cluster.REPO, "tests", "corpus", "analyze.txt")

TABLES = ["orders", "items", "notes", "drafts", "nodes", "users", "carts", "orders2",
          "docs", "注文", "bestellungen_ä"]

COLUMNS = (
    "userid BIGINT NOT NULL, id BIGINT NOT NULL AUTO_INCREMENT, order_id BIGINT, parent BIGINT,"
    " status VARCHAR(20), total DECIMAL(12,2), price DECIMAL(12,2), qty INT,"
    " sku VARCHAR(20), note VARCHAR(100), name VARCHAR(50), a INT, b INT, x INT, y INT,"
    " n INT, s VARCHAR(20), created DATETIME, created_at DATETIME, owner_id BIGINT,"
    " body TEXT, `状態` VARCHAR(10), PRIMARY KEY (userid, id), KEY (id), KEY ix_user (userid),"
    " KEY ix (order_id),"
    # columns named like keywords and odd words (issue 8 corpus lines):
    # a word after a qualifier dot is a column to the server
    " `ORDER` INT DEFAULT 1, `where` INT DEFAULT 1, `limit` INT DEFAULT 1, `case` INT DEFAULT 1,"
    " `into` INT DEFAULT 1, `having` INT DEFAULT 1, `returning` INT DEFAULT 1,"
    " `lock` INT DEFAULT 1, `end` INT DEFAULT 1, `begin` INT DEFAULT 2, `value` INT DEFAULT 3,"
    " `mode` INT DEFAULT 4, c INT DEFAULT 1, d DATE DEFAULT '2020-01-01', e INT DEFAULT 1,"
    " `5e1` INT DEFAULT 1, _foo BIGINT DEFAULT 43")
# the columns load() fills; the rest keep their defaults
LOADED = ("userid, id, order_id, parent, status, total, price, qty, sku, note, name, a, b, x, y,"
          " n, s, created, created_at, owner_id, body, `状態`")

# Users with rows: every key a corpus statement routes to, and neighbours.
BASE_USERS = [1, 2, 4, 5, 6, 7, 8, 41, 42, 43, 77, 420, 0, -42, -41,
              9223372036854775807, 9223372036854775806, -9223372036854775808,
              9007199254740992, 9007199254740993, 1234567]
PARAM_USER = 42          # bound to the key's '?' in routed prepared statements

db = None


def corpus_statements():
    """Statements of the corpus section analysed with the default config
    (the e2e check uses `shardctl explain`'s default: key userid, int)."""
    out = []
    keys_default, int_keys = True, True
    with open(CORPUS, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            if line.startswith("@"):
                words = line.split()
                if words[0] == "@keys":
                    keys_default = words[1:] == ["userid"]
                elif words[0] == "@keytype":
                    int_keys = words[1:] == ["int"]
                elif words[0] == "@reset":
                    keys_default, int_keys = True, True
                continue
            if " |" not in line:
                continue
            sql = line.split(" |", 1)[1]
            if sql.startswith(" "):
                sql = sql[1:]
            if keys_default and int_keys and sql.strip():
                out.append(sql)
    return out


def connect():
    return pymysql.connect(host="127.0.0.1", port=db.port, user=cluster.BACKEND_USER,
                           password=cluster.BACKEND_PASSWORD, database=cluster.APP_DB,
                           autocommit=True, charset="utf8mb4")


def rows_for(user):
    out = []
    for i in (1, 2, 3):
        out.append((user, i, i, i - 1, ("open", "paid", "x")[i % 3], 10 * i, 5 * i, i, "X-1",
                    "note %d" % i, "a%d" % i, i % 2, 2, 1, 2, i, "x", "2024-06-0%d" % i,
                    "2024-06-0%d 12:00:00" % i, user, "b", "x"))
    return out


def load(conn, users):
    with conn.cursor() as c:
        for t in TABLES:
            c.execute("DELETE FROM `%s`" % t)
            rows = [r for u in users for r in rows_for(u)]
            c.executemany("INSERT INTO `%s` (%s) VALUES (%s)" % (t, LOADED, ",".join(["%s"] * 22)),
                          rows)


def others_snapshot(conn, user):
    snap = {}
    with conn.cursor() as c:
        for t in TABLES:
            c.execute("SELECT * FROM `%s` WHERE userid <> %%s OR owner_id <> %%s"
                      " ORDER BY userid, id" % t, (user, user))
            snap[t] = c.fetchall()
    return snap


def bind(sql, key_param):
    """Replaces each '?' outside quotes with PARAM_USER: the key's, and any
    other '?' that may also carry the key (a router with multi_param_key
    only executes when they are all equal); a value for the rest does not
    matter to confinement."""
    out, i, n, q = [], 0, 0, None
    while i < len(sql):
        ch = sql[i]
        if q:
            out.append(ch)
            if ch == "\\" and i + 1 < len(sql):
                out.append(sql[i + 1])
                i += 1
            elif ch == q:
                q = None
        elif ch in "'\"`":
            q = ch
            out.append(ch)
        elif ch == "?":
            out.append(str(PARAM_USER))
            n += 1
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def run(conn, sql):
    """('ok', sorted rows, rowcount) or ('error', errno)."""
    try:
        with conn.cursor() as c:
            c.execute(sql)
            rows = c.fetchall() if c.description else ()
            return ("ok", sorted(repr(r) for r in rows), c.rowcount)
    except pymysql.MySQLError as e:
        return ("error", e.args[0] if e.args else None)


def is_write(d):
    return d.get("stmt") in ("insert", "update", "delete") or d.get("write")


def routed():
    """[(sql to run, user, decision)] for every routed corpus statement."""
    stmts = corpus_statements()
    # a leading space keeps "-- comment" statements from looking like options
    decisions = cluster.explain([" " + s if s.startswith("-") else s for s in stmts])
    out = []
    for sql, d in zip(stmts, decisions):
        if d.get("decision") != "route":
            continue
        if "param" in d:
            out.append((bind(sql, d["param"]), PARAM_USER, d))
        else:
            out.append((sql, int(d["key"]), d))
    return out


def check_reads(conn, items):
    """Reads give the same result with and without other users' rows.
    Returns a list of failure strings."""
    failures = []
    by_user = {}
    for sql, user, d in items:
        # EXPLAIN/ANALYZE print estimates and timings, not rows: their
        # output differs from run to run whatever the data
        if not is_write(d) and not re.match(r"\s*(EXPLAIN|ANALYZE)\b", sql, re.I):
            by_user.setdefault(user, []).append(sql)
    for user, stmts in sorted(by_user.items()):
        load(conn, BASE_USERS + ([user] if user not in BASE_USERS else []))
        full = [run(conn, s) for s in stmts]
        load(conn, [user])
        only = [run(conn, s) for s in stmts]
        for s, f, o in zip(stmts, full, only):
            if f != o:
                failures.append("user %s: %s\n    full: %r\n    only: %r" % (user, s, f, o))
    return failures


def check_writes(conn, items):
    failures = []
    load(conn, BASE_USERS)
    for sql, user, d in items:
        if not is_write(d):
            continue
        with conn.cursor() as c:
            c.execute("BEGIN")
        before = others_snapshot(conn, user)
        r = run(conn, sql)
        after = others_snapshot(conn, user)
        with conn.cursor() as c:
            c.execute("ROLLBACK")
        for t in TABLES:
            if before[t] != after[t]:
                failures.append("user %s: %s\n    changed other users' rows in %s (%r)" % (
                    user, sql, t, r))
    return failures


def setup_module():
    global db
    db = cluster.MariaDB("confinement")
    conn = db.connect()
    try:
        with conn.cursor() as c:
            for t in TABLES:
                c.execute("CREATE TABLE `%s` (%s) DEFAULT CHARSET=utf8mb4" % (t, COLUMNS))
    finally:
        conn.close()


def teardown_module():
    if db:
        db.stop()


def test_check_can_fail():
    """The differential checks catch statements that are not confined."""
    conn = connect()
    try:
        leaky_read = [("SELECT id FROM orders WHERE userid = 42 OR 1 = 1", 42, {"stmt": "select"}),
                      ("SELECT o.id FROM orders o JOIN items i ON i.order_id = o.id"
                       " WHERE o.userid = 42 AND i.userid <> 42", 42, {"stmt": "select"})]
        assert len(check_reads(conn, leaky_read)) == 2
        leaky_write = [("UPDATE orders SET note = 'x' WHERE userid = 42 OR id = 1", 42,
                        {"stmt": "update"}),
                       ("INSERT INTO orders (userid, id) VALUES (43, 99)", 42, {"stmt": "insert"})]
        assert len(check_writes(conn, leaky_write)) == 2
    finally:
        conn.close()


def test_routed_reads_confined():
    items = routed()
    n_reads = sum(1 for _, _, d in items if not is_write(d))
    assert n_reads >= 120, "only %d routed reads in the corpus" % n_reads
    conn = connect()
    try:
        failures = check_reads(conn, items)
    finally:
        conn.close()
    assert not failures, "%d routed reads leak:\n%s" % (len(failures), "\n".join(failures))


def test_routed_writes_confined():
    items = routed()
    n_writes = sum(1 for _, _, d in items if is_write(d))
    assert n_writes >= 30, "only %d routed writes in the corpus" % n_writes
    conn = connect()
    try:
        failures = check_writes(conn, items)
    finally:
        conn.close()
    assert not failures, "%d routed writes leak:\n%s" % (len(failures), "\n".join(failures))


def test_routed_statements_mostly_run():
    """Guard against a vacuous pass: most routed statements execute without
    an error on the test schema (an error changes nothing and reads nothing)."""
    items = routed()
    conn = connect()
    errors = []
    try:
        load(conn, BASE_USERS)
        for sql, user, d in items:
            with conn.cursor() as c:
                c.execute("BEGIN")
            r = run(conn, sql)
            with conn.cursor() as c:
                c.execute("ROLLBACK")
            if r[0] == "error":
                errors.append("%s -> %s" % (sql, r[1]))
    finally:
        conn.close()
    assert len(errors) <= len(items) // 10, "%d of %d routed statements fail:\n%s" % (
        len(errors), len(items), "\n".join(errors))


# ------------------------------------------------------- generated statements
#
# A small random grammar mixing what the analyzer must accept with what it
# must refuse: key terms in every spelling, ORs, NOTs, BETWEEN, CASE, joins
# (inner/outer, ON/USING, comma), correlated and plain subqueries, derived
# tables, UNIONs, comments of every kind (including executable ones hiding
# terms) and strings that look like SQL. Whatever the analyzer routes must
# pass the same differential check as the corpus.

import random

GEN_USERS = [42, 43, 7]


def _gen_value(r, u):
    return r.choice([str(u), "'%d'" % u, "0%d" % u, "+%d" % u, "_utf8mb4'%d'" % u, "%d" % u])


def _gen_keyref(r, alias):
    if alias is None:
        return r.choice(["userid", "`userid`", "USERID"])
    return r.choice(["%s.userid" % alias, "`%s`.userid" % alias, "userid"])


def _gen_key_term(r, alias, u):
    k, v = _gen_keyref(r, alias), _gen_value(r, u)
    return r.choice(["%s = %s" % (k, v), "%s = %s" % (v, k), "%s IN (%s)" % (k, v),
                     "%s <=> %s" % (k, v), "%s IN (%s, %s)" % (k, v, _gen_value(r, u))])


def _col(alias, c):
    return c if alias is None else "%s.%s" % (alias, c)


def _gen_plain_term(r, alias):
    c = lambda name: _col(alias, name)
    return r.choice([
        "%s = 1" % c("a"), "%s > 1" % c("b"), "%s = 'open'" % c("status"),
        "%s LIKE 'n%%'" % c("note"), "%s IS NOT NULL" % c("x"), "%s BETWEEN 1 AND 2" % c("id"),
        "CASE WHEN %s = 1 THEN 1 ELSE 0 END = 1" % c("a"), "%s IN (1, 2)" % c("id"),
        "NOT %s = 2" % c("a"), "%s = 'x'' OR 1=1 -- '" % c("note"),
        "%s = 'x\\' OR 1=1 -- '" % c("note"), "%s = \"userid = 43\"" % c("note"),
        "%s <> 3" % c("n"), "1 = 1", "%s = %s" % (c("order_id"), c("id")),
    ])


def _gen_bad_term(r, alias, u):
    k = _gen_keyref(r, alias)
    other = [x for x in GEN_USERS if x != u]
    return r.choice([
        "%s > 0" % k, "%s != %d" % (k, u), "%s = %d" % (k, r.choice(other)),
        "NOT %s = %d" % (k, u), "%s BETWEEN %d AND %d" % (k, u, u), "0 BETWEEN 0 AND %s = 1" % k,
        "%s + 0 = %d" % (k, u), "%s = %d + 0" % (k, u), "%s LIKE '%d'" % (k, u),
    ])


def _gen_comment(r):
    return r.choice([" /* c */ ", " -- c\n ", " #c\n ", " /*+ hint */ ", " "])


def _gen_cond(r, alias, u, depth=0):
    """A WHERE/ON condition; more likely confined than not."""
    roll = r.random()
    if depth > 2 or roll < 0.35:
        t = r.random()
        if t < 0.45:
            return _gen_key_term(r, alias, u)
        if t < 0.85:
            return _gen_plain_term(r, alias)
        return _gen_bad_term(r, alias, u)
    if roll < 0.65:
        return "%s AND%s%s" % (_gen_cond(r, alias, u, depth + 1), _gen_comment(r),
                                 _gen_cond(r, alias, u, depth + 1))
    if roll < 0.75:
        return "%s %s %s" % (_gen_cond(r, alias, u, depth + 1), r.choice(["OR", "||", "XOR"]),
                             _gen_cond(r, alias, u, depth + 1))
    if roll < 0.80:
        return "(%s)" % _gen_cond(r, alias, u, depth + 1)
    if roll < 0.82:
        return r.choice(["(%s) = 1", "(%s) IS NOT FALSE", "(%s) <=> TRUE", "@v := (%s)",
                         "(%s) AND @w := 1", "IF(%s, 1, 0)"]) % _gen_cond(r, alias, u, depth + 1)
    if roll < 0.86:
        return "NOT (%s)" % _gen_cond(r, alias, u, depth + 1)
    if roll < 0.92:
        # a key term next to a comment that may or may not be executed
        hidden = r.choice(["/*! AND %s */", "/*!40101 AND %s */", "/*M! AND %s */",
                           "/*!50700 OR %s */", "/*!100500 AND %s */", "/* OR %s */",
                           "/*! OR %s */"])
        return "%s %s" % (_gen_key_term(r, alias, u), hidden % _gen_cond(r, alias, u, depth + 1))
    return "%s AND %s" % (_gen_cond(r, alias, u, depth + 1), _gen_subquery(r, alias, u, depth + 1))


def _gen_subquery(r, outer, u, depth):
    t = r.choice(["items", "notes", "orders"])
    a = "s%d" % depth
    corr = "%s.userid = %s.userid" % (a, outer) if outer else None
    conds = [_gen_cond(r, a, u, depth + 1)]
    if corr and r.random() < 0.5:
        conds = [corr] + ([_gen_plain_term(r, a)] if r.random() < 0.5 else [])
    where = " AND ".join(conds)
    body = "SELECT %s FROM %s %s WHERE %s" % (r.choice(["order_id", "id", "1"]), t, a, where)
    return r.choice(["%s IN (%s)" % (_col(outer, "id"), body.replace("SELECT 1", "SELECT id")),
                     "EXISTS (%s)" % body, "NOT EXISTS (%s)" % body,
                     "%s > (SELECT max(total) FROM %s %s WHERE %s)" % (_col(outer, "total"), t, a,
                                                                      where)])


def _gen_from(r, u):
    """(FROM text, aliases, extra WHERE terms for joined tables)."""
    kind = r.random()
    if kind < 0.4:
        return "orders o", ["o"]
    if kind < 0.75:
        join = r.choice(["JOIN", "INNER JOIN", "LEFT JOIN", "RIGHT JOIN", "STRAIGHT_JOIN"])
        on = r.choice(["ON i.userid = o.userid", "ON o.userid = i.userid AND i.order_id = o.id",
                       "USING (userid)", "ON i.order_id = o.id", "ON i.userid = %d" % u,
                       "ON o.userid = %d" % u, "ON i.userid = o.userid OR i.a = 1"])
        return "orders o %s items i %s" % (join, on), ["o", "i"]
    if kind < 0.82:
        return "orders o, items i", ["o", "i"]
    if kind < 0.88:
        return "(SELECT * FROM orders WHERE %s) o" % _gen_cond(r, None, u, 1), ["o"]
    if kind < 0.91:
        return "orders o NATURAL JOIN items i", ["o", "i"]
    if kind < 0.94:
        return ("(SELECT * FROM orders WHERE %s UNION ALL SELECT * FROM orders WHERE %s) o"
                % (_gen_cond(r, None, u, 1), _gen_cond(r, None, u, 1))), ["o"]
    if kind < 0.97:
        return ("orders o LEFT JOIN (items i JOIN notes n ON n.userid = i.userid) "
                "ON i.userid = o.userid"), ["o", "i"]
    return "orders o JOIN items i ON %s" % _gen_cond(r, "i", u, 1), ["o", "i"]


def _gen_select(r, u):
    if r.random() < 0.08:
        return "WITH c AS (SELECT * FROM orders WHERE %s) SELECT * FROM c%s" % (
            _gen_cond(r, None, u, 1),
            r.choice(["", " JOIN items i ON i.userid = c.userid",
                      " WHERE c.userid = %d" % u, ", items i WHERE i.userid = %d" % u]))
    frm, aliases = _gen_from(r, u)
    conds = [_gen_cond(r, aliases[0], u)]
    if len(aliases) > 1 and r.random() < 0.7:
        conds.append(r.choice(["i.userid = o.userid", _gen_key_term(r, "i", u),
                               _gen_plain_term(r, "i")]))
    cols = r.choice(["*", "o.id", "count(*)", "o.id, o.status",
                     "o.id, (SELECT count(*) FROM notes n WHERE n.userid = o.userid)",
                     "o.id, (SELECT count(*) FROM notes n)"])
    sql = "SELECT %s FROM %s WHERE %s" % (cols, frm, " AND ".join(conds))
    if r.random() < 0.15:
        sql += " UNION SELECT %s FROM %s WHERE %s" % (cols if cols != "*" else "*", frm,
                                                      _gen_cond(r, aliases[0], u))
    return sql


def _gen_write(r, u):
    kind = r.random()
    if kind < 0.3:
        return "UPDATE orders SET note = 'w' WHERE %s" % _gen_cond(r, None, u)
    if kind < 0.45:
        return "UPDATE orders o JOIN items i %s SET o.note = 'w' WHERE %s" % (
            r.choice(["ON i.userid = o.userid", "ON i.order_id = o.id"]), _gen_cond(r, "o", u))
    if kind < 0.65:
        return "DELETE FROM orders WHERE %s" % _gen_cond(r, None, u)
    if kind < 0.85:
        rows = ", ".join("(%s, %d, 'g')" % (_gen_value(r, u if r.random() < 0.9 else 43),
                                            100 + i) for i in range(r.randint(1, 3)))
        return "INSERT INTO orders (userid, id, note) VALUES %s" % rows
    return "INSERT INTO orders (userid, id, note) SELECT %s, id + 100, note FROM items WHERE %s" % (
        r.choice(["userid", "%d" % u, "43"]), _gen_cond(r, None, u))


def generated(seed, n):
    r = random.Random(seed)
    out = []
    for _ in range(n):
        u = r.choice(GEN_USERS)
        out.append(_gen_select(r, u) if r.random() < 0.7 else _gen_write(r, u))
    return out


def test_generated_statements_confined():
    seed = int(os.environ.get("SW_CONFINE_SEED", "20261123"))
    n = int(os.environ.get("SW_CONFINE_N", "3000"))
    stmts = generated(seed, n)
    items = []
    for k in range(0, len(stmts), 500):
        chunk = stmts[k:k + 500]
        for sql, d in zip(chunk, cluster.explain(chunk)):
            if d.get("decision") == "route" and "param" not in d:
                items.append((sql, int(d["key"]), d))
    n_reads = sum(1 for _, _, d in items if not is_write(d))
    n_writes = len(items) - n_reads
    print("generated: seed %d, %d statements, %d routed reads, %d routed writes" % (
        seed, n, n_reads, n_writes))
    assert n_reads >= n // 20 and n_writes >= n // 50, \
        "seed %d: too few routed (%d reads, %d writes of %d)" % (seed, n_reads, n_writes, n)
    conn = connect()
    try:
        failures = check_reads(conn, items) + check_writes(conn, items)
    finally:
        conn.close()
    assert not failures, "seed %d: %d of %d routed statements leak:\n%s" % (
        seed, len(failures), len(items), "\n".join(failures[:20]))


# ------------------------------------------------------ canonical keys
#
# The routed key must be exactly the value the server compares the key
# column with: for every literal spelling the analyzer accepts, the server
# finds precisely the row whose key is the analyzer's canonical key.

INT_LITERALS = ["42", "'42'", "+42", "042", "'042'", "'+42'", "\"42\"", "_utf8mb4'42'",
                "_binary '42'", "N'42'", "'4\\2'", "-42", "'-42'", "- 42", "-0", "'-0'",
                "'000'", "9223372036854775807", "-9223372036854775808",
                "'9007199254740992'", "9007199254740993", "'9007199254740993'",
                "'-9007199254740993'", "'9223372036854775807'", "'-9223372036854775808'",
                "'+09007199254740995'", "_utf8mb4'9007199254740993'"]
STRING_LITERALS = ["'alice'", "'Alice'", "_utf8mb4'alice'", "_binary'alice'", "N'alice'",
                   "'it''s'", "'it\\'s'", "'a\\\\b'", "'a\\nb'", "'a\\tb'", "'a\\Zb'",
                   "'a\\0b'", "'a\\%b'", "'a\\_b'", "'a\\qb'", "'\u00fcn\u00ef'",
                   "_latin1'alice'", "'a\"b'", "'\\\"q\\\"'"]


def _canon_rows(conn, table, literals, decisions, as_int):
    """[(literal, canonical key, rows the server returns for it)]."""
    out = []
    with conn.cursor() as c:
        for lit, d in zip(literals, decisions):
            assert d.get("decision") == "route", "%s not routed: %r" % (lit, d)
            key = d["key"] if "key" in d else bytes.fromhex(d["key_hex"]).decode("utf-8", "replace")
            kval = int(key) if as_int else key.encode("utf-8")
            c.execute("DELETE FROM %s" % table)
            # the key itself and near misses the server must tell apart
            near = [kval + 1, kval - 1, -kval] if as_int else [kval.upper(), kval + b" ",
                                                                  kval.lower(), kval[:-1]]
            for v in [kval] + [n for n in near if n != kval]:
                if as_int and not (-2**63 <= v < 2**63):
                    continue
                c.execute("INSERT IGNORE INTO %s (userid) VALUES (%%s)" % table, (v,))
            c.execute("SELECT userid FROM %s WHERE userid = %s" % (table, lit))
            out.append((lit, kval, [r[0] for r in c.fetchall()]))
    return out


def test_canonical_keys_match_server():
    conn = db.connect()
    failures = []
    try:
        with conn.cursor() as c:
            c.execute("CREATE TABLE IF NOT EXISTS ikeys (userid BIGINT PRIMARY KEY)")
            c.execute("CREATE TABLE IF NOT EXISTS skeys (userid VARBINARY(300) PRIMARY KEY)")
        stmts = ["SELECT * FROM t WHERE userid = %s" % l for l in INT_LITERALS]
        for lit, k, rows in _canon_rows(conn, "ikeys", INT_LITERALS, cluster.explain(stmts), True):
            if rows != [k]:
                failures.append("int %s: analyzer key %r, server rows %r" % (lit, k, rows))
        path = os.path.join(db.dir, "string-keys.map")
        with open(path, "w") as f:
            f.write(cluster.map_text([("s0", "127.0.0.1:%d" % db.port)], key_type="string"))
        stmts = ["SELECT * FROM t WHERE userid = %s" % l for l in STRING_LITERALS]
        decisions = cluster.explain(stmts, map_path=path)
        routed = [(l, d) for l, d in zip(STRING_LITERALS, decisions) if d.get("decision") == "route"]
        assert len(routed) >= len(STRING_LITERALS) - 2, decisions
        for lit, k, rows in _canon_rows(conn, "skeys", [l for l, _ in routed],
                                        [d for _, d in routed], False):
            if rows != [k]:
                failures.append("string %s: analyzer key %r, server rows %r" % (lit, k, rows))
    finally:
        conn.close()
    assert not failures, "\n".join(failures)


# ------------------------------------------------------ lexical torture
#
# A routed key term followed by fragments that hide "OR 1=1" from one
# reader or the other: comments of every kind, executable comments with
# every kind of version, '--' before every kind of byte, line endings,
# strings. If the analyzer routes it, the server must not have seen an OR.

LEX_FRAGMENTS = [
    " /* OR 1=1 */", " /*! OR 1=1 */", " /*!40101 OR 1=1 */", " /*!50699 OR 1=1 */",
    " /*!50700 OR 1=1 */", " /*!99999 OR 1=1 */", " /*!100000 OR 1=1 */",
    " /*!101100 OR 1=1 */", " /*!101199 OR 1=1 */", " /*!110000 OR 1=1 */",
    " /*M! OR 1=1 */", " /*M!50700 OR 1=1 */", " /*M!110000 OR 1=1 */", " /*!00000 OR 1=1 */",
    " /*!5070 OR 1=1 */", " /*+ OR 1=1 */", " /**/", " /*!*/", " -- OR 1=1\n", " --\tOR 1=1\n",
    " --\x7f OR 1=1\n", " --\x01OR 1=1\n", " --OR 1=1", " # OR 1=1\n", " #x\r OR 1=1\n",
    " #x\r\n", " -- x\r OR 1=1\n", " AND note = 'x\\' OR 1=1 -- '", " AND note = 'x'' OR 1=1 -- '",
    " AND note = \"x\\\" OR 1=1 -- \"", " AND note = 'a\\\\' OR 1=1 -- '", " AND 1", "\n", "\t",
    "\x0b", "\x0c", " /*! /* x */ OR 1=1 */", " /*! # x\n OR 1=1 */", " AND note = _utf8mb4'x'",
    " AND note = N'x\\' OR 1=1 -- '", " AND `note` = 'x'", " AND `no``te` = 1", " ;", " ; ",
    " AND a = 1e1OR 1=1", " AND a = 2e+3OR 1=1", " AND a = 1.5OR 1=1", " AND a = .5OR 1=1",
    " AND a = 0.OR 1=1", " AND a = 'x'OR 1=1", " AND a = X'41'OR 1=1", " AND a = 0x41OR 1=1",
    " AND a = 0b1OR 1=1", " AND a = 1eOR 1=1", " AND a = 1OR 1=1", " AND a = 1e1AND 1",
    # issue 8: words after a dot, numbers glued to words, versions by value,
    # BETWEEN's AND, END as a column inside CASE
    " AND orders.ORDER = 1", " AND orders.where = 1", " AND orders .case = 1", " OR.5",
    " AND1", " AND 1OR 1=1", " AND .1OR 1=1", " AND 1.OR 1=1", " AND 0x1fOR 1=1",
    " AND 1e+OR 1=1", " /*!050700 OR 1=1 */", " /*!099999 OR 1=1 */", " /*!05000 OR 1=1 */",
    " /*M!050700 OR 1=1 */", " /*!0507 OR 1=1 */", " AND 1 BETWEEN 0 BETWEEN 0 AND 1 AND 1",
    " AND a BETWEEN 0 AND 5", " AND CASE WHEN end THEN 1 ELSE 1 AND 1 END", " AND end = 1",
    " AND `orders`.5OR 1=1", " AND orders.5e1 = 1", " AND a = _utf16'1'", " AND a = _foo 'x'",
]


def test_lexical_fragments_confined():
    r = random.Random(int(os.environ.get("SW_CONFINE_SEED", "20261123")))
    stmts = []
    for _ in range(1500):
        frags = "".join(r.choice(LEX_FRAGMENTS) for _ in range(r.randint(1, 4)))
        stmts.append("SELECT id FROM orders WHERE userid = 42%s" % frags)
    items = []
    for k in range(0, len(stmts), 500):
        chunk = stmts[k:k + 500]
        for sql, d in zip(chunk, cluster.explain(chunk)):
            if d.get("decision") == "route":
                items.append((sql, int(d["key"]), d))
    assert len(items) >= 200, "only %d routed" % len(items)
    conn = connect()
    try:
        failures = check_reads(conn, items)
    finally:
        conn.close()
    assert not failures, "%d of %d routed statements leak:\n%s" % (
        len(failures), len(items), "\n".join(failures[:10]))


# ------------------------------------------------------ token glue
#
# A literal glued to a keyword ("1e1OR 1"): the server either splits the two
# or reads one word. Where the server sees the OR, the analyzer must too.

GLUE_FORMS = [
    "1", "01", "1.5", ".5", "1.", "1e1", "1E1", "1e+1", "1e-1", "1.5e1", ".5e1", "1.e1", "0x1",
    "0X1", "0x1f", "0b1", "x'41'", "X'41'", "b'1'", "N'x'", "'x'", "\"x\"", "_utf8mb4'x'",
    "_binary'x'", "`x`", "@x", "@@version", "(1)", "1e", "0x", "0b", "12abc", "x", "NULL", "TRUE",
    "''", "'a''b'", "'a\\'b'", "1e1e1", "0e0", "1e01", "0xg", "0b12", "x''", "1_000", "1$", "$1",
    "\u00e9", "1\u00e9", "0.5\u00e9", "1e1\u00e9", "N''", "@'x'", "@`x`", "1/*c*/", "1/*!*/",
    "1/*!50600*/", "CASE WHEN 1 THEN 1 END", "DATE'2020-01-01'",
]


def test_token_glue_agrees_with_server():
    stmts = ["SELECT * FROM orders WHERE userid = 42 AND a = %sOR 1=1" % f for f in GLUE_FORMS]
    decisions = cluster.explain(stmts)
    conn = db.connect()
    bad = []
    try:
        for f, d in zip(GLUE_FORMS, decisions):
            try:
                with conn.cursor() as c:
                    c.execute("SELECT %sOR 1" % f)
                    glued = c.fetchall()
                    c.execute("SELECT %s OR 1" % f)
                    spaced = c.fetchall()
                server_sees_or = glued == spaced
            except pymysql.MySQLError:
                server_sees_or = False
            if server_sees_or and d.get("decision") == "route":
                bad.append("%r: the server reads an OR the analyzer missed" % f)
    finally:
        conn.close()
    assert not bad, "\n".join(bad)


# ------------------------------------------------------ issue 8 attacks
#
# One statement per lexical/grammar class that an analyzer reading tokens
# differently from MariaDB routed to user 42 (or 1) while the server read
# every user's rows. Each must now be refused, and each must really leak
# on the server (the differential check flags it when it is run as if it
# had been routed), so the test fails if either side stops holding.

ISSUE8_LEAKS = [
    # (b) a word after a qualifier dot is a column
    ("SELECT id FROM orders o WHERE userid = 42 AND o.ORDER = 1 OR 1 = 1", 42),
    ("SELECT id FROM orders t WHERE userid = 42 AND t.CASE = 1 OR 1 = 1", 42),
    ("SELECT id FROM orders t WHERE userid = 42 AND t.HAVING = 1 OR 1 = 1", 42),
    ("SELECT id FROM orders t WHERE userid = 42 AND t .LOCK = 1 OR 1 = 1", 42),
    ("UPDATE orders t SET note = 'w' WHERE userid = 42 AND t.WHERE = 1 OR 1 = 1", 42),
    ("DELETE FROM orders WHERE userid = 42 AND orders.LIMIT = 1 OR 1 = 1", 42),
    # (c) END is a column: it does not close the CASE
    ("SELECT id FROM orders WHERE CASE WHEN end THEN 1 ELSE 0 AND userid = 42 AND 1 END", 42),
    # (d) a version with a leading zero is still a MySQL 5.7 version
    ("SELECT id FROM orders WHERE /*!050700 userid = 42 AND */ 1 = 1", 42),
    # (e) both ANDs belong to the BETWEENs
    ("SELECT id FROM orders WHERE 1 BETWEEN 0 BETWEEN 0 AND 1 AND userid = 1", 1),
    # (f) the server compares another value than the routed key
    ("SELECT id FROM orders WHERE userid = _utf16'42'", 42),
    ("SELECT id FROM orders WHERE userid = _utf32'42'", 42),
    # (f) _foo '42' is column _foo (43 in every row) with alias '42'
    ("INSERT INTO orders (userid, id, note) SELECT _foo '42', id + 100, note FROM items"
     " WHERE userid = 42", 42),
]

ISSUE8_REFUSED = [
    "SELECT * FROM orders WHERE userid = 42 OR.5", "SELECT * FROM orders WHERE userid = 42 AND1 OR 1",
    "SELECT * FROM orders WHERE userid = 42 AND 0x1fOR 1", "SELECT * FROM orders WHERE userid = 42 AND 1e+OR 1",
    "SELECT * FROM orders WHERE userid = 42 AND .1OR 1", "SELECT * FROM orders WHERE userid = 42 AND 1.OR 1",
    "SELECT * FROM orders WHERE userid = _filename'42'", "SELECT * FROM orders WHERE userid = _swe7'42'",
    "SELECT * FROM orders WHERE userid = _ucs2'42'", "SELECT * FROM orders WHERE userid = _utf16le'42'",
    "SELECT `LOAD_FILE`('/etc/hostname') FROM orders WHERE userid = 42",
    "SELECT app.`LOAD_FILE`('/etc/hostname')",
]


def test_issue8_attacks_refused_and_real():
    stmts = [s for s, _ in ISSUE8_LEAKS]
    decisions = cluster.explain(stmts + ISSUE8_REFUSED)
    routed_bad = ["%s -> %r" % (s, d) for s, d in zip(stmts + ISSUE8_REFUSED, decisions)
                  if d.get("decision") != "reject"]
    assert not routed_bad, "attack statements not refused:\n" + "\n".join(routed_bad)
    conn = connect()
    not_real = []
    try:
        # MariaDB resolves a `quoted` name to the same native function
        with conn.cursor() as c:
            c.execute("SELECT `GET_LOCK`('sw_issue8', 0), `is_used_lock` ('sw_issue8') IS NOT NULL,"
                      " `RELEASE_LOCK`('sw_issue8')")
            assert c.fetchone() == (1, 1, 1)
        for sql, user in ISSUE8_LEAKS:
            kind = "insert" if sql.startswith("INSERT") else (
                "update" if sql.startswith(("UPDATE", "DELETE")) else "select")
            item = [(sql, user, {"stmt": kind})]
            found = check_writes(conn, item) if kind != "select" else check_reads(conn, item)
            if not found:
                not_real.append(sql)
    finally:
        conn.close()
    assert not not_real, "attacks the server confines anyway (test no longer meaningful):\n" + \
        "\n".join(not_real)


def test_issue8_variants_confined():
    """Accepted spellings next to each attack class: whatever the analyzer
    routes reads and changes only the routed user's rows."""
    stmts = [
        "SELECT id FROM orders o WHERE o.userid = 42 AND o.ORDER = 1 AND o.where = 1 ORDER BY o.limit",
        "SELECT id FROM orders WHERE CASE WHEN end THEN 0 ELSE 1 END AND userid = 42",
        "SELECT id FROM orders WHERE id BETWEEN 1 AND 5 AND userid = 42",
        "SELECT id FROM orders WHERE a NOT BETWEEN 5 AND 9 AND userid = 42 AND b BETWEEN 0 AND 3",
        "SELECT id FROM orders WHERE /*!05000 userid = 42 AND */ 1 = 1",
        "SELECT id FROM orders WHERE /*M!050700 userid = 42 AND */ 1 = 1",
        "SELECT id FROM orders WHERE userid = _latin1'42'", "SELECT id FROM orders WHERE userid = _ascii'42'",
        "SELECT id FROM orders WHERE userid = 42 AND 1.5e1AND 1",
        "SELECT id FROM orders WHERE userid = 42 AND a = .5AND b = 1.AND c = 1e1",
        "SELECT id FROM orders o WHERE o.userid = 42 AND o.5e1 = 1",
        "SELECT _foo 'x' FROM orders WHERE userid = 42",
        "SELECT id FROM orders WHERE userid = 42 XOR userid = 42",
        "SELECT id FROM orders WHERE NOT a = 1 AND userid = 42 AND NOT NOT b",
        "UPDATE orders t SET note = 'w' WHERE t.userid = 42 AND t.WHERE = 1",
        "DELETE FROM orders WHERE userid = 42 AND orders.LIMIT = 1 AND end = 1",
    ]
    items = []
    for sql, d in zip(stmts, cluster.explain(stmts)):
        assert d.get("decision") == "route", "%s -> %r" % (sql, d)
        items.append((sql, int(d["key"]), d))
    conn = connect()
    try:
        errors = [s for s, _, _ in items if run(conn, s)[0] == "error"]
        assert not errors, "variants the server refuses: %r" % errors
        failures = check_reads(conn, items) + check_writes(conn, items)
    finally:
        conn.close()
    assert not failures, "\n".join(failures)


if __name__ == "__main__":
    failed = 0
    setup_module()
    try:
        for name in [n for n in list(globals()) if n.startswith("test_")]:
            try:
                globals()[name]()
                print("PASS", name)
            except AssertionError as e:
                failed += 1
                print("FAIL", name, e)
    finally:
        teardown_module()
        cluster.cleanup()
    sys.exit(1 if failed else 0)

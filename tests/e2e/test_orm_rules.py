"""
tests/e2e/test_orm_rules.py - issue 12's rules for ORM apps, through the
real router on two real MariaDB shards: self-assignments of the key in
whole-row UPDATEs and upserts, sql_mode PIPES_AS_CONCAT followed per
session, catalogue (information_schema) queries about the app database,
tenant-scoped sessions and implicit transactions with autocommit off.

Every refused statement that matters is first run directly on a shard,
where it must be valid: the refusal is of a statement MariaDB would run.
"""

import pymysql

import cluster

C = None
A, B = None, None     # two users on different shards
A2 = None             # another user on A's shard, for the scoping tests


def setup_module():
    global C, A, B, A2
    C = cluster.Cluster(2)
    C.create_schema([
        "CREATE TABLE notes (userid BIGINT NOT NULL, id BIGINT NOT NULL, title VARCHAR(50), "
        "n INT NOT NULL DEFAULT 0, PRIMARY KEY (userid, id))",
        "CREATE TABLE tags (userid BIGINT NOT NULL, id BIGINT NOT NULL, note_id BIGINT, "
        "name VARCHAR(50), PRIMARY KEY (userid, id))",
    ])
    users = list(range(1, 40))
    shards = C.shards_of(users)
    A = users[0]
    B = next(u for u, s in zip(users, shards) if s != shards[0])
    A2 = next(u for u, s in zip(users[1:], shards[1:]) if s == shards[0])
    for name, db in C.shards.items():
        mine = [u for u, s in zip(users, shards) if s == name]
        db.sql("INSERT INTO notes (userid, id, title, n) VALUES " +
               ", ".join("(%d, %d, 'u%d-%d', 0)" % (u, i, u, i) for u in mine for i in (1, 2, 3)))
        db.sql("INSERT INTO tags (userid, id, note_id, name) VALUES " +
               ", ".join("(%d, %d, %d, 't%d')" % (u, i, i, i) for u in mine for i in (1, 2, 3)))


def teardown_module():
    if C:
        C.stop()


def conn(**kw):
    return C.router.connect(**kw)


def q(c, sql, params=None):
    with c.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def errno_of(c, sql, params=None):
    try:
        q(c, sql, params)
        return None
    except pymysql.MySQLError as e:
        return e.args[0]


def valid_on_server(sql):
    """<sql> is understood by a shard directly (run in a rolled-back
    transaction: a duplicate key or the like is fine, a syntax error or an
    unknown column is not)."""
    c = C.shards["s0"].connect()
    try:
        c.begin()
        try:
            q(c, sql)
        except pymysql.MySQLError as e:
            assert e.args[0] not in (1064, 1054, 1146, 1149), (sql, e)
        c.rollback()
    finally:
        c.close()


def all_rows():
    out = {}
    for db in C.shards.values():
        for r in db.sql("SELECT userid, id, title, n FROM notes ORDER BY userid, id"):
            out[(r[0], r[1])] = r[2:]
    return out


# ------------------------------------------------ self-assignments of the key

def test_update_assigns_own_key():
    c = conn()
    try:
        before = all_rows()
        q(c, "UPDATE notes SET userid = %d, title = 'edited', n = 5 WHERE userid = %d AND id = 2"
          % (A, A))
        after = all_rows()
        assert after[(A, 2)] == ("edited", 5)
        del before[(A, 2)], after[(A, 2)]
        assert before == after
        for sql in ("UPDATE notes SET userid = %d WHERE userid = %d" % (B, A),
                    "UPDATE notes SET userid = userid + 0 WHERE userid = %d" % A,
                    "UPDATE notes SET userid = %d WHERE id = 2" % A):
            valid_on_server(sql)
            assert errno_of(c, sql) == 1235, sql
    finally:
        c.close()


def test_upsert_assigns_own_key():
    c = conn()
    try:
        for i, odku in enumerate(("userid = VALUES(userid), n = n + 1",
                                  "userid = VALUE(userid), n = n + 1",
                                  "userid = userid, n = n + 1",
                                  "notes.userid = VALUES(notes.userid), n = n + 1",
                                  "userid = %d, n = n + 1" % A)):
            q(c, "INSERT INTO notes (userid, id, title) VALUES (%d, 3, 'x'), (%d, 100, 'new') "
                 "ON DUPLICATE KEY UPDATE %s" % (A, A, odku))
            assert q(c, "SELECT n FROM notes WHERE userid = %d AND id = 3" % A) == ((i + 1,),)
        for sql in ("INSERT INTO notes (userid, id) VALUES (%d, 3) ON DUPLICATE KEY UPDATE "
                    "userid = %d" % (A, B),
                    "INSERT INTO notes (userid, id) VALUES (%d, 3) ON DUPLICATE KEY UPDATE "
                    "userid = VALUES(id)" % A):
            valid_on_server(sql)
            assert errno_of(c, sql) == 1235, sql
    finally:
        c.close()


# ------------------------------------------------ catalogue queries

def test_catalogue_of_app_database():
    C.shards["s0"].sql("CREATE DATABASE IF NOT EXISTS other", database=None)
    C.shards["s0"].sql("CREATE TABLE IF NOT EXISTS other.secrets (x INT)", database=None)
    c = conn()
    try:
        names = [r[0] for r in q(c, "SELECT TABLE_NAME FROM information_schema.TABLES "
                                    "WHERE TABLE_SCHEMA = 'app' AND TABLE_TYPE = 'BASE TABLE' "
                                    "ORDER BY TABLE_NAME")]
        assert names == ["notes", "tags"], names
        # Knex hasTable, TypeORM's parenthesised form, a join Doctrine sends
        assert len(q(c, "select * from information_schema.tables where table_name = 'notes' "
                        "and table_schema = database()")) == 1
        cols = q(c, "SELECT COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS WHERE "
                    "(TABLE_SCHEMA = 'app' AND TABLE_NAME = 'notes') ORDER BY ORDINAL_POSITION")
        assert [r[0] for r in cols] == ["userid", "id", "title", "n"]
        pk = q(c, "SELECT s.COLUMN_NAME FROM information_schema.STATISTICS s WHERE "
                  "s.TABLE_SCHEMA = DATABASE() AND s.TABLE_NAME = 'tags' AND "
                  "s.INDEX_NAME = 'PRIMARY' ORDER BY s.SEQ_IN_INDEX")
        assert [r[0] for r in pk] == ["userid", "id"]
        assert q(c, "SELECT t.ENGINE, ccsa.CHARACTER_SET_NAME FROM information_schema.TABLES t "
                    "INNER JOIN information_schema.COLLATION_CHARACTER_SET_APPLICABILITY ccsa "
                    "ON ccsa.COLLATION_NAME = t.TABLE_COLLATION WHERE t.TABLE_TYPE = "
                    "'BASE TABLE' AND t.TABLE_SCHEMA = 'app' AND t.TABLE_NAME = 'notes'")
        assert len(q(c, "SHOW FULL COLUMNS FROM notes")) == 4
        for sql in ("SELECT TABLE_NAME FROM information_schema.TABLES",
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'other'",
                    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' "
                    "OR TABLE_SCHEMA = 'other'",
                    "SELECT * FROM information_schema.PROCESSLIST",
                    "SELECT * FROM information_schema.GLOBAL_STATUS",
                    "SELECT * FROM information_schema.TABLES t JOIN notes n "
                    "WHERE t.TABLE_SCHEMA = 'app' AND n.userid = 1"):
            valid_on_server(sql)
            assert errno_of(c, sql) == 1235, sql
    finally:
        c.close()


# ------------------------------------------------ sql_mode PIPES_AS_CONCAT

def test_pipes_as_concat_followed():
    c = conn()
    try:
        # peewee's connect-time statement; then || concatenates, on the shard too
        q(c, "SET sql_mode = 'PIPES_AS_CONCAT'")
        assert q(c, "SELECT title || '!' FROM notes WHERE userid = %d AND id = 1" % A) == \
            (("u%d-1!" % A,),)
        # read as the server reads it: || binds tighter than =, so this key
        # term compares userid with a concatenation and limits nothing
        assert errno_of(c, "SELECT id FROM notes WHERE userid = %d || id = 1" % A) == 1235
        # and after a switch back, || is OR again (and refused as one)
        q(c, "SET sql_mode = CONCAT(REPLACE(@@sql_mode, 'PIPES_AS_CONCAT', ''), ',STRICT_TRANS_TABLES')")
        assert errno_of(c, "SELECT id FROM notes WHERE userid = %d || id = 1" % A) == 1235
        assert q(c, "SELECT 'a' || 'b'") == ((0,),)
        for sql in ("SET sql_mode = 'ANSI_QUOTES'", "SET sql_mode = CONCAT(@@sql_mode, 'PIPES_AS_CONCAT')"):
            assert errno_of(c, sql) == 1235, sql
    finally:
        c.close()


# ------------------------------------------------ tenant-scoped sessions

def test_scoped_session_rewrites():
    c = conn()
    try:
        before = all_rows()
        q(c, "SET @shardwire_user = %d" % A2)
        # by primary key only, as ORMs address loaded rows
        assert q(c, "SELECT title FROM notes WHERE id = 2") == (("u%d-2" % A2,),)
        assert q(c, "SELECT count(*) FROM notes") == ((3,),)
        q(c, "UPDATE notes SET userid = %d, title = 'saved' WHERE id = 1" % A2)
        assert q(c, "SELECT n.title, t.name FROM notes n LEFT JOIN tags t ON t.note_id = n.id "
                    "WHERE n.id = 1") == (("saved", "t1"),)
        q(c, "DELETE FROM tags WHERE note_id = 3")
        q(c, "INSERT INTO notes (userid, id, title) VALUES (%d, 50, 'new')" % A2)
        # another user: refused, whatever the form
        for sql in ("SELECT * FROM notes WHERE userid = %d" % B,
                    "INSERT INTO notes (userid, id, title) VALUES (%d, 51, 'x')" % B,
                    "SELECT * FROM notes NATURAL JOIN tags"):
            assert errno_of(c, sql) == 1235, sql
        # a leading comment for another user than the session's: refused
        assert errno_of(c, "/* shardwire:user=%d */ SELECT title FROM notes WHERE id = 2" % B) \
            == 1235
        assert q(c, "/* shardwire:user=%d */ SELECT title FROM notes WHERE id = 2" % A2) == \
            (("u%d-2" % A2,),)
        after = all_rows()
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        assert changed == {(A2, 1), (A2, 50)}, changed
        # the session can switch users; NULL ends the scope
        q(c, "SET @shardwire_user = '%d'" % B)
        assert q(c, "SELECT count(*) FROM notes") == ((3,),)
        q(c, "SET @shardwire_user = NULL")
        assert errno_of(c, "SELECT count(*) FROM notes") == 1235
        # a comment scopes one statement
        assert q(c, "/* shardwire:user=%d */ SELECT title FROM notes WHERE id = 2" % B) == \
            (("u%d-2" % B,),)
        # a transaction scope ends with the transaction
        q(c, "BEGIN")
        q(c, "SET @shardwire_txn_user = %d" % A2)
        assert q(c, "SELECT count(*) FROM tags") == ((2,),)
        q(c, "COMMIT")
        assert errno_of(c, "SELECT count(*) FROM tags") == 1235
    finally:
        c.close()


def row_str(row):
    """The first column of a one-column binary row (a NULL bitmap of one
    byte), a short string."""
    return row[3:3 + row[2]].decode()


def test_scoped_prepared_statements():
    """Prepared on a scoped session (Sequelize, PDO, Connector/J with server
    prepares): a statement without the key is rewritten at PREPARE with the
    user as a literal; a '?' where the key goes must bind the session's user
    at every EXECUTE (another user on the same shard, another shard, NULL,
    long data: refused); a statement executed under a new scope is read
    again for it. Only the scoped user's rows change."""
    from rawclient import RawClient, err_of
    before = all_rows()
    raw = RawClient(C.router.port)

    def run(sid, values, **kw):
        raw.execute(sid, values, **kw)
        res = raw.read_binary_result()
        got = err_of(res[1]) if res[0] == "err" else \
            (res[0], [row_str(r) for r in res[1]]) if res[0] in ("rows", "cursor") else res[0]
        print("execute", sid, values, "->", got)
        return got

    def refused(sid, values, text, **kw):
        got = run(sid, values, **kw)
        assert got[0] == 1235 and text in got[1], (values, got)

    def sql(text):
        raw.query(text)
        assert raw.read_result()[0] == "ok", text

    try:
        assert raw.login(cluster.APP_USER, cluster.APP_PASSWORD, cluster.APP_DB)[0] == 0
        sql("SET @shardwire_user = %d" % A2)
        by_id, _, _ = raw.prepare("SELECT title FROM notes WHERE id = ?")
        by_key, _, _ = raw.prepare("SELECT title FROM notes WHERE userid = ? AND id = ?")
        ins, _, _ = raw.prepare("INSERT INTO notes (userid, id, title) VALUES (?, ?, ?)")
        bump, _, _ = raw.prepare("UPDATE notes SET n = n + 1 WHERE id = ?")
        assert run(by_id, [2]) == ("rows", ["u%d-2" % A2])
        assert run(by_key, [A2, 2]) == ("rows", ["u%d-2" % A2])
        assert run(by_key, [A2, 2], send_types=False) == ("rows", ["u%d-2" % A2])
        assert run(by_key, [str(A2), 2]) == ("rows", ["u%d-2" % A2])     # PDO: strings
        assert run(by_key, [float(A2), 2]) == ("rows", ["u%d-2" % A2])   # mysql2: DOUBLE
        other = "names another user"
        refused(by_key, [A, 2], other)          # A lives on A2's shard
        refused(by_key, [B, 2], other)
        refused(by_key, [None, 2], "NULL")
        assert run(ins, [A2, 60, "p"]) == "ok"
        refused(ins, [A, 61, "x"], other)
        refused(ins, [B, 61, "x"], other)
        assert run(bump, [1]) == "ok"        # A's note 1 on the same shard: untouched
        # long data on the key parameter, and a RESET after it
        raw.send_long_data(by_key, 0, str(A2).encode())
        refused(by_key, [b"", 2], "long data", long_params=(0,))
        raw.command(0x1a, by_key.to_bytes(4, "little"))
        assert raw.read_result()[0] == "ok"
        assert run(by_key, [A2, 2]) == ("rows", ["u%d-2" % A2])
        # a cursor reads the scoped user's rows only
        raw.execute(by_id, [3], flags=1)
        assert raw.read_binary_result()[0] == "cursor"
        kind, rows, _ = raw.fetch(by_id, 10)
        assert kind == "rows" and [row_str(r) for r in rows] == ["u%d-3" % A2], rows
        raw.command(0x1a, by_id.to_bytes(4, "little"))     # closes the cursor
        assert raw.read_result()[0] == "ok"
        # a new scope: the same statements read again for the new user
        sql("SET @shardwire_user = %d" % B)
        assert run(by_id, [2]) == ("rows", ["u%d-2" % B])
        refused(by_key, [A2, 2], other)
        assert run(by_key, [B, 2]) == ("rows", ["u%d-2" % B])
        lit, _, _ = raw.prepare("SELECT title FROM notes WHERE userid = %d AND id = 2" % B)
        assert run(lit, []) == ("rows", ["u%d-2" % B])
        sql("SET @shardwire_user = %d" % A2)
        refused(lit, [], "another user")
        assert run(by_id, [2]) == ("rows", ["u%d-2" % A2])
        # the scope ends: nothing is limited any more, so nothing runs
        sql("SET @shardwire_user = NULL")
        assert run(by_id, [2])[0] == 1235
        # a statement's own comment scopes it where the session names no
        # user, and on a session scoped to its user; on one scoped to
        # another user it is refused
        com, _, _ = raw.prepare("/* shardwire:user=%d */ SELECT title FROM notes WHERE id = ?" % B)
        assert run(com, [2]) == ("rows", ["u%d-2" % B])
        sql("SET @shardwire_user = %d" % A2)
        refused(com, [2], "scope comment names another user")
        try:
            raw.prepare("/* shardwire:user=%d */ SELECT title FROM notes WHERE id = ?" % B)
            raise AssertionError("prepared a comment for another user than the session's")
        except RuntimeError as e:
            assert e.args[0] == 1235 and "scope comment" in e.args[1], e.args
        sql("SET @shardwire_user = %d" % B)
        assert run(com, [2]) == ("rows", ["u%d-2" % B])
        refused(raw.prepare("/* shardwire:user=%d */ SELECT title FROM notes WHERE "
                            "userid = ?" % B)[0], [A2], other)
        # a transaction's scope, then none after COMMIT
        sql("SET @shardwire_user = NULL")
        sql("BEGIN")
        sql("SET @shardwire_txn_user = %d" % A2)
        assert run(by_id, [3]) == ("rows", ["u%d-3" % A2])
        sql("COMMIT")
        assert run(by_id, [3])[0] == 1235
    finally:
        raw.close()
    after = all_rows()
    changed = {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
               if before.get(k) != after.get(k)}
    assert set(changed) == {(A2, 1), (A2, 60)}, changed
    assert changed[(A2, 1)][1][1] == changed[(A2, 1)][0][1] + 1
    assert changed[(A2, 60)] == (None, ("p", 0))


PDO_SCOPE = r"""<?php
[$host, $port, $user, $pw, $dbname, $a, $b] = array_slice($argv, 1);
$db = new PDO("mysql:host=$host;port=$port;dbname=$dbname", $user, $pw,
              [PDO::ATTR_EMULATE_PREPARES => false, PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$scope = $db->prepare('SET @shardwire_user = ?');
$q = null;
foreach ([$a, $b, null] as $u) {
    $scope->execute([$u]);
    $q = $q ?? $db->prepare('SELECT title FROM notes WHERE id = ?');   /* needs a scope */
    try {
        $q->execute([2]);
        echo $q->fetchColumn(), "\n";
    } catch (PDOException $e) {
        echo $e->errorInfo[1], "\n";
    }
}
$lit = $db->prepare("SET @shardwire_user = $a");
$lit->execute();
$q->execute([2]);
echo $q->fetchColumn(), "\n";
"""


def test_scope_set_as_a_prepared_statement():
    """Drivers that prepare everything (PDO without emulated prepares) send
    SET @shardwire_user = ? prepared: the router answers the PREPARE and
    applies the value bound at each EXECUTE (NULL ends the scope); NULL,
    long data or a non-key for it never scopes to anyone else."""
    import os
    import subprocess
    import tempfile
    import test_compat as compat
    from rawclient import RawClient, err_of
    php = compat.php("pdo.php")[0]
    with tempfile.NamedTemporaryFile("w", suffix=".php", delete=False) as f:
        f.write(PDO_SCOPE)
    try:
        r = subprocess.run([php, f.name, C.router.host, str(C.router.port), cluster.APP_USER,
                            cluster.APP_PASSWORD, cluster.APP_DB, str(A), str(B)],
                           capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(f.name)
    assert r.returncode == 0, r.stdout + r.stderr
    title = {u: C.db_of(u).sql("SELECT title FROM notes WHERE userid = %s AND id = 2",
                               (u,))[0][0] for u in (A, B)}      # earlier tests edit some
    assert r.stdout.split() == [title[A], title[B], "1235", title[A]], (r.stdout, title)

    raw = RawClient(C.router.port)

    def run(sid, values, **kw):
        raw.execute(sid, values, **kw)
        res = raw.read_binary_result()
        return err_of(res[1]) if res[0] == "err" else \
            [row_str(x) for x in res[1]] if res[0] == "rows" else res[0]

    try:
        assert raw.login(cluster.APP_USER, cluster.APP_PASSWORD, cluster.APP_DB)[0] == 0
        scope, n, ncols = raw.prepare("SET @shardwire_user = ?")
        assert (n, ncols) == (1, 0)
        txn, _, _ = raw.prepare("SET @shardwire_txn_user = ?")
        assert run(scope, [A2]) == "ok"
        q, _, _ = raw.prepare("SELECT title FROM notes WHERE id = ?")
        assert run(q, [3]) == ["u%d-3" % A2]
        # not a key: refused, and the scope stays as it was
        for bad in (1.5, "12abc"):
            got = run(scope, [bad])
            assert got[0] == 1235 and "valid integer key" in got[1], got
        raw.send_long_data(scope, 0, str(B).encode())
        got = run(scope, [b""], long_params=(0,))
        assert got[0] == 1235 and "long data" in got[1], got
        assert run(q, [3]) == ["u%d-3" % A2]
        # the transaction's scope wins over the session's until COMMIT
        raw.query("BEGIN")
        assert raw.read_result()[0] == "ok"
        assert run(txn, [A]) == "ok"
        assert run(q, [3]) == ["u%d-3" % A]
        raw.query("COMMIT")
        assert raw.read_result()[0] == "ok"
        assert run(q, [3]) == ["u%d-3" % A2]
        assert run(scope, [None]) == "ok"
        assert run(q, [3])[0] == 1235
        raw.command(0x19, scope.to_bytes(4, "little"))     # CLOSE: no reply
        assert run(scope, [A])[0] == 1243
        # as a text query the '?' is a syntax error, as on a server
        raw.query("SET @shardwire_user = ?")
        kind, p = raw.read_result()
        assert kind == "err" and err_of(p)[0] == 1064, p
    finally:
        raw.close()


# ------------------------------------------------ implicit transactions

def test_autocommit_off_read_moves_shards():
    c = conn(autocommit=False)
    try:
        assert q(c, "SELECT count(*) FROM notes WHERE userid = %d" % A)[0][0] >= 3
        # only read so far: the next user's shard is fine
        assert q(c, "SELECT count(*) FROM notes WHERE userid = %d" % B) == ((3,),)
        q(c, "UPDATE notes SET n = n + 1 WHERE userid = %d AND id = 2" % B)
        # after a write the transaction stays where it is
        assert errno_of(c, "SELECT count(*) FROM notes WHERE userid = %d" % A) == 1235
        c.rollback()
        assert q(c, "SELECT n FROM notes WHERE userid = %d AND id = 2" % B) == ((0,),)
        # a locking read binds it too
        q(c, "SELECT * FROM notes WHERE userid = %d AND id = 2 FOR UPDATE" % A)
        assert errno_of(c, "SELECT count(*) FROM notes WHERE userid = %d" % B) == 1235
        c.rollback()
        # an explicit BEGIN keeps the old rule
        q(c, "BEGIN")
        q(c, "SELECT count(*) FROM notes WHERE userid = %d" % A)
        assert errno_of(c, "SELECT count(*) FROM notes WHERE userid = %d" % B) == 1235
        c.rollback()
    finally:
        c.close()


def test_explain_user_shows_rewrite():
    import json
    import subprocess
    r = subprocess.run([cluster.shardctl_path(), "explain", "--json", "--map", C.map_file,
                        "--database", "app", "--user", str(A),
                        "UPDATE notes SET title = 'x' WHERE id = 7",
                        "SELECT * FROM notes WHERE userid = %d" % B,
                        "INSERT INTO notes (userid, id, title) VALUES (?, ?, ?), (?, ?, ?)",
                        "UPDATE notes SET title = ? WHERE id = ?"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = [json.loads(l) for l in r.stdout.splitlines()]
    assert out[0]["rewritten"] == ("UPDATE notes SET title = 'x' WHERE (id = 7) AND "
                                   "notes.`userid` = %d " % A)
    assert out[0]["decision"] == "route" and out[0]["key"] == str(A)
    assert out[0]["shard"] == C.shard_of(A)
    assert out[1]["decision"] == "reject" and out[1]["errno"] == 1235
    # with '?'s, as prepared: the key '?'s are listed for the EXECUTE check
    assert out[2]["decision"] == "route" and out[2]["key"] == str(A)
    assert out[2]["checked_params"] == [0, 3] and "rewritten" not in out[2]
    assert out[3]["rewritten"] == ("UPDATE notes SET title = ? WHERE (id = ?) AND "
                                   "notes.`userid` = %d " % A)
    assert out[3]["key"] == str(A) and "checked_params" not in out[3]
    # --sql-mode: read as under that session sql_mode (|| a concatenation)
    concat = "SELECT * FROM notes WHERE userid = %d AND title = 'a' || 'b'" % A
    dec = []
    for mode in ([], ["--sql-mode", "PIPES_AS_CONCAT,STRICT_TRANS_TABLES"]):
        r = subprocess.run([cluster.shardctl_path(), "explain", "--json", "--map", C.map_file,
                            "--database", "app"] + mode + [concat],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        dec.append(json.loads(r.stdout)["decision"])
    assert dec == ["reject", "route"], dec
    valid_on_server(concat)
    r = subprocess.run([cluster.shardctl_path(), "explain", "--map", C.map_file, "--database",
                        "app", "--sql-mode", "ANSI_QUOTES", "SELECT 1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "ANSI_QUOTES" in r.stderr, (r.returncode, r.stderr)

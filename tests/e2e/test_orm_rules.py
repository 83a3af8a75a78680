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


def setup_module():
    global C, A, B
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

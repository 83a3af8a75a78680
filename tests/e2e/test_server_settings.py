"""
tests/e2e/test_server_settings.py - the router checks, on every new backend
connection, the server settings the analyzer's proof rests on (sql_mode,
client character set, lower_case_table_names, MariaDB 10.11, the type of the
shard key columns) and refuses to use a shard where one differs, with a
message naming it. Real MariaDB shards whose settings are changed with
SET GLOBAL / DDL, and the real router.
"""

import pymysql

import cluster

C = None
SCHEMA = ["CREATE TABLE accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL, "
          "name VARCHAR(100), PRIMARY KEY (userid, id))"]
USERS = {}          # shard name -> a userid it owns


def setup_module():
    global C
    C = cluster.Cluster(2, start_router=False)
    C.create_schema(SCHEMA)
    ids = list(range(1, 60))
    for u, s in zip(ids, C.shards_of(ids)):
        USERS.setdefault(s, u)
    assert set(USERS) == {"s0", "s1"}, USERS


def teardown_module():
    C.stop()


def select_user(shard):
    """Runs a routed SELECT for a user of <shard> through a new router
    connection; returns None on success or the MySQL error (errno, message)."""
    c = C.router.connect()
    try:
        with c.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM accounts WHERE userid = %s", (USERS[shard],))
            assert cur.fetchall() == ((0,),)
        return None
    except pymysql.err.MySQLError as e:
        return e.args
    finally:
        c.close()


def restart_router():
    """A fresh router, so that every backend connection is new."""
    if C.router:
        C.router.stop()
    C.start_router()


def test_sql_mode_changing_lexing_refused_then_accepted():
    default = C.shards["s0"].sql("SELECT @@GLOBAL.sql_mode")[0][0]
    for mode in ("ANSI_QUOTES", "PIPES_AS_CONCAT", "NO_BACKSLASH_ESCAPES",
                 "HIGH_NOT_PRECEDENCE", "IGNORE_SPACE", "ORACLE", "ANSI"):
        C.shards["s0"].sql("SET GLOBAL sql_mode = %s", (mode,))
        try:
            restart_router()
            err = select_user("s0")
            assert err is not None, "shard with sql_mode %s was used" % mode
            assert "sql_mode" in err[1] and "shard s0" in err[1], err
            # The other shard is unaffected.
            assert select_user("s1") is None
        finally:
            C.shards["s0"].sql("SET GLOBAL sql_mode = %s", (default,))
        # The next statement gets a new connection, which now passes.
        assert select_user("s0") is None
    assert "server settings refused" in C.router.log_tail(400) or \
        "sql_mode" in C.router.log_tail(400)


def test_safe_sql_modes_accepted():
    default = C.shards["s0"].sql("SELECT @@GLOBAL.sql_mode")[0][0]
    try:
        C.shards["s0"].sql("SET GLOBAL sql_mode = 'STRICT_ALL_TABLES,ONLY_FULL_GROUP_BY'")
        restart_router()
        assert select_user("s0") is None
        C.shards["s0"].sql("SET GLOBAL sql_mode = ''")
        restart_router()
        assert select_user("s0") is None
    finally:
        C.shards["s0"].sql("SET GLOBAL sql_mode = %s", (default,))


def test_init_connect_changing_charset_refused():
    """init_connect runs for the router's service account (not SUPER): a
    character set it switches to would make the server lex differently."""
    C.shards["s1"].sql("CREATE USER IF NOT EXISTS 'plain'@'%' IDENTIFIED BY 'pw'")
    C.shards["s1"].sql("GRANT ALL ON app.* TO 'plain'@'%'")
    C.shards["s0"].sql("CREATE USER IF NOT EXISTS 'plain'@'%' IDENTIFIED BY 'pw'")
    C.shards["s0"].sql("GRANT ALL ON app.* TO 'plain'@'%'")
    try:
        C.shards["s1"].sql("SET GLOBAL init_connect = 'SET NAMES latin1'")
        if C.router:
            C.router.stop()
        C.start_router({"backend_user": "plain", "backend_password": "pw"})
        assert select_user("s0") is None
        err = select_user("s1")
        assert err is not None and "character_set_client is 'latin1'" in err[1], err
    finally:
        C.shards["s1"].sql("SET GLOBAL init_connect = ''")
    assert select_user("s1") is None
    restart_router()


def test_key_column_of_wrong_type_refused():
    C.shards["s1"].sql("CREATE TABLE legacy (userid VARCHAR(20) NOT NULL, v INT)")
    try:
        restart_router()
        err = select_user("s1")
        assert err is not None, "shard with a VARCHAR key column was used"
        assert "legacy.userid varchar(20)" in err[1] and "integer type" in err[1], err
        assert select_user("s0") is None
    finally:
        C.shards["s1"].sql("DROP TABLE legacy")
    assert select_user("s1") is None

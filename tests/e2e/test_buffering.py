"""
tests/e2e/test_buffering.py - statements whose shard's master cannot be
reached are held, not failed (issue 10, buffering): one held while its
master is down goes to the new master the map names; one held past
failover_buffer_ms gets error 2003; one inside a transaction is never held.
Real MariaDB, the real router on a map file changed with SIGHUP.
"""

import signal
import socket
import threading
import time

import pymysql

import cluster

C = None
DEAD = None          # a port nobody listens on


def setup_module():
    global C, DEAD
    C = cluster.Cluster(1, start_router=False)
    C.create_schema(["CREATE TABLE t (userid BIGINT NOT NULL, id INT NOT NULL,"
                     " PRIMARY KEY (userid, id))"])
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    DEAD = s.getsockname()[1]
    s.close()                     # refused from now on


def teardown_module():
    C.stop()


def write_map(router, version, port):
    text = cluster.map_text([("s0", "127.0.0.1:%d" % port)]).replace("version 1",
                                                                    "version %d" % version)
    with open(router.map_path, "w") as f:
        f.write(text)


def start(buffer_ms):
    r = cluster.Router({"failover_buffer_ms": buffer_ms, "connect_timeout_ms": 500},
                       map_text=cluster.map_text([("s0", "127.0.0.1:%d" % DEAD)]))
    return r


def test_held_statement_goes_to_the_new_master():
    r = start(10000)
    try:
        out = {}

        def run():
            c = r.connect()
            try:
                with c.cursor() as cur:
                    cur.execute("INSERT INTO t (userid, id) VALUES (7, 1)")
                out["ok"] = time.monotonic()
            except pymysql.err.MySQLError as e:
                out["err"] = e.args
            finally:
                c.close()
        t0 = time.monotonic()
        th = threading.Thread(target=run)
        th.start()
        cluster.wait_for(lambda: "connect failed" in r.log_tail(50), 10, "the first attempt")
        assert "ok" not in out and "err" not in out          # held, not answered
        write_map(r, 2, C.shards["s0"].port)
        r.proc.send(signal.SIGHUP)
        th.join(15)
        assert "ok" in out, out
        assert out["ok"] - t0 < 8
        assert C.shards["s0"].sql("SELECT COUNT(*) FROM t WHERE userid = 7") == ((1,),)
    finally:
        r.stop()


def test_held_past_the_bound_gets_2003_and_transactions_are_not_held():
    r = start(1500)
    try:
        c = r.connect()
        t0 = time.monotonic()
        try:
            with c.cursor() as cur:
                cur.execute("SELECT * FROM t WHERE userid = 7")
            raise AssertionError("answered without a master")
        except pymysql.err.OperationalError as e:
            assert e.args[0] == 2003, e.args
        waited = time.monotonic() - t0
        assert 1.3 <= waited < 6, waited
        # The first statement of a transaction may be held (its deferred
        # BEGIN goes with it); once the transaction runs on a master it cannot
        # move: a statement after the master changed fails at once.
        write_map(r, 2, C.shards["s0"].port)
        r.proc.send(signal.SIGHUP)
        cluster.wait_for(lambda: "in use version=2" in r.log_tail(50), 10, "map version 2")
        with c.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("INSERT INTO t (userid, id) VALUES (7, 2)")
        write_map(r, 3, DEAD)
        r.proc.send(signal.SIGHUP)
        cluster.wait_for(lambda: "in use version=3" in r.log_tail(50), 10, "map version 3")
        t0 = time.monotonic()
        try:
            with c.cursor() as cur:
                cur.execute("SELECT * FROM t WHERE userid = 7")
            raise AssertionError("a transaction moved to another master")
        except pymysql.err.OperationalError as e:
            assert e.args[0] in (2003, 2013), e.args
        assert time.monotonic() - t0 < 1.2
        assert C.shards["s0"].sql("SELECT COUNT(*) FROM t WHERE userid = 7 AND id = 2") == ((0,),)
        c.close()
    finally:
        r.stop()

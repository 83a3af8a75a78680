"""
tests/e2e/test_logging.py - the router's log file (router/log.c): written by
a logging thread, and reopened by name on SIGUSR1 so that log rotation
(rename, then signal) needs no restart. No MariaDB needed: the lines come
from the router's own start and from client connections it handles itself.
"""

import os
import signal
import socket

import cluster


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def poke(router):
    """A client that connects and goes away: the router logs a session end."""
    with socket.create_connection(("127.0.0.1", router.port), timeout=5) as s:
        s.recv(4)


def test_sigusr1_reopens_the_log_file_after_rename():
    d = os.path.join(cluster.tmp_root(), "logging")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "router.log")
    r = cluster.Router({"log_file": path},
                       map_text=cluster.map_text([("s0", "127.0.0.1:1")]))
    try:
        cluster.wait_for(lambda: "start: shardwire" in read(path), 10, "start line in log_file",
                         log=r.log_tail)
        poke(r)
        cluster.wait_for(lambda: "session end" in read(path), 10, "session line in log_file")
        os.rename(path, path + ".1")
        r.kill(signal.SIGUSR1)
        cluster.wait_for(lambda: "log: reopened %s" % path in read(path), 10,
                         "reopened log file", log=lambda: read(path + ".1")[-2000:])
        poke(r)
        cluster.wait_for(lambda: "session end" in read(path), 10, "session line in the new file")
        old = read(path + ".1")
        assert "start: shardwire" in old and "log: reopened" not in old, old[-2000:]
        assert r.alive(), "SIGUSR1 must not stop the router"
        # a second rotation works the same way
        os.rename(path, path + ".2")
        r.kill(signal.SIGUSR1)
        cluster.wait_for(lambda: "log: reopened" in read(path), 10, "second reopen")
    finally:
        r.stop()
    # the shutdown lines were drained into the current file before exit
    assert "shutdown: done" in read(path), read(path)[-2000:]

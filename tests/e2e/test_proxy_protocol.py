"""
tests/e2e/test_proxy_protocol.py - PROXY protocol v1 and v2 on the app port
(issue 14): a real HAProxy in front (send-proxy and send-proxy-v2, from a
trusted source address) and the client's real address in the router's log;
LOCAL headers from the balancer itself; malformed, missing and oversized
headers refused with a MySQL error; a client outside the trusted networks
cannot claim an address. The router keeps serving throughout and exits
cleanly (leak-checked) with a connection still waiting for its header.

Trusted: 127.0.0.2 only. The harness and the direct clients connect from
127.0.0.1 and need no header.
"""

import json
import os
import re
import socket
import struct
import time
import urllib.request

import pymysql

import cluster

C = None
HAPROXY = None
P_V1 = P_V2 = None
LB_ADDR = "127.0.0.2"
SIG_V2 = b"\r\n\r\n\x00\r\nQUIT\n"
ADMIN = [None]      # the router's admin port


def setup_module():
    global C, HAPROXY, P_V1, P_V2
    if not os.access("/usr/sbin/haproxy", os.X_OK):
        raise cluster.HarnessError("/usr/sbin/haproxy not found (tools/deps.sh installs haproxy)")
    C = cluster.Cluster(1, start_router=False)
    C.create_schema(["CREATE TABLE t (userid BIGINT NOT NULL, v INT NOT NULL,"
                     " PRIMARY KEY (userid))"])
    ADMIN[0] = cluster.free_port()
    C.start_router({"proxy_protocol_networks": "10.255.0.0/16, %s" % LB_ADDR,
                    "handshake_timeout_ms": 1500, "admin_listen": ADMIN[0]})
    P_V1, P_V2 = cluster.free_port(), cluster.free_port()
    d = cluster._new_dir("haproxy")
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write("""global
    maxconn 200
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
listen v1
    bind 127.0.0.1:%d
    server r 127.0.0.1:%d send-proxy source %s
listen v2
    bind 127.0.0.1:%d
    server r 127.0.0.1:%d send-proxy-v2 source %s
""" % (P_V1, C.router.port, LB_ADDR, P_V2, C.router.port, LB_ADDR))
    HAPROXY = cluster.Proc(["/usr/sbin/haproxy", "-db", "-f", cfg], os.path.join(d, "log"))
    for p in (P_V1, P_V2):
        cluster.wait_for(lambda: _port_open(p), 10, "haproxy on %d" % p, proc=HAPROXY,
                         log=lambda: cluster.tail(os.path.join(d, "log")))


def teardown_module():
    if HAPROXY:
        HAPROXY.stop()
    C.stop()


def _port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _log():
    with open(C.router.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def _session_end_peer(local_port):
    """The peer= of the router's session-end line for a client whose
    address ends in :<local_port>, waited for."""
    pat = re.compile(r"session end id=\d+ peer=(\S+:%d) " % local_port)

    def find():
        m = pat.search(_log())
        return m.group(1) if m else None
    return cluster.wait_for(find, 10, "session end line for port %d" % local_port)


def _work(conn, userid):
    with conn.cursor() as cur:
        cur.execute("REPLACE INTO t (userid, v) VALUES (%d, %d)" % (userid, userid * 2))
        cur.execute("SELECT v FROM t WHERE userid = %d" % userid)
        assert cur.fetchall() == ((userid * 2,),)


def _through(port, userid):
    conn = pymysql.connect(host="127.0.0.1", port=port, user=cluster.APP_USER,
                           password=cluster.APP_PASSWORD, database=cluster.APP_DB,
                           autocommit=True, connect_timeout=10)
    local_port = conn._sock.getsockname()[1]
    _work(conn, userid)
    conn.close()
    return local_port


def test_haproxy_v1_and_v2_carry_the_client_address():
    for port, userid in ((P_V1, 11), (P_V2, 12)):
        local_port = _through(port, userid)
        # The session is logged under the client's own address, not the
        # balancer's (127.0.0.2).
        assert _session_end_peer(local_port) == "127.0.0.1:%d" % local_port


def _lb_socket():
    s = socket.socket()
    s.bind((LB_ADDR, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", C.router.port))
    return s


def _read_packet(s):
    hdr = b""
    while len(hdr) < 4:
        chunk = s.recv(4 - len(hdr))
        if not chunk:
            return None
        hdr += chunk
    n = hdr[0] | hdr[1] << 8 | hdr[2] << 16
    body = b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        if not chunk:
            return None
        body += chunk
    return body


def _expect_err(s, code, text):
    pkt = _read_packet(s)
    assert pkt is not None and pkt[0] == 0xFF, pkt
    assert struct.unpack("<H", pkt[1:3])[0] == code, pkt
    assert text in pkt.decode("utf-8", "replace"), pkt
    assert s.recv(1) == b""      # and closed


def _login_on(sock):
    conn = pymysql.connect(host="127.0.0.1", port=C.router.port, user=cluster.APP_USER,
                           password=cluster.APP_PASSWORD, database=cluster.APP_DB,
                           autocommit=True, defer_connect=True)
    conn.connect(sock)
    return conn


def test_raw_headers_from_the_balancer():
    # v1 by hand, an IPv6 client
    s = _lb_socket()
    s.sendall(b"PROXY TCP6 2001:db8::7 ::1 45678 3306\r\n")
    conn = _login_on(s)
    _work(conn, 21)
    conn.close()
    assert _session_end_peer(45678) == "[2001:db8::7]:45678"

    # v2 LOCAL (a balancer's own health check): the balancer's address
    s = _lb_socket()
    lb_port = s.getsockname()[1]
    s.sendall(SIG_V2 + bytes([0x20, 0x00, 0, 0]))
    conn = _login_on(s)
    _work(conn, 22)
    conn.close()
    assert _session_end_peer(lb_port) == "%s:%d" % (LB_ADDR, lb_port)

    # v2 with a TLV after the IPv4 addresses, sent one byte at a time
    body = socket.inet_aton("198.51.100.9") + socket.inet_aton("127.0.0.1") + \
        struct.pack(">HH", 40001, 3306) + b"\x02\x00\x03abc"
    s = _lb_socket()
    for b in SIG_V2 + bytes([0x21, 0x11]) + struct.pack(">H", len(body)) + body:
        s.sendall(bytes([b]))
    conn = _login_on(s)
    _work(conn, 23)
    conn.close()
    assert _session_end_peer(40001) == "198.51.100.9:40001"


def test_status_lists_the_client_by_its_real_address():
    """/status lists each client under the address its PROXY header gave,
    with its user and statement count, while the connection is open."""
    s = _lb_socket()
    s.sendall(b"PROXY TCP4 203.0.113.77 127.0.0.1 41234 3306\r\n")
    conn = _login_on(s)
    try:
        _work(conn, 31)
        body = urllib.request.urlopen("http://127.0.0.1:%d/status" % ADMIN[0], timeout=10).read()
        clients = json.loads(body)["clients"]
        mine = [c for c in clients["list"] if c["address"] == "203.0.113.77:41234"]
        assert len(mine) == 1, clients
        assert mine[0]["user"] == cluster.APP_USER and mine[0]["statements"] >= 2, mine
        assert not [c for c in clients["list"] if c["address"].startswith(LB_ADDR + ":")]
    finally:
        conn.close()


def test_bad_headers_are_refused():
    bad = [
        (b"GET / HTTP/1.0\r\n\r\n", "not a PROXY protocol header"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n", "bad port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "control character"),
        (b"PROXY TCP4 " + b"1" * 200, "longer than 107"),
        (SIG_V2 + bytes([0x21, 0x11, 0xff, 0xff]), "longer than 2064"),
        (SIG_V2 + bytes([0x31, 0x11, 0, 12]) + bytes(12), "version is not 2"),
    ]
    for data, why in bad:
        s = _lb_socket()
        s.sendall(data)
        _expect_err(s, 1043, why)
        s.close()
    # Nothing at all: refused after handshake_timeout_ms, not held forever.
    s = _lb_socket()
    t0 = time.monotonic()
    _expect_err(s, 1043, "expected a PROXY protocol header")
    assert 1.0 < time.monotonic() - t0 < 8.0
    s.close()
    assert "bad PROXY header from trusted peer=127.0.0.2:" in _log()
    # A balancer that closes before finishing its header costs nothing.
    s = _lb_socket()
    s.sendall(b"PROXY TCP4 1.2.")
    s.close()


def test_untrusted_client_cannot_claim_an_address():
    s = socket.create_connection(("127.0.0.1", C.router.port), timeout=10)
    greeting = _read_packet(s)
    assert greeting and greeting[0] == 10          # served at once, no header read
    s.sendall(b"PROXY TCP4 6.6.6.6 127.0.0.1 6666 3306\r\n")
    while s.recv(4096):
        pass
    s.close()
    assert "6.6.6.6" not in _log()


def test_router_serves_and_exits_cleanly_with_a_header_pending():
    conn = C.router.connect()
    _work(conn, 31)
    conn.close()
    pending = _lb_socket()                 # header never sent
    pending.sendall(b"PROXY TCP4 1.2.")
    time.sleep(0.2)
    C.router.stop()                        # exit status 0, no leak report
    _expect_err(pending, 1053, "shutdown in progress")
    pending.close()
    C.router = None

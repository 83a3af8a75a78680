"""
tests/e2e/test_admin.py - the admin HTTP listener (issue 14, first part):
/health for load balancers (200 while the router can serve; 503 with the
reason when draining after SIGTERM or when ZooKeeper has not confirmed the
map within map_lease_ms), /metrics in Prometheus text format, /status as
JSON, basic auth, and bad requests that never disturb the app port. Real
replicated MariaDB, a real ZooKeeper, the real router.
"""

import base64
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading

import pymysql

import cluster

C = None
ADMIN_PORT = None


def setup_module():
    global C, ADMIN_PORT
    C = cluster.Cluster(1, standbys=1, start_router=False)
    C.create_schema(["CREATE TABLE t (userid BIGINT NOT NULL, id INT NOT NULL,"
                     " PRIMARY KEY (userid, id))"])
    ADMIN_PORT = cluster.free_port()
    C.start_router({"admin_listen": ADMIN_PORT, "control_user": cluster.CONTROL_USER,
                    "control_password": cluster.CONTROL_PASSWORD,
                    "health_interval_ms": 200,
                    "rule": ['deny /NO_SUCH_TABLE_EVER/ "shardwire: refused by rule"']})


def teardown_module():
    C.stop()


def get(path, port=None, method="GET", headers=None, timeout=5):
    conn = http.client.HTTPConnection("127.0.0.1", port or ADMIN_PORT, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        conn.close()


def query(sql, router=None):
    c = (router or C.router).connect()
    try:
        with c.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        c.close()


METRIC_LINE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
                         r'-?[0-9.e+]+$')


def metrics():
    status, ctype, body = get("/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), (status, ctype)
    values = {}
    for line in body.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ .+$", line), line
            continue
        assert METRIC_LINE.match(line), "not Prometheus text format: %r" % line
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    return values


def rejected(m):
    return sum(v for k, v in m.items() if k.startswith("shardwire_statements_rejected_total{"))


def status():
    code, ctype, body = get("/status")
    assert code == 200 and ctype == "application/json", (code, body)
    return json.loads(body)


def delta(after, before, key):
    return after.get(key, 0) - before.get(key, 0)


def test_health_ok():
    assert get("/health") == (200, "text/plain; charset=utf-8", "ok\n")
    assert get("/health", method="HEAD")[0] == 200


def test_metrics_count_statements_and_show_servers():
    before = metrics()
    for i in range(5):
        query("INSERT INTO t (userid, id) VALUES (42, %d)" % i)
    try:
        query("SELECT * FROM t")
    except Exception:
        pass
    master = "127.0.0.1:%d" % C.shards["s0"].port
    sb = "127.0.0.1:%d" % C.standbys["s0"][0].port

    def seen():
        m = metrics()
        key = 'shardwire_server_up{shard="s0",role="standby",server="%s"}' % sb
        return m if m.get(key) == 1 else None
    after = cluster.wait_for(seen, 10, "standby up in /metrics")
    assert after["shardwire_statements_routed_total"] >= before["shardwire_statements_routed_total"] + 5
    assert rejected(after) >= rejected(before) + 1
    assert after["shardwire_map_version"] == 1 and after["shardwire_ready"] == 1
    assert after['shardwire_server_up{shard="s0",role="master",server="%s"}' % master] == 1
    assert after['shardwire_server_health{shard="s0",role="master",server="%s",verdict="up"}'
                 % master] == 1
    assert after['shardwire_server_lossless{shard="s0",role="master",server="%s"}' % master] == 1
    assert 'shardwire_replication_lag_seconds{shard="s0",role="standby",server="%s"}' % sb in after


def test_status_json():
    status, ctype, body = get("/status")
    assert status == 200 and ctype == "application/json"
    st = json.loads(body)
    assert st["ready"] is True and st["draining"] is False
    assert st["map"]["version"] == 1
    assert st["map"]["shards"][0]["name"] == "s0"
    assert st["map"]["shards"][0]["standbys"] == ["127.0.0.1:%d" % C.standbys["s0"][0].port]
    roles = sorted(h["role"] for h in st["health"])
    assert roles == ["master", "standby"], st["health"]
    assert st["stats"]["statements"] > 0


def test_status_does_not_wait_for_a_stuck_worker():
    # A worker that does not answer within 1 s is left out of /status (its
    # clients and load), never waited for; its late answer harms nothing.
    port = cluster.free_port()
    os.environ["SHARDWIRE_FAULT"] = "status_gather@1"
    try:
        r = cluster.Router({"map_file": C.map_file, "workers": 2, "admin_listen": port})
    finally:
        os.environ.pop("SHARDWIRE_FAULT", None)
    try:
        code, _, body = get("/status", port=port, timeout=10)
        st = json.loads(body)
        assert code == 200 and st["workers"] == 2 and st["workers_answered"] == 1, st
        assert query("SELECT COUNT(*) FROM t WHERE userid = 1", router=r)[0][0] >= 0
        cluster.wait_for(lambda: "fault: delay point=status_gather" in open(r.log_path, errors="replace").read(), 10,
                         "the delay logged")

        def both():
            return json.loads(get("/status", port=port)[2])["workers_answered"] == 2
        cluster.wait_for(both, 15, "both workers answering /status again", interval=0.5)
    finally:
        r.stop()


def test_bad_requests_get_http_errors_and_app_port_unaffected():
    assert get("/nope")[0] == 404
    assert get("/health", method="POST")[0] == 405
    assert get("/status?x=%zz")[0] in (200, 400)
    # Oversized headers.
    status = get("/health", headers={"X-Big": "a" * 20000})[0]
    assert status in (400, 413, 431), status
    # A slow client that never finishes its request, and garbage bytes.
    slow = socket.create_connection(("127.0.0.1", ADMIN_PORT))
    slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    junk = socket.create_connection(("127.0.0.1", ADMIN_PORT))
    junk.sendall(bytes(range(256)) * 4 + b"\r\n\r\n")
    try:
        assert get("/health")[0] == 200
        assert query("SELECT COUNT(*) FROM t WHERE userid = 42") == ((5,),)
    finally:
        slow.close()
        junk.close()
    assert C.router.alive()


def test_basic_auth():
    port = cluster.free_port()
    r = cluster.Router({"map_file": C.map_file, "admin_listen": "127.0.0.1:%d" % port,
                        "admin_user": "ops", "admin_password": "s3cret"})
    try:
        assert get("/health", port=port)[0] == 401
        bad = base64.b64encode(b"ops:wrong").decode()
        assert get("/metrics", port=port, headers={"Authorization": "Basic " + bad})[0] == 401
        good = base64.b64encode(b"ops:s3cret").decode()
        assert get("/health", port=port, headers={"Authorization": "Basic " + good})[0] == 200
    finally:
        r.stop()


def test_health_503_when_zookeeper_silent_past_the_lease():
    zk = cluster.ZooKeeper()
    port = cluster.free_port()
    try:
        subprocess.run([cluster.shardctl_path(), "--zk", zk.hosts, "init", "--acl", "open", "--shard",
                        "s0=127.0.0.1:%d" % C.shards["s0"].port], check=True,
                       capture_output=True, timeout=60)
        r = cluster.Router({"zookeeper": zk.hosts, "router_id": "lease",
                            "admin_listen": port, "map_lease_ms": 1500,
                            "map_cache": os.path.join(cluster.tmp_root(), "lease.cache")})
        try:
            assert get("/health", port=port)[0] == 200
            # shardctl top finds the router by its registration (admin=).
            top = subprocess.run([cluster.shardctl_path(), "--zk", zk.hosts, "top", "--interval",
                                  "0.2", "--json"], capture_output=True, text=True, timeout=30)
            assert top.returncode == 0, top.stderr
            assert json.loads(top.stdout)["routers"] == [
                {"admin": "127.0.0.1:%d" % port, "answered": True}], top.stdout
            zk.stop()
            cluster.wait_for(lambda: get("/health", port=port)[0] == 503, 15,
                             "/health 503 with ZooKeeper down")
            body = get("/health", port=port)[2]
            assert "not confirmed by ZooKeeper" in body, body
            # Statements are still served from the last good map.
            assert query("SELECT COUNT(*) FROM t WHERE userid = 42", router=r) == ((5,),)
            zk.start()
            cluster.wait_for(lambda: get("/health", port=port)[0] == 200, 30,
                             "/health 200 again with ZooKeeper back")
        finally:
            r.stop()
    finally:
        zk.stop()


def test_metrics_move_with_traffic():
    """The counters follow real traffic on one connection: every routed
    statement is one latency sample of its shard and is counted by command
    and result; a statement refused with 1235 counts once as error 1235
    (origin router) and as rejected by the analyzer; bytes and rows grow;
    the client is listed in /status with its address, user and counts; the
    load lands in the per-vbucket table and the top users."""
    conn = C.router.connect()
    try:
        local = "127.0.0.1:%d" % conn._sock.getsockname()[1]
        before, st0 = metrics(), status()
        with conn.cursor() as cur:
            for i in range(10):
                cur.execute("INSERT INTO t (userid, id) VALUES (77, %d)" % i)
            for _ in range(5):
                cur.execute("SELECT id FROM t WHERE userid = 77")
                assert len(cur.fetchall()) == 10
            for sql, code in (("SELECT * FROM t", 1235),
                              ("SELECT * FROM NO_SUCH_TABLE_EVER WHERE userid = 1", 1227)):
                try:
                    cur.execute(sql)
                    raise AssertionError("routed: %s" % sql)
                except pymysql.err.MySQLError as e:
                    assert e.args[0] == code, (sql, e.args)
        after, st1 = metrics(), status()
        lat = 'shardwire_shard_latency_seconds_count{shard="s0"}'
        assert delta(after, before, "shardwire_statements_routed_total") == 15
        assert delta(after, before, lat) == 15
        assert delta(after, before, 'shardwire_shard_latency_seconds_bucket{shard="s0",le="+Inf"}') == 15
        assert delta(after, before, 'shardwire_shard_statements_total{shard="s0"}') == 15
        assert delta(after, before, 'shardwire_statements_total{command="query",result="ok"}') == 15
        assert delta(after, before, 'shardwire_statements_total{command="query",result="rejected"}') == 2
        assert delta(after, before, 'shardwire_errors_total{code="1235",origin="router"}') == 1
        assert delta(after, before, 'shardwire_statements_rejected_total{reason="analyzer"}') == 1
        assert delta(after, before, 'shardwire_shard_rows_total{shard="s0"}') == 50
        assert delta(after, before, 'shardwire_rule_hits_total{rule="1",action="deny",'
                     'pattern="NO_SUCH_TABLE_EVER"}') == 1
        assert delta(after, before, 'shardwire_statements_rejected_total{reason="rule"}') == 1
        assert delta(after, before, 'shardwire_errors_total{code="1227",origin="router"}') == 1
        assert delta(after, before, 'shardwire_backend_sent_bytes_total{shard="s0"}') > 15 * 30
        assert delta(after, before, 'shardwire_backend_received_bytes_total{shard="s0"}') > 50 * 5
        assert after['shardwire_shard_latency_seconds_sum{shard="s0"}'] > \
            before.get('shardwire_shard_latency_seconds_sum{shard="s0"}', 0)
        assert after['shardwire_client_sessions{state="idle"}'] >= 1
        assert after['shardwire_backend_connections{shard="s0",state="open"}'] >= 1
        assert after['shardwire_zookeeper_state{state="none"}'] == 1     # a map file
        assert after["shardwire_map_lease_valid"] == 1

        mine = [c for c in st1["clients"]["list"] if c["address"] == local]
        assert len(mine) == 1, (local, st1["clients"])
        me = mine[0]
        assert me["user"] == cluster.APP_USER and me["state"] == "idle", me
        assert me["statements"] >= 17 and me["bytes_out"] > 0 and me["bytes_in"] > 0, me
        assert me["age_s"] >= 0
        assert st1["clients"]["total"] >= 1 and st1["workers_answered"] == st1["workers"]
        vb = lambda st: sum(v[2] for v in st["vbucket_load"])
        assert vb(st1) - vb(st0) == 15
        rows = lambda st: sum(v[3] for v in st["vbucket_load"])
        assert rows(st1) - rows(st0) == 50
        users = {u["user"]: u for u in st1["top_users"]}
        assert users[cluster.APP_USER]["statements"] >= 16, st1["top_users"]
    finally:
        conn.close()


def test_shardctl_top_shows_the_hot_vbucket_and_user():
    stop = threading.Event()

    def load():
        c = C.router.connect()
        try:
            with c.cursor() as cur:
                while not stop.is_set():
                    cur.execute("SELECT id FROM t WHERE userid = 88")
        finally:
            c.close()
    th = threading.Thread(target=load)
    th.start()
    try:
        out = subprocess.run([cluster.shardctl_path(), "top", "--router",
                              "127.0.0.1:%d" % ADMIN_PORT, "--interval", "1", "--json"],
                             capture_output=True, text=True, timeout=30)
    finally:
        stop.set()
        th.join(10)
    assert out.returncode == 0, out.stderr
    top = json.loads(out.stdout)
    assert top["routers"] == [{"admin": "127.0.0.1:%d" % ADMIN_PORT, "answered": True}]
    hot = top["vbuckets"][0]
    assert hot["shard"] == "s0" and hot["statements_per_s"] > 5, top["vbuckets"][:3]
    assert top["users"][0]["user"] == cluster.APP_USER, top["users"]
    assert top["users"][0]["statements_per_s"] > 5
    # The table, and a router that does not answer.
    bad = cluster.free_port()
    out = subprocess.run([cluster.shardctl_path(), "top", "--router", "127.0.0.1:%d" % ADMIN_PORT,
                          "--router", "127.0.0.1:%d" % bad, "--interval", "0.2"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "routers: 1 of 2 answered" in out.stdout and "VBUCKET" in out.stdout, out.stdout
    assert "127.0.0.1:%d" % bad in out.stderr


def test_grafana_dashboard_uses_exported_metrics():
    with open(os.path.join(cluster.REPO, "docs", "grafana", "shardwire.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    names = set(re.findall(r"\b(shardwire_[a-z_]+)", " ".join(exprs)))
    code, _, body = get("/metrics")
    exported = set(re.findall(r"^# TYPE (\S+) ", body, re.M))
    missing = sorted(n for n in names
                     if n not in exported and re.sub(r"_(bucket|sum|count)$", "", n) not in exported)
    assert len(names) > 15 and not missing, missing


def test_draining_after_sigterm():
    """SIGTERM: /health turns 503 "draining" while the statement in flight
    finishes; then the router exits cleanly."""
    done = {}

    def slow():
        done["rows"] = query("SELECT SLEEP(2), COUNT(*) FROM t WHERE userid = 42")
    th = threading.Thread(target=slow)
    th.start()
    cluster.wait_for(lambda: any("SLEEP(2)" in (row[0] or "") for row in C.shards["s0"].sql(
        "SELECT INFO FROM information_schema.PROCESSLIST")), 10, "the statement on the shard")
    C.router.proc.send(signal.SIGTERM)
    cluster.wait_for(lambda: get("/health")[0] == 503, 5, "/health 503 after SIGTERM")
    assert get("/health")[2] == "draining\n"
    th.join(10)
    assert done.get("rows") == ((0, 5),), done
    C.router.proc.popen.wait(20)    # it ends by itself (a second SIGTERM would cut it short)
    C.router.stop()


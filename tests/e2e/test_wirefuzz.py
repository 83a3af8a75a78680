"""
tests/e2e/test_wirefuzz.py - the live-socket protocol fuzzer (wirefuzz.py)
run briefly against the sanitizer build: truncated handshakes, capability
combinations, every command byte, length-encoded boundaries, prepared
parameters, framing and sequence ids, and a scripted fake shard that
misbehaves. A control connection must keep working throughout, and the
router must stop cleanly with no sanitizer report.

SW_WIREFUZZ_SECONDS (default 5) bounds the random phase; SW_WIREFUZZ_SEED
repeats a run (the seed is printed).
"""

import os
import time

import cluster
import wirefuzz
from fakebackend import FakeBackend

C = None
R = None
FAKE = None
SCRIPTS = []


def setup_module():
    global C, R, FAKE
    C = cluster.Cluster(1, start_router=False)
    C.create_schema(["CREATE TABLE accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL, "
                     "name VARCHAR(100), PRIMARY KEY (userid, id))"])
    state = {"i": 0}

    def on_query(sql):
        script = SCRIPTS[state["i"] % len(SCRIPTS)]
        state["i"] += 1
        return script
    FAKE = FakeBackend(on_query)
    # The fake sorts last: statements that go anywhere use the first shard.
    text = cluster.map_text([("s0", "127.0.0.1:%d" % C.shards["s0"].port),
                             ("zf", "127.0.0.1:%d" % FAKE.port)])
    R = cluster.Router({"workers": 2, "pool_max_per_shard": 4, "connect_timeout_ms": 1000,
                        "query_timeout_ms": 3000, "handshake_timeout_ms": 2000},
                       map_text=text)


def teardown_module():
    try:
        R.stop()
    finally:
        FAKE.close()
        C.stop()


def users_on(shard, n):
    out = []
    for u in range(1, 2000):
        if len(out) == n:
            return out
        if cluster.explain(["SELECT * FROM accounts WHERE userid = %d" % u],
                           R.map_path)[0].get("shard") == shard:
            out.append(u)
    raise AssertionError("no user on %s" % shard)


def test_fuzz_with_a_control_connection():
    seed = int(os.environ.get("SW_WIREFUZZ_SEED", time.time()))
    seconds = float(os.environ.get("SW_WIREFUZZ_SECONDS", "5"))
    print("wirefuzz seed=%d seconds=%.0f" % (seed, seconds))
    good = users_on("s0", 1)[0]
    bad = users_on("zf", 1)[0]
    fz = wirefuzz.Fuzzer(R.port, seed, key_sql="SELECT * FROM accounts WHERE userid = %d" % good)
    SCRIPTS.extend(wirefuzz.bad_replies(fz.rnd))
    control = R.connect()

    def check():
        with control.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchall() == ((1,),)
            cur.execute("SELECT COUNT(*) FROM accounts WHERE userid = %s", (good,))
            assert cur.fetchall() == ((0,),)

    for family in (fz.truncated_handshakes, fz.every_command, fz.lenenc_boundaries,
                   fz.framing, lambda: fz.capability_combinations(50),
                   lambda: fz.prepared_params(50),
                   lambda: fz.backend_queries(
                       ["SELECT * FROM accounts WHERE userid = %d" % bad] * (2 * len(SCRIPTS)))):
        family()
        check()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        fz.rnd.choice([lambda: fz.capability_combinations(5), lambda: fz.prepared_params(5),
                       fz.framing])()
        check()
    control.close()
    assert R.alive()
    assert not R.sanitizer_errors(), "\n".join(R.sanitizer_errors())
    assert fz.cases > 800, fz.cases
    assert len(FAKE.seen("login")) > 0          # the fake shard was reached

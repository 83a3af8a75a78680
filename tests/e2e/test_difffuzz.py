#!/usr/bin/python3
"""
tests/e2e/test_difffuzz.py - a brief run of the standing differential
fuzzer (tests/difffuzz/difffuzz.py) in the default suite: statements built
from MariaDB's token classes that the analyzer routes to one user must read
and change only that user's rows on a live MariaDB; so must what a session
scoped to a user sends (a quarter of the statements: the scope's rewrite). Any leak fails the test
(the leaking statements and their evidence are in
<build>/difffuzz-leaks.txt); so does a run that routed or executed too few
statements to mean anything.

SW_DIFFFUZZ_SECONDS (default 60) and SW_DIFFFUZZ_SEED (default 1) change
the run (the seconds are capped to fit SW_E2E_TEST_TIMEOUT); `tests/run
long` runs it for much longer with a fresh seed.
"""

import json
import os
import subprocess
import sys

import cluster

FUZZER = os.path.join(cluster.REPO, "tests", "difffuzz", "difffuzz.py")


def test_difffuzz_brief():
    seconds = float(os.environ.get("SW_DIFFFUZZ_SECONDS", "60"))
    # stay inside the runner's per-test timeout (start-up and the final
    # checks take up to ~40 s more on a loaded machine)
    seconds = min(seconds, float(os.environ.get("SW_E2E_TEST_TIMEOUT", "120")) - 50)
    seed = int(os.environ.get("SW_DIFFFUZZ_SEED", "1"))
    leaks = os.path.join(cluster.BUILD_DIR, "difffuzz-leaks.txt")
    summary = os.path.join(cluster.BUILD_DIR, "difffuzz-summary.json")
    if os.path.exists(summary):
        os.unlink(summary)
    r = subprocess.run([sys.executable, FUZZER, "--seed", str(seed), "--seconds", str(seconds),
                        "--build", cluster.BUILD_DIR, "--leaks", leaks, "--minimize", "1",
                        "--summary-json", summary],
                       capture_output=True, text=True, timeout=seconds + 50)
    tail = "\n".join(r.stdout.splitlines()[-12:])
    print(tail)
    assert os.path.exists(summary), "difffuzz did not finish (rc=%d):\n%s\n%s" % (
        r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    with open(summary) as f:
        n = json.load(f)
    assert n["leaks"] == 0, "seed %d: %d routed statements leak other users' rows " \
        "(all in %s):\n%s" % (seed, n["leaks"], leaks, open(leaks).read()[:4000])
    assert r.returncode == 0, "difffuzz exited %d:\n%s\n%s" % (r.returncode, tail,
                                                               r.stderr[-2000:])
    # not vacuous: enough statements routed, and most of those really ran.
    # (The strict analyzer routes about a fifth of what the generator makes,
    # 19.9-20.7% in the runs seen; a tenth is the floor that still proves
    # the fuzzer reaches the server.)
    assert n["tried"] >= 500, n
    assert n["routed"] >= n["tried"] // 10, n
    assert n["executed_ok"] >= n["routed"] // 3, n
    assert n["routed_writes"] >= n["routed"] // 10, n
    # a quarter is sent as on scoped sessions (--scoped-share): their
    # rewrites routed and checked too (about 40% routed, 70% of those
    # rewritten, in the runs seen)
    assert n["scoped_tried"] >= n["tried"] // 8, n
    assert n["scoped_routed"] >= n["scoped_tried"] // 5, n
    assert n["scoped_rewritten"] >= n["scoped_routed"] // 3, n


if __name__ == "__main__":
    try:
        test_difffuzz_brief()
        print("PASS test_difffuzz_brief")
    finally:
        cluster.cleanup()

"""
tests/e2e/long_move_promotion.py - the slow promotion during `shardctl
move` (issue 13), run by `tests/run long` only, on the replicated shards
and write ledger of test_move_promotion.py: the source master killed (kill
-9) during the copy, the routers' coordinator promoting its standby. The
move stops with the error (journal at copy), the map names the new master,
and the rerun copies from it and finishes: nothing acknowledged lost or
twice, nothing of the moved vbuckets left on the source.
"""

import subprocess
import time

import cluster
import test_move_promotion as mp


def setup_module():
    mp.setup_module()


def teardown_module():
    mp.teardown_module()


def test_source_master_killed_in_copy_coordinator_promotes():
    rig = mp.new_rig()
    try:
        old = rig.masters()["s0"]
        filled = rig.fill(old, 40, lambda vb: vb < 8)
        rig.start_writers()
        p = subprocess.Popen(rig.argv(*mp.MOVE, "--rate", "100"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=cluster.move_env())
        try:
            dst = rig.masters()["s1"]
            base = dst.sql("SELECT COUNT(*) FROM ledger")[0][0]
            cluster.wait_for(lambda: dst.sql("SELECT COUNT(*) FROM ledger")[0][0] > base + 20,
                             60, "the copy under way")
            t0 = time.monotonic()
            old.kill()
            out, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
        assert p.returncode == 5, (out, err)
        assert "stopped before its flip, at phase copy" in err, err
        assert rig.journal()["phase"] == "copy"
        new = cluster.wait_for(lambda: rig.masters()["s0"] is not old and
                               rig.masters()["s0"], 60, "the coordinator promoting s0's standby")
        print("the coordinator promoted %s %.1f s after the kill" % (cluster.addr(new),
                                                                    time.monotonic() - t0))
        assert "frozen" not in rig.ctl("dump-map").stdout
        r = rig.ctl(*mp.MOVE)
        assert "resuming at phase copy" in r.stdout, r.stdout
        assert "done:" in r.stdout, r.stdout
        errs = rig.check_ledger("s0", range(0, 4), filled)
        print("writers' errors: %s" % errs)
    finally:
        rig.stop()

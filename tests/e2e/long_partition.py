"""
tests/e2e/long_partition.py - the slow variant of test_partition.py's third
scenario (issue 10), run by `tests/run long` only: one router cut off from
ZooKeeper (but not from the master) during a failover, and the cut held
until its ZooKeeper session has expired (ZKSTORE_SESSION_TIMEOUT_MS, 10 s)
and its registration is gone. It writes nothing all that time; the others
fail over; healed, it starts a new session, re-registers, follows the new
map and writes there; nothing acknowledged is lost and the deposed master
holds no row the new one lacks. Same cluster and namespace as
test_partition.py (netpart.py).
"""

import test_partition as tp


def setup_module():
    tp.setup_module()


def teardown_module():
    tp.teardown_module()


def test_router_cut_off_from_zookeeper_past_its_session_during_failover():
    tp.zk_cut_during_failover(hold_past_session=True)

"""Fixtures shared by the monitor tests."""

from __future__ import annotations

import pytest

from lncli.monitor import monitor as mon
from tests.channel.harness import A, B
from tests.monitor.chainpair import DEST, new_chain
from tests.monitor.test_monitor import revoked_pair


@pytest.fixture(scope="module")
def real_objects(tmp_path_factory):
    """Both sides' monitor updates (objects) of a revoked pair that then force-closes, and the
    monitors fed with them (revoked commitments with HTLCs, preimages)."""
    chain = new_chain(tmp_path_factory.mktemp("c"))
    p = revoked_pair(chain)[0]
    p.call(A, "force_close")
    monitors = {}
    for side in (A, B):
        m = mon.ChannelMonitor(p.ch[side].channel_id, p.ch[side].secrets, destination_script=DEST[side])
        for u in p.monitor[side]:
            m.apply(u)
        monitors[side] = m
    chain.close()
    return p.monitor, monitors, {s: p.ch[s].secrets for s in (A, B)}

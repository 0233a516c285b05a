"""lncli.rpc.channels.open_channel: one open call, then polling until the channel is ready."""

from __future__ import annotations

import pytest

from lncli import errors
from lncli.rpc.channels import open_channel
from tests.rpc.test_rpc import ServerThread

CID = "ab" * 32


@pytest.fixture
def node(tmp_path):
    """A fake node whose channel goes through the given states, one per listchannels call."""
    netdir = tmp_path / "regtest"
    netdir.mkdir()
    st = ServerThread(netdir)
    st.states = []
    st.opened = []

    def chan(state, confirmations=0):
        return {"channel_id": CID, "state": state, "minimum_depth": 3, "confirmations": confirmations,
                "funding_txid": "cd" * 32, "close_reason": "the peer failed" if state == "CLOSED" else None}

    @st.registry.method("open")
    async def open_(node_id, amount_sat, push_msat=0, private=False, wait=60.0):
        st.opened.append((node_id, amount_sat, push_msat, private))
        return chan("AWAITING_LOCKIN")

    @st.registry.method("listchannels")
    async def listchannels(channel=None, peer=None):
        assert channel == CID
        return [chan(*st.states.pop(0))] if len(st.states) > 1 else [chan(*st.states[0])]

    st.start()
    yield st
    st.stop()


def _open(node, **kw):
    notes = []
    ch = open_channel(node.netdir, node.netdir.parent, node_id="02" * 33, amount_sat=100_000, push_msat=5,
                      progress=notes.append, poll_interval=0.01, **kw)
    return ch, notes


def test_waits_until_normal_and_reports_each_state_once(node):
    node.states = [("AWAITING_LOCKIN", 0), ("AWAITING_LOCKIN", 0), ("AWAITING_LOCKIN", 2), ("AWAITING_LOCKIN", 3), ("NORMAL", 3)]
    ch, notes = _open(node)
    assert ch["state"] == "NORMAL" and node.opened == [("02" * 33, 100_000, 5, False)]
    assert notes == [
        f"waiting for 3 more confirmations of {'cd' * 32} (lncli mine 3)",
        f"waiting for 1 more confirmation of {'cd' * 32} (lncli mine 1)",
        "confirmed; waiting for the peer's channel_ready",
    ]


def test_no_wait_returns_the_opened_channel(node):
    ch, notes = _open(node, wait=False)
    assert ch["state"] == "AWAITING_LOCKIN" and notes == [] and len(node.opened) == 1


def test_timeout_and_failure(node):
    node.states = [("AWAITING_LOCKIN", 1)]
    with pytest.raises(errors.LncliError, match=r"is not ready after 0.05 s \(waiting for 2 more confirmations"):
        _open(node, timeout=0.05, network="testnet")
    node.states = [("CLOSED", 0)]
    with pytest.raises(errors.LncliError, match=f"channel {CID} is CLOSED: the peer failed"):
        _open(node)
    with pytest.raises(errors.InputError, match="--timeout cannot be negative"):
        _open(node, timeout=-1)
    assert len(node.opened) == 2  # the bad timeout was refused before asking the node

"""BOLT 7 gossip with Core Lightning: CLN accepts lncli's announcement_signatures,
channel_announcement and channel_update (``lightning-cli listchannels`` shows the channel in both
directions), and lncli's ``graph`` shows CLN's side and its node_announcement.

Skipped unless ``lightningd``, ``lightning-cli`` and ``bitcoind`` are on PATH (same processes as
tests/interop/test_cln.py, its own instances: one bitcoind, one CLN with --dev-fast-gossip, one lncli).
"""

from __future__ import annotations

from tests.interop.test_cln import btc, cln, ln, mine, open_from_lncli, pytestmark, wait  # noqa: F401 - fixtures


def test_cln_sees_our_public_channel(btc, ln, cln):
    cid = open_from_lncli(btc, ln, cln, 400_000)
    scid = ln.channel(cid)["short_channel_id"]
    mine(btc, ln, cln, 6)

    def cln_both():
        rows = cln.rpc("listchannels", scid)["channels"]
        return len({r["direction"] for r in rows}) == 2 and rows

    rows = wait(cln_both, timeout=90, what=f"CLN listchannels {scid} in both directions: {cln.tail(15)}")
    ours = next(r for r in rows if r["source"] == ln.id)
    assert ours["destination"] == cln.id and ours["public"] and ours["amount_msat"] == 400_000_000
    assert ours["base_fee_millisatoshi"] == 1000 and ours["delay"] == 34 and ours["active"]
    wait(lambda: any(n.get("alias", "").startswith("lncli-") for n in cln.rpc("listnodes", ln.id)["nodes"]),
         timeout=60, what="CLN has our node_announcement")

    def ours_both():
        g = ln.json("graph")
        chans = [c for c in g["channels"] if c["short_channel_id"] == scid]
        names = {n["nodeid"]: n.get("alias") for n in g["nodes"]}
        return len(chans) == 2 and names.get(cln.id) == "cln" and g

    wait(ours_both, timeout=60, what="lncli graph has both directions and CLN's node_announcement")

"""lncli.monitor.explain: a transaction spending a channel read with the channel's monitor."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.bitcoin.tx import Transaction, TxIn, TxOut
from lncli.errors import InputError, RefusedError
from lncli.monitor import explain as mx
from lncli.monitor import penalty as pen
from lncli.monitor.store import MonitorStore
from lncli.proto import commitment_explain as cx
from tests.channel.harness import A, B
from tests.monitor.chainpair import DEST, Runner, new_chain
from tests.monitor.test_monitor import revoked_pair


@pytest.fixture
def chain(tmp_path):
    c = new_chain(tmp_path)
    yield c
    c.close()


@pytest.fixture(params=[False, True], ids=["static_remotekey", "anchors"])
def revoked(chain, tmp_path, request):
    p, _tip, old, _ = revoked_pair(chain, anchors=request.param)
    m = Runner(chain, p, sides=(A,)).monitors[A]
    store = MonitorStore(tmp_path / "monitors.sqlite3")
    store.add(m)
    store.save(m)
    _stores[:] = [store]
    yield p, m, old
    store.close()


def _types(e):
    return sorted(o.type for o in e.outputs)


def test_the_peers_revoked_commitment(revoked):
    p, m, old = revoked
    e = mx.explain_with_monitor(m, old)
    n = e.commitment_number
    assert (e.kind, e.owner, e.revoked, e.spends_channel, e.channel_id) == ("commitment", "remote", True, True, m.channel_id)
    assert n < m.revocations.next_commitment_number
    assert e.per_commitment_secret == m.revocations.get_commitment_secret(n)
    anchors = m.setup.anchors
    assert _types(e) == sorted([cx.TO_LOCAL, cx.TO_REMOTE, cx.OFFERED_HTLC, cx.RECEIVED_HTLC] + [cx.ANCHOR] * 2 * anchors)
    by_type = {o.type: o for o in e.outputs}
    assert by_type[cx.TO_LOCAL].claims[0] == cx.Claim("us", "with the revocation key (justice)", "now")
    when = "1 block after confirmation" if anchors else "now"
    assert by_type[cx.TO_REMOTE].claims == (cx.Claim("us", "with the payment key (to_remote)", when),)
    if anchors:
        whose = sorted(o.claims[0].who for o in e.outputs if o.type == cx.ANCHOR)
        assert whose == ["them", "us"] and all(o.amount_sat == 330 for o in e.outputs if o.type == cx.ANCHOR)
    for o in e.outputs:
        assert o.amount_sat == old.outputs[o.vout].value_sat
    x = mx.explain_for_channels(_store(m), [p.ch[A]], old)  # found by its funding outpoint
    assert x.explanation == e and x.penalty is not None
    assert x.penalty.tx.to_hex() == pen.build_penalty(m, old).tx.to_hex() == m.build_justice_tx(old).to_hex()
    j = x.to_json("regtest")
    assert j["justice"]["txid"] == x.penalty.tx.txid_hex() and "revoked_txid" not in j["justice"]
    assert j["txid"] == old.txid_hex() and j["revoked"] and j["owner"] == "remote"
    assert x.require_justice() is x.penalty


def test_the_peers_current_commitment_is_not_revoked(revoked):
    p, m, _old = revoked
    latest = p.ch[B].latest_holder_commitment()[0]
    x = mx.explain_for_channels(_store(m), [p.ch[A]], latest, p.ch[A].channel_id.hex())
    e = x.explanation
    assert (e.kind, e.owner, e.revoked, e.per_commitment_secret) == ("commitment", "remote", False, None)
    assert cx.TO_LOCAL in _types(e) and cx.TO_REMOTE in _types(e)
    to_local = next(o for o in e.outputs if o.type == cx.TO_LOCAL)
    assert [c.who for c in to_local.claims] == ["them"]  # no revocation claim: we have no secret
    assert x.penalty is None and x.to_json("regtest")["justice"] is None
    with pytest.raises(RefusedError, match=pen.NOT_REVOKED):
        x.require_justice()


def test_our_own_commitment(revoked):
    p, m, _old = revoked
    ours = p.ch[A].latest_holder_commitment()[0]
    e = mx.explain_with_monitor(m, ours)
    assert (e.kind, e.owner, e.revoked) == ("commitment", "local", False)
    assert e.commitment_number == m.holder.commitment_number
    to_local = next(o for o in e.outputs if o.type == cx.TO_LOCAL)
    assert to_local.claims == (
        cx.Claim("us", "with the delayed payment key (to_local)", f"after to_self_delay {m.setup.local_to_self_delay} blocks from confirmation"),
    )
    with pytest.raises(RefusedError, match="our own commitment"):
        mx.Explained(e).require_justice()


def test_our_revoked_commitment(revoked):
    p, m, _old = revoked
    prev = m.prev_holder
    assert prev is not None and prev.commitment_number < m.holder.commitment_number
    e = mx.explain_with_monitor(m, prev.tx)
    assert (e.owner, e.revoked, e.commitment_number) == ("local", True, prev.commitment_number)
    assert e.per_commitment_secret == m.secrets.per_commitment_secret(prev.commitment_number)
    to_local = next(o for o in e.outputs if o.type == cx.TO_LOCAL)
    assert to_local.claims[0] == cx.Claim("them", "with the revocation key (justice)", "now")
    assert "our revoked commitment" in e.summary
    x = mx.explain_for_channels(_store(m), [p.ch[A]], prev.tx)
    assert x.penalty is None
    with pytest.raises(RefusedError, match="our own commitment"):
        x.require_justice()


def test_a_mutual_close_and_a_stranger(revoked):
    p, m, _old = revoked
    close = Transaction(2, (TxIn(m.funding_outpoint, b"", 0xFFFFFFFF),), (TxOut(100_000, DEST[A]),), 0)
    x = mx.explain_for_channels(_store(m), [p.ch[A]], close)
    assert (x.explanation.kind, x.explanation.revoked, x.penalty) == ("mutual_close", False, None)
    with pytest.raises(RefusedError, match="cooperative close"):
        x.require_justice()
    stranger = p.funding_tx  # spends no channel
    y = mx.explain_for_channels(_store(m), [p.ch[A]], stranger)
    assert (y.explanation.spends_channel, y.explanation.kind, y.explanation.channel_id) == (False, "unknown", None)
    with pytest.raises(RefusedError, match="does not spend a channel of ours"):
        y.require_justice()
    with pytest.raises(RefusedError, match="does not spend this channel's funding output"):
        mx.explain_for_channels(_store(m), [p.ch[A]], stranger, p.ch[A].channel_id.hex())
    with pytest.raises(InputError, match="no channel with channel_id"):
        mx.explain_for_channels(_store(m), [p.ch[A]], stranger, "11" * 32)


def test_a_justice_tx_that_cannot_be_built_is_a_note(revoked):
    p, m, old = revoked
    x = mx.explain_for_channels(_store(m), [p.ch[A]], old, feerate_per_kw=50_000_000)  # the fee takes it all
    assert x.explanation.revoked and x.penalty is None and "would be left" in x.justice_error
    assert any("no justice transaction" in n for n in x.to_json("regtest")["notes"])
    with pytest.raises(RefusedError, match="would be left"):
        x.require_justice()


_stores = []


def _store(m) -> MonitorStore:
    """The store holding ``m`` (the ``revoked`` fixture's)."""
    return _stores[0]


OFFLINE = dict(
    per_commitment_secret=b"\x01" * 32,
    revocation_basepoint_secret=b"\x02" * 32,
    remote_delayed_payment_basepoint=bytes.fromhex("023c72addb4fdf09af94f0c94d7fe92a386a7e70cf8a1d85916386bb2535c7b1b1"),
    to_self_delay=144,
    destination_script=DEST[A],
    feerate_per_kw=253,
)


def test_explain_offline_refusals(revoked):
    _p, _m, old = revoked
    with pytest.raises(RefusedError, match="no output of this transaction matches the keys"):
        mx.explain_offline(old, **OFFLINE)
    not_commitment = Transaction(2, (TxIn(old.inputs[0].prevout, b"", 0xFFFFFFFF),), (TxOut(1000, DEST[A]),), 0)
    with pytest.raises(RefusedError, match="not a commitment transaction"):
        mx.explain_offline(not_commitment, **OFFLINE)


def test_explain_offline_with_the_monitors_keys(revoked):
    """The offline keys of the channel give the same justice tx as the monitor."""
    p, m, old = revoked
    s = m.setup
    n = mx.explain_with_monitor(m, old).commitment_number
    x = mx.explain_offline(
        old,
        per_commitment_secret=m.revocations.get_commitment_secret(n),
        revocation_basepoint_secret=m.secrets.revocation_basepoint_secret,
        remote_delayed_payment_basepoint=s.remote_basepoints.delayed_payment_basepoint,
        to_self_delay=s.remote_to_self_delay,
        remote_htlc_basepoint=s.remote_basepoints.htlc_basepoint,
        local_htlc_basepoint=s.local_basepoints.htlc_basepoint,
        local_payment_basepoint=m.secrets.payment_basepoint,
        obscure_factor=s.obscure_factor,
        htlcs=m.counterparty[n].htlcs,
        destination_script=DEST[A],
        feerate_per_kw=m.feerate_per_kw,
        anchors=s.anchors,
    )
    e = x.explanation
    assert (e.commitment_number, e.owner, e.revoked) == (n, "remote", True)
    # the same reading, but for the anchors: their funding keys are not among the offline keys
    with_monitor = mx.explain_with_monitor(m, old)
    assert [o.type for o in e.outputs] == [cx.UNKNOWN if o.type == cx.ANCHOR else o.type for o in with_monitor.outputs]
    assert x.penalty.tx.to_hex() == m.build_justice_tx(old).to_hex()


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(bytes.hex)))
def test_offline_explain_on_random_input_raises_only_clean_errors(text):
    try:
        tx = pen.parse_revoked_tx(text, None)
        x = mx.explain_offline(tx, **OFFLINE)
    except (InputError, RefusedError) as e:
        assert len(str(e)) < 200 and "\n" not in str(e)
        return
    assert x.to_json("regtest")["revoked"]


@pytest.mark.parametrize("anchors", [False, True])
def test_explain_with_monitor_on_random_spends_never_crashes(chain, anchors):
    """Random transactions spending the funding output (commitment-shaped or not, random outputs,
    some of them the channel's real scripts): always an explanation."""
    from hypothesis import HealthCheck

    p, _tip, old, _ = revoked_pair(chain, anchors=anchors)
    m = Runner(chain, p, sides=(A,)).monitors[A]
    real = [o.script_pubkey for o in old.outputs]
    spk = st.one_of(st.sampled_from(real), st.binary(max_size=40))
    outputs = st.lists(st.builds(TxOut, st.integers(0, 10**8), spk), min_size=1, max_size=6)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.sampled_from([1, 2, 3]), outputs, st.booleans())
    def check(locktime, sequence, version, outs, shaped):
        if shaped:
            locktime, sequence = 0x20000000 | locktime & 0xFFFFFF, 0x80000000 | sequence & 0xFFFFFF
        else:
            locktime &= 0x1FFFFFFF  # no 0x20 upper byte: not a commitment
        tx = Transaction(version, (TxIn(m.funding_outpoint, b"", sequence),), tuple(outs), locktime)
        e = mx.explain_with_monitor(m, tx)
        assert e.spends_channel and len(e.outputs) == len(outs)
        assert e.kind == (cx.COMMITMENT if shaped and version == 2 else cx.MUTUAL_CLOSE)
        json = mx.Explained(e).to_json("regtest")
        assert json["revoked"] in (True, False)

    check()

"""lncli.monitor.record: the update codec and the monitor record, on real updates of a channel
that was breached and force-closed: decoders raise only DecodeError, round trips, the fast text
encoders equal the generic JSON encoder."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lncli.channel import events as ev
from lncli.errors import DecodeError
from lncli.monitor import monitor as mon
from lncli.monitor import record as monrec
from lncli.proto import commitment as bolt3
from tests.channel.harness import A, B
from tests.monitor.chainpair import Runner, new_chain
from tests.monitor.test_monitor import revoked_pair

# ------------------------------------------------------------------ decoders

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.sampled_from(["00", "ab" * 32, "02" + "11" * 32]),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=4),
    max_leaves=10,
)


@pytest.fixture(scope="module")
def real_updates(tmp_path_factory):
    chain = new_chain(tmp_path_factory.mktemp("c"))
    p = revoked_pair(chain)[0]
    p.call(A, "force_close")
    r = Runner(chain, p, sides=(A,))
    record = r.monitors[A].to_record()
    chain.close()
    return [monrec.update_to_json(u) for u in p.monitor[A]], record, p.ch[A].secrets


def _mutate(obj, data):
    """Replace one leaf (or drop one key) of a JSON structure."""
    if isinstance(obj, dict) and obj:
        k = data.draw(st.sampled_from(sorted(obj)))
        out = dict(obj)
        if data.draw(st.booleans()):
            del out[k]
        else:
            out[k] = _mutate(obj[k], data)
        return out
    if isinstance(obj, list) and obj:
        i = data.draw(st.integers(0, len(obj) - 1))
        out = list(obj)
        out[i] = _mutate(obj[i], data)
        return out
    return data.draw(_json)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_decoders_raise_only_decode_error(real_updates, data):
    updates, record, secrets = real_updates
    u = _mutate(data.draw(st.sampled_from(updates)), data)
    try:
        monrec.update_from_json(u)
    except DecodeError:
        pass
    rec = _mutate(record, data) if data.draw(st.booleans()) else data.draw(_json)
    try:
        mon.ChannelMonitor.from_record(rec, secrets)
    except DecodeError:
        pass


def test_decoders_round_trip(real_updates):
    updates, record, secrets = real_updates
    for u in updates:
        assert monrec.update_to_json(monrec.update_from_json(json.loads(json.dumps(u)))) == u
    assert mon.ChannelMonitor.from_record(record, secrets).to_record() == record


# ------------------------------------------------------------------ fast text encoders


def _generic_body(u) -> str:
    return json.dumps(monrec.update_to_json(u), separators=(",", ":"))


def test_update_body_is_the_generic_compact_json(real_objects):
    updates, _, _ = real_objects
    seen = set()
    for side in (A, B):
        for u in updates[side]:
            body = monrec.update_body(u)
            assert body == _generic_body(u)
            assert monrec.update_from_json(json.loads(body)) == u
            seen.add(type(u))
    assert seen == {ev.ChannelSetup, ev.LatestHolderCommitment, ev.LatestCounterpartyCommitment,
                    ev.CommitmentSecret, ev.PaymentPreimage, ev.ChannelForceClosed}


_bytes = st.binary(min_size=0, max_size=40)
_ints = st.integers(0, 2**64)
_htlcs = st.lists(st.builds(bolt3.Htlc, _ints, _ints, _bytes, _ints, st.booleans()), max_size=3).map(tuple)


def _updates(txs):
    tx = st.sampled_from(txs)
    opt_bytes = st.one_of(st.none(), _bytes)  # None: not signed yet (lazy), or written before it existed
    htlc_tx = st.builds(ev.HolderHtlcTx, _ints, st.booleans(), _bytes, _ints, tx, _bytes, _bytes, opt_bytes, st.booleans())
    return st.one_of(
        st.builds(ev.LatestHolderCommitment, _ints, _ints, tx, st.lists(htlc_tx, max_size=3).map(tuple), opt_bytes),
        st.builds(ev.LatestCounterpartyCommitment, _ints, _bytes, _ints, _bytes, _htlcs, _ints, _ints, _ints),
        st.builds(ev.CommitmentSecret, _ints, _ints, _bytes),
        st.builds(ev.PaymentPreimage, _ints, _bytes, _bytes),
        st.builds(ev.ChannelForceClosed, _ints, _ints),
    )


_odd = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=4),
                 st.binary(max_size=4).map(bytearray), st.lists(st.integers(), max_size=2).map(tuple))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_update_body_matches_generic_encoder(real_objects, data):
    """Random updates: the same text as the generic encoder and a round trip; a field of an
    unexpected type gives the same JSON value as the generic encoder (or its same error)."""
    updates, _, _ = real_objects
    txs = [u.tx for u in updates[A] + updates[B] if isinstance(u, ev.LatestHolderCommitment)]
    u = data.draw(_updates(txs))
    body = monrec.update_body(u)
    assert body == _generic_body(u)
    assert monrec.update_from_json(json.loads(body)) == u
    # one field replaced by a value of another type
    name = data.draw(st.sampled_from([f.name for f in dataclasses.fields(u)]))
    odd = dataclasses.replace(u, **{name: data.draw(_odd)})
    try:
        expected = json.loads(_generic_body(odd))
    except (TypeError, ValueError) as e:
        with pytest.raises(type(e)):
            monrec.update_body(odd)
    else:
        assert json.loads(monrec.update_body(odd)) == expected


def test_record_text_is_the_record(real_objects):
    updates, monitors, secrets = real_objects
    for side in (A, B):
        m = monitors[side]
        assert m.counterparty and m.preimages
        assert json.loads(m.to_record_text()) == m.to_record()
        assert json.loads(m.to_record_text()) == m.to_record()  # cached parts
        back = mon.ChannelMonitor.from_record(json.loads(m.to_record_text()), secrets[side])
        assert back.to_record() == m.to_record()
        # a changed preimage (never happens) is not served from the cache
        k = next(iter(back.preimages))
        back.to_record_text()
        back.preimages[k] = bytes(32)
        assert json.loads(back.to_record_text()) == back.to_record()
        back.preimages.clear()
        assert json.loads(back.to_record_text())["preimages"] == {}


@settings(max_examples=100, deadline=None)
@given(c=st.builds(mon.CounterpartyCommitment, _ints, _bytes, _bytes, _htlcs, _ints), odd=_odd,
       name=st.sampled_from(["commitment_number", "txid", "per_commitment_point", "htlcs", "feerate_per_kw"]))
def test_counterparty_record_text_matches_generic_encoder(c, odd, name):
    assert c.record_text == json.dumps(monrec._counterparty_json(c), separators=(",", ":"))
    c = dataclasses.replace(c, **{name: odd})
    try:
        expected = json.loads(json.dumps(monrec._counterparty_json(c)))
    except (TypeError, ValueError, AttributeError) as e:
        with pytest.raises(type(e)):
            _ = c.record_text
    else:
        assert json.loads(c.record_text) == expected

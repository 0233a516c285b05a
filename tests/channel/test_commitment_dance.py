"""The commitment dance (lncli/channel/commitment_dance.py): commitment_signed,
revoke_and_ack, their signatures, commitment batching and speculation.

Two channels wired in memory (tests/channel/harness.py)."""

from __future__ import annotations

import pytest

from lncli.bitcoin.ecdsa import verify
from lncli.bitcoin.script import funding_script
from lncli.bitcoin.sighash import SIGHASH_ALL, SighashCache
from lncli.channel.channel import ProtocolError
from lncli.channel.state import LOCAL
from lncli.proto import commitment as bolt3
from lncli.proto.wire import decode_message
from tests.channel.harness import ONION, A, B, normal_pair, phash, preimage


def test_bad_commitment_signature_is_refused_and_state_kept():
    p = normal_pair()
    p.call(A, "add_htlc", 5_000_000, phash(1), 500, ONION)
    p.step(B)  # the add
    p.call(A, "send_commitment")
    data = bytearray(p.queue[B].pop(0))
    data[40] ^= 1  # corrupt the signature
    before = p.ch[B].to_record()
    with pytest.raises(ProtocolError, match="signature"):
        p.ch[B].handle(decode_message(bytes(data)))
    assert p.ch[B].to_record() == before


def test_revoke_and_ack_with_wrong_secret():
    p = normal_pair()
    p.call(A, "add_htlc", 5_000_000, phash(1), 500, ONION)
    p.call(A, "send_commitment")
    p.step(B)
    p.step(B)
    raw = bytearray(p.queue[A].pop(0))
    raw[34] ^= 1
    with pytest.raises(ProtocolError, match="does not match"):
        p.ch[A].handle(decode_message(bytes(raw)))


def test_every_commitment_signature_verifies():
    """Each commitment_signed on the wire verifies with ecdsa against the BIP 143 sighash."""
    p = normal_pair(push_msat=200_000_000)
    p.call(A, "add_htlc", 20_000_000, phash(1), 500, ONION)
    p.call(A, "send_commitment")
    p.step(B)
    raw = p.queue[B][0]
    msg = decode_message(raw)
    p.step(B)
    ctx, keys = p.ch[B].commitment(LOCAL, p.ch[B].local_ctn)
    from lncli.bitcoin.ecdsa import compact_to_der

    script = funding_script(p.ch[A].secrets.funding_pubkey, p.ch[B].secrets.funding_pubkey)
    sighash = SighashCache(ctx.tx).segwit_v0(0, script, 1_000_000, SIGHASH_ALL)
    assert verify(p.ch[A].secrets.funding_pubkey, sighash, compact_to_der(msg.signature))
    (hsig,) = msg.htlc_signature
    (vout,) = [i for i, o in enumerate(ctx.outputs) if o.htlc is not None]
    htx = bolt3.build_htlc_tx(
        commitment_txid=ctx.tx.txid(), vout=vout, htlc=ctx.outputs[vout].htlc, keys=keys,
        to_self_delay=p.ch[B].remote_config.to_self_delay, feerate_per_kw=2500, anchors=False,
    )
    hs = SighashCache(htx).segwit_v0(0, ctx.outputs[vout].witness_script, 20_000, SIGHASH_ALL)
    assert verify(keys.remote_htlc_pubkey, hs, compact_to_der(hsig))
    p.flush()
    p.check_agree()


@pytest.mark.parametrize("how", ["fulfill", "fail"])
def test_only_settlements_pending_and_a_merged_commitment(how):
    """After the peer settles our HTLC and signs it, our commitment_signed for it may wait
    (only_settlements_pending); the next add then rides in the same commitment, which both
    sides verify, and the channel ends where the unbatched flow ends."""
    p = normal_pair()
    p.call(A, "add_htlc", 10_000_000, phash(1), 600, ONION)
    p.flush()
    assert not p.ch[A].only_settlements_pending() and not p.ch[B].only_settlements_pending()
    if how == "fulfill":
        p.call(B, "fulfill_htlc", 0, preimage(1))
    else:
        p.call(B, "fail_htlc", 0, b"\x01" * 100)
    # B's own fulfill may wait (the preimage went with the update); its fail may not
    assert p.ch[B].only_settlements_pending() == (how == "fulfill")
    p.call(B, "send_commitment")
    p.step(A)  # the removal
    p.step(A)  # commitment_signed -> revoke_and_ack
    p.step(B)  # revoke_and_ack
    assert p.ch[A].needs_commitment() and p.ch[A].only_settlements_pending()
    assert not p.ch[B].needs_commitment()
    # the next payment joins: one commitment_signed covers the removal and the add
    p.call(A, "add_htlc", 20_000_000, phash(2), 600, ONION)
    assert not p.ch[A].only_settlements_pending()
    ctn = p.ch[A].remote_ctn
    p.call(A, "send_commitment")
    assert p.ch[A].remote_ctn == ctn + 1
    p.flush()
    p.check_agree()
    p.verify_holder(A)
    p.verify_holder(B)
    assert list(p.ch[B].received) == [1] and list(p.ch[A].offered) == [1]
    moved = 10_000_000 if how == "fulfill" else 0
    assert p.balance(B)[0] == moved


def test_speculation_prepares_the_next_exchange():
    """In the usual flow, what speculate() prepares while a node waits is what the next messages
    need: the payee checks the payer's commitment_signed and signs its own, and the payer checks
    the payee's, without building a commitment or signing anew."""
    p = normal_pair(persist=False)
    built = {A: 0, B: 0}
    signed = {A: 0, B: 0}
    for side in (A, B):
        ch = p.ch[side]
        build, sigs = ch._build_commitment, ch._remote_signatures

        def count_build(*a, side=side, build=build):
            built[side] += 1
            return build(*a)

        def count_sigs(*a, side=side, sigs=sigs):
            signed[side] += 1
            return sigs(*a)

        ch._build_commitment, ch._remote_signatures = count_build, count_sigs
    for n in range(1, 4):
        p.call(A, "add_htlc", 10_000_000, phash(n), 600, ONION)
        p.call(A, "send_commitment")
        p.ch[A].speculate()  # A waits for B's revoke_and_ack and commitment_signed
        p.step(B)  # update_add_htlc
        p.ch[B].speculate()  # B waits for A's commitment_signed
        before = dict(built), dict(signed)
        p.step(B)  # commitment_signed -> revoke_and_ack
        p.call(B, "send_commitment")
        p.step(A)  # revoke_and_ack
        p.step(A)  # commitment_signed -> revoke_and_ack
        assert (built, signed) == before  # all of it prepared
        p.step(B)
        p.call(B, "fulfill_htlc", n - 1, preimage(n))
        p.step(A)
    p.flush()
    p.check_agree()
    assert p.balance(B)[0] == 30_000_000


def test_onions_leave_the_record_once_no_message_can_need_them():
    """An offered HTLC keeps its onion until the peer acknowledges the add (a reestablish may
    still have to send the update_add_htlc again); a received one until we settle it. After
    that the record (and the channel loaded from it) carries null."""
    p = normal_pair()
    p.call(A, "add_htlc", 10_000_000, phash(1), 600, ONION)
    p.call(A, "send_commitment")
    assert p.ch[A].offered[0].onion_routing_packet == ONION
    p.step(B)  # update_add_htlc
    p.step(B)  # commitment_signed -> revoke_and_ack
    p.call(B, "send_commitment")
    assert p.ch[B].received[0].onion_routing_packet == ONION
    p.step(A)  # revoke_and_ack: B has the add for good
    assert p.ch[A].offered[0].onion_routing_packet is None
    assert '"onion_routing_packet":null' in p.ch[A].record_json()
    p.step(A)  # commitment_signed -> revoke_and_ack
    p.step(B)
    assert p.ch[B].received[0].onion_routing_packet == ONION  # still to be settled
    p.call(B, "fulfill_htlc", 0, preimage(1))
    assert p.ch[B].received[0].onion_routing_packet is None
    p.flush()
    p.check_agree()
    assert p.balance(B)[0] == 10_000_000


def test_fulfill_without_commitment_then_one_commitment_per_payment():
    """The payee sends update_fulfill_htlc alone (its commitment waits); the next payment's add
    and that fulfill then ride in one commitment each way: one commitment_signed and one
    revoke_and_ack per side per payment. A revoke_and_ack for a commitment that an add entered
    cannot wait; one for a commitment that only fulfills entered can (a flag of the live
    channel: no persistence round trip here)."""
    p = normal_pair(persist=False)

    def queued(side):
        return [decode_message(d).name for d in p.queue[side]]

    for n in range(1, 4):
        p.call(A, "add_htlc", 10_000_000, phash(n), 600, ONION)
        p.call(A, "send_commitment")
        assert queued(B) == ["update_add_htlc", "commitment_signed"]
        p.step(B)
        p.step(B)  # -> revoke_and_ack
        assert not p.ch[B].revocation_can_wait  # the add entered
        if n > 1:
            # B's last fulfill and A's add, in A's commitment at once
            assert p.ch[B].needs_commitment() and not p.ch[B].only_settlements_pending()
        p.call(B, "send_commitment")
        p.step(A)  # revoke_and_ack
        p.step(A)  # commitment_signed -> revoke_and_ack
        assert not p.ch[A].revocation_can_wait
        # B's earlier fulfill, now acked, may wait in B's commitment
        assert p.ch[A].needs_commitment() == (n > 1) and p.ch[A].only_settlements_pending() == (n > 1)
        p.step(B)  # revoke_and_ack: the HTLC is irrevocably B's to settle
        p.call(B, "fulfill_htlc", n - 1, preimage(n))
        assert p.ch[B].needs_commitment() and p.ch[B].only_settlements_pending()
        assert not p.ch[A].peer_owes_commitment()  # a fulfill: A's next add need not wait
        assert queued(A) == ["update_fulfill_htlc"]
        p.step(A)
        assert not p.ch[A].peer_owes_commitment()
    # nothing follows: the waiting commitments go (timer), and only fulfills enter A's
    p.call(B, "send_commitment")
    p.step(A)  # commitment_signed -> revoke_and_ack
    assert p.ch[A].revocation_can_wait
    p.flush()
    p.check_agree()
    p.verify_holder(A)
    p.verify_holder(B)
    assert not p.ch[A].offered and not p.ch[B].received
    assert p.balance(B)[0] == 30_000_000

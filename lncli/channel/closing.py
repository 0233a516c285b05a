"""BOLT 2 "Channel Close": ``shutdown`` and ``closing_signed`` (the cooperative close, legacy
fee negotiation with the ``fee_range`` TLV), and the unilateral close: our latest commitment,
fully signed, with its HTLC txs (BOLT 5 takes over from there, in :mod:`lncli.monitor`), and the
HTLCs whose timeouts force it (BOLT 2 "Risks With HTLC Timeouts")."""

from __future__ import annotations

from lncli.bitcoin.ecdsa import compact_to_der, der_to_compact
from lncli.bitcoin.script import classify
from lncli.bitcoin.sighash import SIGHASH_ALL, SighashCache
from lncli.bitcoin.tx import Transaction, TxIn, TxOut
from lncli.channel import events as ev
from lncli.channel.common import ProtocolError, WeAreBehind
from lncli.channel.common import msg as _msg
from lncli.channel.events import Outcome
from lncli.channel.params import FEERATE_FLOOR_PER_KW, ChannelError
from lncli.channel.state import LOCAL, REMOTE, ChannelState
from lncli.errors import DecodeError
from lncli.proto import commitment as bolt3
from lncli.proto.commitment_tx import htlc_vouts
from lncli.proto.wire import Message

__all__ = [
    "ClosingMixin",
    "check_shutdown_script",
    "REORG_DEPTH_R",
    "GRACE_PERIOD_G",
    "INCLUSION_DELAY_S",
    "OFFERED_HTLC_GRACE",
    "FULFILL_SAFETY_DELTA",
]

S = ChannelState

# BOLT 2 "cltv_expiry_delta Selection" derives the HTLC deadlines from three assumptions; the
# spec's own values (its "if in doubt" cltv_expiry_delta of 34 = 3R+2G+2S):
#: ``R``: a worst-case reorganization depth, in blocks
REORG_DEPTH_R = 2
#: ``G``: blocks after an HTLC's timeout before giving up on an unresponsive peer
GRACE_PERIOD_G = 2
#: ``S``: blocks between a transaction's broadcast and its inclusion in a block
INCLUSION_DELAY_S = 12
#: "the deadline for offered HTLCs": the channel is failed (and the HTLC timed out on chain) this
#: many blocks after the HTLC's ``cltv_expiry``. The spec allows ``G`` ("1 or 2 blocks is
#: reasonable"); we take none of it: the HTLC-timeout tx is valid from ``cltv_expiry`` on, and
#: every block waited is taken from the incoming HTLC's margin.
OFFERED_HTLC_GRACE = 0
#: "the deadline for received HTLCs this node has fulfilled": the channel is failed (and the
#: HTLC claimed on chain with its preimage) once an HTLC we fulfilled is still on a commitment
#: this many blocks before its ``cltv_expiry``: ``2R+G+S`` ("18 blocks is reasonable"), the
#: fulfill safety delta (Eclair's "fulfill-safety-before-timeout").
FULFILL_SAFETY_DELTA = 2 * REORG_DEPTH_R + GRACE_PERIOD_G + INCLUSION_DELAY_S


# closing tx witness: count, dummy, 2 x (len + 72-byte sig + sighash), len + 71-byte script
_CLOSING_WITNESS_WEIGHT = 2 + 1 + 1 + 2 * 74 + 1 + 71


def check_shutdown_script(script: bytes, err=ProtocolError) -> bytes:
    """``script`` as bytes if it is a standard output script (a shutdown or upfront shutdown
    scriptpubkey), else raise ``err``."""
    kind, _ = classify(bytes(script))
    if kind not in ("p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr", "witness_unknown"):
        raise err(f"shutdown scriptpubkey is not a standard output script ({kind})")
    return bytes(script)


class ClosingMixin:
    """Closing a :class:`~lncli.channel.channel.Channel`."""

    # ------------------------------------- cooperative close: shutdown

    def shutdown(self, scriptpubkey: bytes | None = None, *, feerate_per_kw: int | None = None) -> Outcome:
        """Start a cooperative close paying our side to ``scriptpubkey``."""
        if self.state not in (S.NORMAL, S.AWAITING_LOCKIN, S.SHUTDOWN):
            raise ChannelError(f"cannot shut down in channel state {self.state.value}")
        if self.shutdown_sent:
            raise ChannelError("shutdown already sent")
        if any(self._slot(ref, True)[REMOTE] is None for ref in self.local_log):
            raise ChannelError("send commitment_signed for the pending updates before shutdown")
        if scriptpubkey is not None:
            self.local_shutdown_script = check_shutdown_script(scriptpubkey, ChannelError)
        if self.local_shutdown_script is None:
            raise ChannelError("no shutdown script: give the address to pay our balance to")
        if feerate_per_kw is not None:
            self.closing_feerate_per_kw = feerate_per_kw
        self.shutdown_sent = True
        if self.state != S.SHUTDOWN:
            self.set_state(S.SHUTDOWN)
        out = Outcome(messages=[_msg("shutdown", channel_id=self.channel_id, scriptpubkey=self.local_shutdown_script)])
        return out.extend(self._maybe_start_closing())

    def on_shutdown(self, msg: Message, *, feerate_per_kw: int | None = None) -> Outcome:
        self._expect(msg, S.NORMAL, S.AWAITING_LOCKIN, S.SHUTDOWN, S.NEGOTIATING_CLOSING)
        script = check_shutdown_script(msg.scriptpubkey)
        if self.shutdown_received:
            if script != self.remote_shutdown_script:
                raise ProtocolError("shutdown repeated with a different scriptpubkey")
            return Outcome()  # retransmitted after a reconnection
        if any(self._slot(ref, False)[LOCAL] is None for ref in self.remote_log):
            raise ProtocolError("shutdown while its own updates are not committed")
        if self.remote_shutdown_script is not None and script != self.remote_shutdown_script:
            raise ProtocolError("shutdown scriptpubkey differs from the upfront_shutdown_script")
        self.remote_shutdown_script = script
        self.shutdown_received = True
        if feerate_per_kw is not None:
            self.closing_feerate_per_kw = feerate_per_kw
        out = Outcome()
        if not self.shutdown_sent:
            if self.local_shutdown_script is None:
                raise ChannelError("no shutdown script to answer the peer's shutdown")
            if any(self._slot(ref, True)[REMOTE] is None for ref in self.local_log):
                out.extend(self.send_commitment()) if self.needs_commitment() else None
            self.shutdown_sent = True
            out.messages.append(_msg("shutdown", channel_id=self.channel_id, scriptpubkey=self.local_shutdown_script))
        if self.state != S.SHUTDOWN:
            self.set_state(S.SHUTDOWN)
        return out.extend(self._maybe_start_closing())

    # ------------------------------- cooperative close: closing_signed

    def _quiescent(self) -> bool:
        if self.offered or self.received:
            return False
        if self.local_log or self.remote_log:
            return False
        return self.remote_revoked == self.remote_ctn

    def _closing_amounts(self) -> tuple[int, int]:
        ours, theirs, live = self.balances(LOCAL, self.local_ctn)
        return ours // 1000, theirs // 1000

    def closing_tx(self, fee_satoshis: int, dust_limit_satoshis: int) -> Transaction:
        """The unsigned mutual close paying both shutdown scripts (the opener pays the fee)."""
        ours, theirs = self._closing_amounts()
        if self.is_opener:
            ours -= fee_satoshis
        else:
            theirs -= fee_satoshis
        outs = []
        if ours >= dust_limit_satoshis and ours > 0:
            outs.append(TxOut(ours, self.local_shutdown_script))
        if theirs >= dust_limit_satoshis and theirs > 0:
            outs.append(TxOut(theirs, self.remote_shutdown_script))
        outs.sort(key=lambda o: (o.value_sat, o.script_pubkey))
        return Transaction(version=2, inputs=(TxIn(self.funding_outpoint, b"", 0xFFFFFFFF),), outputs=tuple(outs), locktime=0)

    def _closing_fee_range(self) -> tuple[int, int, int]:
        tx = self.closing_tx(0, self.local_config.dust_limit_satoshis)
        weight = len(tx.to_bytes(False)) * 4 + _CLOSING_WITNESS_WEIGHT
        rate = self.closing_feerate_per_kw or self.feerate(LOCAL, self.local_ctn)
        fee = rate * weight // 1000
        lo = FEERATE_FLOOR_PER_KW * weight // 1000
        hi = max(fee, 3 * fee)
        opener_sat = self._closing_amounts()[0 if self.is_opener else 1]
        hi = min(hi, opener_sat)
        fee = min(fee, hi)
        lo = min(lo, fee)
        return fee, lo, hi

    def _closing_signed(self, fee: int, lo: int, hi: int, dust: int) -> Message:
        tx = self.closing_tx(fee, dust)
        sig = bolt3.sign_input(tx, 0, self.funding_script, self.funding_satoshis, self.secrets.funding_privkey)
        self.closing_fee_sent = fee
        return _msg(
            "closing_signed",
            channel_id=self.channel_id,
            fee_satoshis=fee,
            signature=der_to_compact(sig),
            tlvs={"fee_range": {"min_fee_satoshis": lo, "max_fee_satoshis": hi}},
        )

    def _maybe_start_closing(self) -> Outcome:
        out = Outcome()
        if self.state == S.SHUTDOWN and self.shutdown_sent and self.shutdown_received and self._quiescent():
            self.set_state(S.NEGOTIATING_CLOSING)
        if self.state == S.NEGOTIATING_CLOSING and self.is_opener and self.closing_fee_sent is None:
            fee, lo, hi = self._closing_fee_range()
            out.messages.append(self._closing_signed(fee, lo, hi, self.local_config.dust_limit_satoshis))
        return out

    def on_closing_signed(self, msg: Message) -> Outcome:
        self._expect(msg, S.NEGOTIATING_CLOSING, S.SHUTDOWN)
        if self.state == S.SHUTDOWN:
            if not self._quiescent() or not self.shutdown_sent:
                raise ProtocolError("closing_signed while HTLCs are pending")
            self.set_state(S.NEGOTIATING_CLOSING)
        fee = msg.fee_satoshis
        try:
            der = compact_to_der(msg.signature)
        except DecodeError:
            raise ProtocolError("closing_signed signature is not a valid signature") from None
        tx = None
        dust_used = None
        for dust in dict.fromkeys((self.local_config.dust_limit_satoshis, self.remote_config.dust_limit_satoshis)):
            cand = self.closing_tx(fee, dust)
            if bolt3.verify_input(cand, 0, self.funding_script, self.funding_satoshis, self.remote_basepoints.funding_pubkey, der):
                tx, dust_used = cand, dust
                break
        if tx is None:
            raise ProtocolError(f"invalid closing_signed signature (fee {fee} sat)")
        out = Outcome()
        if self.closing_fee_sent == fee:
            return self._finish_close(tx, der, fee, out)
        my_fee, lo, hi = self._closing_fee_range()
        rng = (msg.tlvs or {}).get("fee_range")
        if rng is not None:
            olo, ohi = max(lo, rng["min_fee_satoshis"]), min(hi, rng["max_fee_satoshis"])
            if olo > ohi:
                raise ProtocolError(f"closing fee ranges do not overlap (ours {lo}..{hi} sat)")
            if lo <= fee <= hi:
                agreed = fee
            elif self.is_opener:
                raise ProtocolError(f"closing_signed fee {fee} sat is outside our fee_range {lo}..{hi}")
            else:
                agreed = min(max(fee, olo), ohi)
        else:
            if lo <= fee <= hi:
                agreed = fee
            else:
                agreed = (fee + (self.closing_fee_sent or my_fee)) // 2
        reply = self._closing_signed(agreed, lo, hi, dust_used)
        out.messages.append(reply)
        if agreed == fee:
            return self._finish_close(tx, der, fee, out)
        return out

    def _finish_close(self, tx: Transaction, their_der: bytes, fee: int, out: Outcome) -> Outcome:
        ours = bolt3.sign_input(tx, 0, self.funding_script, self.funding_satoshis, self.secrets.funding_privkey)
        witness = bolt3.funding_witness(ours, their_der, self.secrets.funding_pubkey, self.remote_basepoints.funding_pubkey)
        signed = tx.with_witness(0, witness)
        self.set_state(S.CLOSING)
        out.events.append(ev.BroadcastClosing(signed, fee))
        return out

    def mark_closed(self) -> None:
        """The funding output's spend is settled on chain."""
        self.set_state(S.CLOSED)

    def _holder_commitment(self) -> tuple[Transaction, tuple]:
        """Our latest commitment, fully signed, and its HTLC txs (a force close; the monitor
        signs its own copy only when it needs it, see ``_holder_update``)."""
        ctn = self.local_ctn
        ctx, keys = self.commitment(LOCAL, ctn)
        cache, their_sig = SighashCache(ctx.tx), compact_to_der(self.local_sigs["signature"])
        our_sig = bolt3.sign_input(
            ctx.tx, 0, self.funding_script, self.funding_satoshis, self.secrets.funding_privkey, cache=cache
        )
        witness = bolt3.funding_witness(
            our_sig, their_sig, self.secrets.funding_pubkey, self.remote_basepoints.funding_pubkey
        )
        tx = ctx.tx.with_witness(0, witness)
        vouts = htlc_vouts(ctx)
        htlc_key = self._htlc_privkey(keys.per_commitment_point) if vouts else None
        feerate = self.feerate(LOCAL, ctn)
        txid = ctx.tx.txid()
        out = []
        for (vout, h), hsig in zip(vouts, self.local_sigs["htlc_signatures"]):
            remote_sig = compact_to_der(hsig)
            htx = self._htlc_tx(LOCAL, txid, vout, h, keys, feerate)
            ws = ctx.outputs[vout].witness_script
            local_sig = bolt3.sign_input(htx, 0, ws, h.amount_sat, htlc_key, SIGHASH_ALL)
            preimage = None
            if not h.offered:
                rec = self.received.get(h.htlc_id)
                if rec is not None and rec.removal is not None and rec.removal["kind"] == "fulfill":
                    preimage = rec.removal["payment_preimage"]
            complete = h.offered or preimage is not None
            if complete:
                htx = htx.with_witness(
                    0,
                    bolt3.htlc_witness(
                        remote_sig_der=remote_sig,
                        local_sig_der=local_sig,
                        witness_script=ws,
                        anchors=self.anchors,
                        payment_preimage=preimage,
                    ),
                )
            out.append(
                ev.HolderHtlcTx(
                    htlc_id=h.htlc_id,
                    offered=h.offered,
                    payment_hash=h.payment_hash,
                    cltv_expiry=h.cltv_expiry,
                    tx=htx,
                    witness_script=ws,
                    remote_signature=remote_sig,
                    local_signature=local_sig,
                    complete=complete,
                )
            )
        return tx, tuple(out)

    # ----------------------------------------------------- force close

    def latest_holder_commitment(self) -> tuple[Transaction, tuple]:
        """Our latest, unrevoked commitment, fully signed, and its HTLC txs (no state change)."""
        if self.local_sigs is None:
            raise ChannelError("no commitment transaction exists yet")
        if self.data_loss:
            raise WeAreBehind("our channel state is out of date: broadcasting our commitment could lose funds")
        return self._holder_commitment()

    def force_close(self) -> Outcome:
        """Hand out our latest commitment (and HTLC txs) for broadcast; the channel is failed."""
        tx, htlc_txs = self.latest_holder_commitment()
        if self.state != S.FORCE_CLOSING:
            self.set_state(S.FORCE_CLOSING)
        out = Outcome()
        out.monitor_updates.append(ev.ChannelForceClosed(self._update_id(), self.local_ctn))
        out.events.append(ev.BroadcastCommitment(tx, htlc_txs))
        return out

    # --------------------------------------------------- HTLC timeouts

    def expiring_htlcs(self, block_height: int, fulfill_margin: int = FULFILL_SAFETY_DELTA,
                       offered_grace: int = OFFERED_HTLC_GRACE) -> list[tuple[str, int]]:
        """HTLCs that force the channel closed at ``block_height`` (BOLT 2 "cltv_expiry_delta
        Selection" deadlines): ("out", id) for an HTLC we offered still on a commitment at
        ``cltv_expiry + offered_grace``; ("in", id) for one we fulfilled that is still on a
        commitment with ``fulfill_margin`` blocks or fewer left before its ``cltv_expiry``. The
        node then calls :meth:`force_close`."""
        out = []
        for r in self.offered.values():
            if r.cltv_expiry + offered_grace <= block_height and (r.add_ctn[REMOTE] is not None or r.add_ctn[LOCAL] is not None):
                out.append(("out", r.htlc_id))
        for r in self.received.values():
            if r.removal is not None and r.removal["kind"] == "fulfill" and r.cltv_expiry - block_height <= fulfill_margin:
                out.append(("in", r.htlc_id))
        return out

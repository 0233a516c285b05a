"""BOLT 2 "Committing Updates So Far: commitment_signed" and "Completing the Transition to the
Updated State: revoke_and_ack": signing the peer's next commitment with our pending updates,
checking every signature of theirs on ours, revoking our old commitment and checking their
revocation (the per-commitment secrets, BOLT 3), with the monitor updates each step gives.

Also what the node asks between messages (needs_commitment, peer_owes_commitment,
only_settlements_pending) and the work it may do ahead while it waits (precompute,
speculate). The transactions themselves are built by :mod:`lncli.proto.commitment_tx`; the
balances and HTLCs of each commitment come from :mod:`lncli.channel.updates`.
"""

from __future__ import annotations

from lncli.bitcoin.ecdsa import compact_to_der, der_to_compact, sign, verify
from lncli.channel import events as ev
from lncli.channel.common import ProtocolError
from lncli.channel.common import msg as _msg
from lncli.channel.events import Outcome
from lncli.channel.params import ChannelError
from lncli.channel.state import LOCAL, REMOTE, ChannelState
from lncli.channel.updates import _REMOVALS
from lncli.errors import DecodeError
from lncli.proto import commitment_tx
from lncli.proto.commitment_tx import BuiltCommitment, commitment_keys, htlc_vouts
from lncli.proto.keys import derive_privkey, per_commitment_point
from lncli.proto.shachain import ShachainError
from lncli.proto.wire import Message

__all__ = ["CommitmentDanceMixin"]

S = ChannelState


class CommitmentDanceMixin:
    """commitment_signed and revoke_and_ack of a :class:`~lncli.channel.channel.Channel`."""

    #: Set by each commitment_signed we accept (not stored): whether only fulfills entered our
    #: commitment with it, so that our revoke_and_ack may wait for our next commitment_signed.
    revocation_can_wait = False

    #: BOLT 3 building, bound as methods (the channel is their ChannelView): a commitment of
    #: one side from its balances, HTLCs, keys and feerate; an HTLC tx of one of its outputs
    _build_commitment = commitment_tx.build_commitment
    _htlc_tx = commitment_tx.htlc_tx

    # ------------------------- a commitment's keys, txs and signatures

    def _keys(self, side: int, ctn: int):
        point = self.secrets.per_commitment_point(ctn) if side == LOCAL else self.remote_points[ctn]
        cache = self.__dict__.setdefault("_keys_cache", {})
        keys = cache.get((side, point))
        if keys is None:
            while len(cache) > 8:
                del cache[next(iter(cache))]  # the oldest
            if side == LOCAL:
                keys = commitment_keys(point, self.local_basepoints, self.remote_basepoints)
            else:
                keys = commitment_keys(point, self.remote_basepoints, self.local_basepoints)
            cache[(side, point)] = keys
        return keys

    def _htlc_privkey(self, per_commitment_point: bytes) -> bytes:
        """Our htlc private key for a commitment with this per_commitment_point (cached)."""
        cache = self.__dict__.get("_htlc_privkeys")
        if cache is None:
            cache = self._htlc_privkeys = {}
        k = cache.get(per_commitment_point)
        if k is None:
            while len(cache) > 8:
                del cache[next(iter(cache))]  # the oldest
            k = cache[per_commitment_point] = derive_privkey(self.secrets.htlc_basepoint_secret, per_commitment_point)
        return k

    def precompute(self) -> None:
        """Derive the keys of both sides' next commitments ahead of time (cached), so that
        signing or checking them does not wait for the elliptic-curve work. The node calls this
        while it waits for the peer; nothing else changes."""
        if self.state not in (S.NORMAL, S.SHUTDOWN) or self.remote_basepoints is None:
            return
        keys = self._keys(LOCAL, self.local_ctn + 1)
        self._htlc_privkey(keys.per_commitment_point)
        # the next_per_commitment_point of our next revoke_and_ack (sent once local_ctn + 1 is ours)
        self.secrets.per_commitment_point(self.local_ctn + 2)
        if self.remote_ctn + 1 in self.remote_points:
            keys = self._keys(REMOTE, self.remote_ctn + 1)
            self._htlc_privkey(keys.per_commitment_point)
        self.speculate()

    def speculate(self) -> None:
        """Prepare the commitments of the exchange the usual flow brings next, while the peer
        works: the commitment_signed the peer owes us (its updates not in our commitment yet, and
        ours it will have acknowledged), then the one we answer with. Their txs, sighashes and our
        signatures land in the :meth:`_built` memo; a message that brings something else simply
        misses it. The slots are assigned as those messages would assign them, then restored:
        nothing changes."""
        if self.state not in (S.NORMAL, S.SHUTDOWN) or self.remote_basepoints is None:
            return
        saved = []

        def assign(slot: list, i: int, value: int) -> None:
            saved.append((slot, i, slot[i]))
            slot[i] = value

        try:
            new = self.local_ctn + 1
            for ref in self.remote_log:  # their commitment_signed covers their updates...
                slot = self._slot(ref, False)
                if slot[LOCAL] is None:
                    assign(slot, LOCAL, new)
            for ref in self.local_log:  # ...and ours that their revoke_and_ack acknowledges
                slot = self._slot(ref, True)
                if slot[LOCAL] is None and slot[REMOTE] is not None:
                    assign(slot, LOCAL, new)
            if not saved:
                return  # nothing owed to us
            b = self._built(LOCAL, new)
            b.funding_sighash(self.funding_script, self.funding_satoshis)
            b.htlc_txs(self, LOCAL)
            # our revoke_and_ack, then our commitment_signed with everything pending for them
            nxt = self.remote_ctn + 1
            if self.remote_revoked < self.remote_ctn or nxt not in self.remote_points:
                return  # we may not sign before their revoke_and_ack (it would move both)
            for ref in self.remote_log:
                slot = self._slot(ref, False)
                if slot[REMOTE] is None:
                    assign(slot, REMOTE, nxt)
            for ref in self.local_log:
                slot = self._slot(ref, True)
                if slot[REMOTE] is None:
                    assign(slot, REMOTE, nxt)
            b = self._built(REMOTE, nxt)
            if b.sigs is None:
                b.sigs = self._remote_signatures(b)
        finally:
            for slot, i, value in reversed(saved):
                slot[i] = value

    def commitment(self, side: int, ctn: int):
        """Build commitment ``ctn`` of ``side`` (LOCAL: ours; REMOTE: theirs).
        Returns (CommitmentTx, CommitmentKeys)."""
        b = self._built(side, ctn)
        return b.ctx, b.keys

    def _built(self, side: int, ctn: int) -> BuiltCommitment:
        """Commitment ``ctn`` of ``side`` with what signing or checking it needs, memoised by
        everything it is built from (balances, HTLCs, feerate, per-commitment point; the rest is
        fixed for the channel), so that :meth:`speculate` can prepare it ahead of time."""
        ours, theirs, live = self.balances(side, ctn)
        keys = self._keys(side, ctn)
        feerate = self.feerate(side, ctn)
        key = (side, ctn, ours, theirs, feerate, keys.per_commitment_point, self.funding_txid, self.funding_output_index,
               tuple([(r.htlc_id, r.outbound, r.amount_msat, r.payment_hash, r.cltv_expiry) for r in live]))
        memo = self.__dict__.get("_built_memo")
        if memo is None:
            memo = self.__dict__["_built_memo"] = {}
        b = memo.get(key)
        if b is None:
            b = BuiltCommitment(self._build_commitment(side, ctn, ours, theirs, live, keys, feerate), keys, feerate)
            while len(memo) >= 6:
                del memo[next(iter(memo))]  # the oldest
            memo[key] = b
        return b

    def _sign_remote_commitment(self, ctn: int) -> tuple[Message, object]:
        """Sign their commitment ``ctn`` and its HTLC txs: (commitment_signed, CommitmentTx)."""
        b = self._built(REMOTE, ctn)
        sigs = b.sigs
        if sigs is None:
            sigs = b.sigs = self._remote_signatures(b)
        msg = _msg(
            "commitment_signed",
            channel_id=self.channel_id,
            signature=sigs[0],
            htlc_signature=sigs[1],
            tlvs={},
        )
        return msg, b.ctx

    def _remote_signatures(self, b: BuiltCommitment) -> tuple[bytes, tuple]:
        """Our signatures (compact) on their commitment ``b`` and on its HTLC txs (RFC 6979:
        the same every time, so ``b`` keeps them)."""
        keys = b.keys
        sig = sign(self.secrets.funding_privkey, b.funding_sighash(self.funding_script, self.funding_satoshis))
        htlcs = b.htlc_txs(self, REMOTE)
        htlc_key = self._htlc_privkey(keys.per_commitment_point) if htlcs else None
        htlc_sigs = tuple(der_to_compact(sign(htlc_key, hsighash)) for _vout, _h, _htx, _hcache, hsighash in htlcs)
        return der_to_compact(sig), htlc_sigs

    def _verify_local_commitment(self, ctn: int, signature: bytes, htlc_signatures) -> object:
        """Check their signatures on our commitment ``ctn``; returns the CommitmentTx."""
        b = self._built(LOCAL, ctn)
        ctx, keys = b.ctx, b.keys
        try:
            der = compact_to_der(signature)
        except DecodeError:
            raise ProtocolError("commitment signature is not a valid signature") from None
        if not verify(self.remote_basepoints.funding_pubkey, b.funding_sighash(self.funding_script, self.funding_satoshis), der):
            raise ProtocolError(f"invalid commitment signature for our commitment {ctn}")
        htlcs = b.htlc_txs(self, LOCAL)
        if len(htlc_signatures) != len(htlcs):
            raise ProtocolError(f"expected {len(htlcs)} htlc_signature, got {len(htlc_signatures)}")
        htxs = []
        for (_vout, h, htx, hcache, hsighash), hsig in zip(htlcs, htlc_signatures):
            try:
                hder = compact_to_der(hsig)
            except DecodeError:
                raise ProtocolError("htlc_signature is not a valid signature") from None
            if not verify(keys.remote_htlc_pubkey, hsighash, hder):
                raise ProtocolError(f"invalid htlc_signature for HTLC {h.htlc_id} on our commitment {ctn}")
            htxs.append((htx, hcache, hder))
        return ctx, keys, b.cache, der, htxs

    def _holder_update(self, built=None) -> ev.LatestHolderCommitment:
        """The monitor update for our latest commitment: the unsigned commitment and HTLC txs with
        the counterparty's (verified) signatures; the monitor signs them only if it needs them.
        ``built``: what ``_verify_local_commitment`` returned for it."""
        ctn = self.local_ctn
        if built is None:
            ctx, keys = self.commitment(LOCAL, ctn)
            their_sig, htxs = compact_to_der(self.local_sigs["signature"]), None
        else:
            ctx, keys, _cache, their_sig, htxs = built
        out = []
        vouts = htlc_vouts(ctx)
        if vouts:
            outputs = ctx.outputs
            if htxs is None:
                feerate = self.feerate(LOCAL, ctn)
                txid = ctx.tx.txid()
            for i, ((vout, h), hsig) in enumerate(zip(vouts, self.local_sigs["htlc_signatures"])):
                if htxs is not None:
                    htx, _hcache, remote_sig = htxs[i]
                else:
                    remote_sig = compact_to_der(hsig)
                    htx = self._htlc_tx(LOCAL, txid, vout, h, keys, feerate)
                out.append(
                    ev.HolderHtlcTx(
                        h.htlc_id, h.offered, h.payment_hash, h.cltv_expiry, htx, outputs[vout].witness_script,
                        remote_sig, None, False,
                    )
                )
        return ev.LatestHolderCommitment(self._update_id(), ctn, ctx.tx, tuple(out), their_sig)

    def _counterparty_update(self, ctn: int, ctx) -> ev.LatestCounterpartyCommitment:
        htlcs = tuple(o.htlc for o in ctx.outputs if o.htlc is not None) + tuple(ctx.trimmed_htlcs)
        return ev.LatestCounterpartyCommitment(
            update_id=self._update_id(),
            txid=ctx.tx.txid(),
            commitment_number=ctn,
            per_commitment_point=self.remote_points[ctn],
            htlcs=htlcs,
            feerate_per_kw=self.feerate(REMOTE, ctn),
            to_local_sat=ctx.outputs[ctx.to_local_vout].value_sat if ctx.to_local_vout is not None else 0,
            to_remote_sat=ctx.outputs[ctx.to_remote_vout].value_sat if ctx.to_remote_vout is not None else 0,
        )

    # ------------------------------------------------- what is pending

    def needs_commitment(self) -> bool:
        """Whether ``send_commitment`` would sign something new now."""
        if self.state not in (S.NORMAL, S.SHUTDOWN) or self.remote_revoked < self.remote_ctn:
            return False
        return self._pending_remote_changes()

    def _pending_for_remote(self):
        """The updates the peer's next commitment would add, in order: (ours, ref) for each of
        our updates it does not cover yet, then each of theirs we acknowledged since."""
        for ref in self.local_log:
            if self._slot(ref, True)[REMOTE] is None:
                yield True, ref
        for ref in self.remote_log:
            c = self._slot(ref, False)[REMOTE]
            if c is not None and c > self.remote_ctn:
                yield False, ref

    def _pending_remote_changes(self) -> bool:
        return next(self._pending_for_remote(), None) is not None

    def peer_owes_commitment(self) -> bool:
        """Whether the peer sent updates other than fulfills that no commitment_signed of theirs
        covers yet: in the usual flow their commitment_signed is on its way, and ours can wait
        for it (then one of ours covers our updates and theirs). A fulfill does not count: its
        commitment may be batched (:meth:`only_settlements_pending`), and the preimage it carries
        is all the payer waits for."""
        for ref in self.remote_log:
            if ref[0] != "fulfill" and self._slot(ref, False)[LOCAL] is None:
                return True
        return False

    def only_settlements_pending(self) -> bool:
        """Whether the peer's next commitment would change only by removing HTLCs: ones we offered
        that the peer fulfilled or failed, or ones the peer offered that we fulfilled (no add, no
        fee, none of our fails: a fail reaches its sender only once irrevocable). Signing it is not
        urgent, so the node may wait a moment and sign it together with whatever comes next
        (commitment batching): the next payment's add then rides in one commitment with the
        removals of the last one."""
        found = False
        for ours, ref in self._pending_for_remote():
            if ref[0] != "fulfill" if ours else ref[0] not in _REMOVALS:
                return False
            found = True
        return found

    # ----------------------------------------------- commitment_signed

    def send_commitment(self) -> Outcome:
        """Sign their next commitment with every pending update."""
        if self.state not in (S.NORMAL, S.SHUTDOWN):
            raise ChannelError(f"cannot send commitment_signed in channel state {self.state.value}")
        if self.remote_revoked < self.remote_ctn:
            raise ChannelError("waiting for revoke_and_ack before signing another commitment")
        if not self._pending_remote_changes():
            raise ChannelError("no updates to commit")
        new = self.remote_ctn + 1
        for ref in self.local_log:
            slot = self._slot(ref, True)
            if slot[REMOTE] is None:
                slot[REMOTE] = new
        self.remote_ctn = new
        msg, ctx = self._sign_remote_commitment(new)
        self.commit_after_revoke = True
        out = Outcome(messages=[msg])
        out.monitor_updates.append(self._counterparty_update(new, ctx))
        return out

    def on_commitment_signed(self, msg: Message) -> Outcome:
        """Verify every signature against our next commitment; reply revoke_and_ack."""
        self._expect(msg, S.NORMAL, S.SHUTDOWN)
        new = self.local_ctn + 1
        assigned = []
        for ref in self.remote_log:
            slot = self._slot(ref, False)
            if slot[LOCAL] is None:
                slot[LOCAL] = new
                assigned.append(slot)
        entered = [ref for ref in self.local_log if self._slot(ref, True)[LOCAL] == new]
        changed = bool(assigned) or bool(entered)
        try:
            if not changed:
                raise ProtocolError("commitment_signed without any update")
            built = self._verify_local_commitment(new, msg.signature, msg.htlc_signature)
        except ProtocolError:
            for slot in assigned:
                slot[LOCAL] = None
            raise
        self.local_sigs = {"signature": msg.signature, "htlc_signatures": list(msg.htlc_signature)}
        self.local_ctn = new
        # only fulfills entered: our revoke_and_ack lets the peer make no progress (the preimage
        # went with the update), so the node may send it with its next commitment_signed
        self.revocation_can_wait = all(ref[0] == "fulfill" for ref in entered) and all(
            self._slot(ref, False)[LOCAL] != new or ref[0] == "fulfill" for ref in self.remote_log
        )
        out = Outcome()
        out.monitor_updates.append(self._holder_update(built))
        # revoke_and_ack: their updates now enter their next commitment
        for ref in self.remote_log:
            slot = self._slot(ref, False)
            if slot[REMOTE] is None:
                slot[REMOTE] = self.remote_ctn + 1
        out.messages.append(self._revoke_and_ack_msg())
        self.commit_after_revoke = False
        self._prune()
        return out.extend(self._maybe_start_closing())

    # -------------------------------------------------- revoke_and_ack

    def _revoke_and_ack_msg(self) -> Message:
        return _msg(
            "revoke_and_ack",
            channel_id=self.channel_id,
            per_commitment_secret=self.secrets.per_commitment_secret(self.local_ctn - 1),
            next_per_commitment_point=self.secrets.per_commitment_point(self.local_ctn + 1),
        )

    def on_revoke_and_ack(self, msg: Message) -> Outcome:
        self._expect(msg, S.NORMAL, S.SHUTDOWN, S.NEGOTIATING_CLOSING)
        if self.remote_revoked >= self.remote_ctn:
            raise ProtocolError("unexpected revoke_and_ack: no commitment awaits revocation")
        k = self.remote_revoked
        secret = bytes(msg.per_commitment_secret)
        try:
            point = per_commitment_point(secret)
        except DecodeError:
            raise ProtocolError("revoke_and_ack per_commitment_secret is not a valid secret") from None
        if point != self.remote_points[k]:
            raise ProtocolError(f"revoke_and_ack secret does not match the per_commitment_point of commitment {k}")
        try:
            self.remote_store.insert_commitment_secret(secret, k)
        except ShachainError as e:
            raise ProtocolError(f"revoke_and_ack secret is inconsistent with earlier secrets: {e}") from None
        self.remote_points[k + 2] = bytes(msg.next_per_commitment_point)
        self.remote_points.pop(k, None)
        self.remote_revoked = k + 1
        out = Outcome()
        out.monitor_updates.append(ev.CommitmentSecret(self._update_id(), k, secret))
        # our updates they have now acked enter our next commitment
        for ref in self.local_log:
            slot = self._slot(ref, True)
            if slot[LOCAL] is None and slot[REMOTE] is not None and slot[REMOTE] <= self.remote_revoked:
                slot[LOCAL] = self.local_ctn + 1
        self._drop_onions()
        # their updates in the commitment just made current are now irrevocable
        for kind, key in self.remote_log:
            if kind == "fee":
                continue
            if kind == "add":
                r = self.received[key]
                if r.add_ctn[REMOTE] == k + 1:
                    out.events.append(
                        ev.HtlcReceived(r.htlc_id, r.amount_msat, r.payment_hash, r.cltv_expiry, r.onion_routing_packet)
                    )
            else:
                r = self.offered[key]
                if r.remove_ctn[REMOTE] == k + 1 and kind != "fulfill":
                    rm = r.removal
                    out.events.append(
                        ev.HtlcFailed(
                            r.htlc_id,
                            r.payment_hash,
                            reason=rm.get("reason"),
                            failure_code=rm.get("failure_code"),
                            sha256_of_onion=rm.get("sha256_of_onion"),
                        )
                    )
        self._prune()
        out.extend(self._maybe_start_closing())
        return out

    def _drop_onions(self) -> None:
        """Forget the onions of our HTLCs that the peer has acknowledged (it revoked the commitment
        before the first one with the add): no channel_reestablish can ask for their
        update_add_htlc again. An incoming HTLC's onion goes when we settle it. The channel
        record, written at every step, then carries each 1366-byte onion only while needed."""
        revoked = self.remote_revoked
        for r in self.offered.values():
            if r.onion_routing_packet is not None:
                a = r.add_ctn[REMOTE]
                if a is not None and a <= revoked:
                    r.onion_routing_packet = None

    def _prune(self) -> None:
        """Fold HTLCs gone from every commitment we may still build into the base balance."""
        lc, rc = self.local_ctn, self.remote_revoked

        def done(slot) -> bool:
            a, b = slot
            return a is not None and a <= lc and b is not None and b <= rc

        for recs, outbound in ((self.offered, True), (self.received, False)):
            gone = [k for k, r in recs.items() if r.remove_ctn is not None and done(r.remove_ctn)]
            for k in gone:
                r = recs.pop(k)
                if r.removal["kind"] == "fulfill":
                    self.base_ours_msat += -r.amount_msat if outbound else r.amount_msat
        fees = self.fees
        keep_from = 0
        for i, f in enumerate(fees):
            if done(f["ctn"]):
                keep_from = i
        if keep_from:
            fees = self.fees = fees[keep_from:]
        offered, received = self.offered, self.received

        def keep(ref, ours):
            kind, key = ref
            if kind == "fee":
                for f in fees:
                    if f["seq"] == key:
                        return not done(f["ctn"])
                return False
            # ours: adds are in offered, removals in received; theirs: the other way round
            r = (offered if ours == (kind == "add") else received).get(key)
            if r is None:
                return False
            return not done(r.add_ctn if kind == "add" else r.remove_ctn)

        self.local_log = [r for r in self.local_log if keep(r, True)]
        self.remote_log = [r for r in self.remote_log if keep(r, False)]

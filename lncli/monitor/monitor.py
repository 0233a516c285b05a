"""``ChannelMonitor``: watches one channel's funding output and claims what is ours on chain.

Pure (after LDK's ``ChannelMonitor``): no I/O, no clock, no randomness. The channel state
machine feeds it the append-only log of ``lncli.channel.events.MonitorUpdate`` records through
:meth:`ChannelMonitor.apply` (strictly increasing ``update_id``); the chain feeds it blocks
through :meth:`ChannelMonitor.block_connected` / :meth:`ChannelMonitor.block_disconnected`,
which return :class:`Action` values for the caller to carry out (``lncli.monitor.watcher``).

What spent the funding output decides what we do:

(a) our latest holder commitment: sweep to_local once ``to_self_delay`` has passed (delayed key
    from our ``delayed_payment_basepoint`` secret and the per-commitment point); broadcast the
    HTLC-timeout txs at their ``cltv_expiry`` and the HTLC-success txs once we know the
    preimage; sweep their outputs after ``to_self_delay``;
(b) the counterparty's current or previous (unrevoked) commitment: sweep our to_remote (P2WPKH
    to our ``payment_basepoint``, option_static_remotekey; with anchors the CSV 1 P2WSH), claim
    the HTLCs they offered with the preimage and the ones we offered after ``cltv_expiry``,
    straight from their commitment;
(c) a revoked counterparty commitment (we hold its per-commitment secret): one justice tx
    sweeping to_local and every HTLC output with the revocation key (plus to_remote as in (b)),
    and a justice tx for the output of every second-stage HTLC tx the cheater confirms;
(d) anything else (a mutual close): nothing to claim; resolved once deep enough.

The planned transactions are a function of the state (confirmed spends and the height): each
block returns every transaction that should be in the mempool now (so the caller rebroadcasts
until they confirm), a :class:`WaitUntil` for each claim that is not yet valid, plus one-time
notices (:class:`FundingSpent`, :class:`PreimageLearned`, :class:`OfferedHtlcResolved` for each
HTLC we offered, claimed with its preimage or timed out (``lncli.monitor.htlc_resolution``),
:class:`Resolved`). A reorg only
removes confirmed spends at and above the fork height and the plan follows.

Our own commitment comes unsigned, with the counterparty's signatures (``LatestHolderCommitment``
from the channel, which verified them): the monitor signs it, and our side of its HTLC txs, only
when it needs them (:meth:`ChannelMonitor.signed_holder`: a force close, claims after our
commitment confirmed), as LDK's ChannelMonitor does. Updates written before carry the signed
txs and are used as they are.

Heights: a claim is offered for broadcast at the tip height where the mempool accepts it
(the next block could include it): a CSV-``d`` spend of an output confirmed at height ``h`` from
tip ``h + d - 1``; a locktime-``L`` tx from tip ``L``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

from lncli.bitcoin.script import hash160, p2wsh_script
from lncli.bitcoin.sighash import SIGHASH_ALL, SighashCache, p2wpkh_script_code
from lncli.bitcoin.tx import OutPoint, Transaction
from lncli.channel import events as ev
from lncli.errors import DecodeError, RefusedError
from lncli.monitor import record as _rec
from lncli.monitor.htlc_resolution import OfferedHtlcResolved, offered_htlc_outcomes
from lncli.monitor.record import CounterpartyCommitment, _Conf
from lncli.monitor.sweep import MIN_SWEEP_OUTPUT_SAT, SweepInput, sweep_tx
from lncli.proto import commitment as bolt3
from lncli.proto import justice
from lncli.proto.keys import commitment_number_from_tx, derive_privkey, per_commitment_point
from lncli.proto.scripts import (
    htlc_tx_output_script,
    to_local_script,
    to_remote_anchor_script,
    to_remote_script_pubkey,
)
from lncli.proto.shachain import RevocationStore, ShachainError

__all__ = [
    "ANTI_REORG_DELAY",
    "DEFAULT_FEERATE_PER_KW",
    "HOLDER_COMMITMENT",
    "COUNTERPARTY_COMMITMENT",
    "REVOKED_COMMITMENT",
    "UNKNOWN_COMMITMENT",
    "COOPERATIVE_CLOSE",
    "Action",
    "Broadcast",
    "WaitUntil",
    "FundingSpent",
    "PreimageLearned",
    "Resolved",
    "OfferedHtlcResolved",
    "MonitorUpdateError",
    "CounterpartyCommitment",
    "ChannelMonitor",
]

#: confirmations after which a resolution is final (and the monitor can be archived)
ANTI_REORG_DELAY = 6
DEFAULT_FEERATE_PER_KW = 2500
#: how many recent block hashes a monitor remembers
BLOCK_HASH_WINDOW = 144
_RBF_SEQUENCE = 0xFFFFFFFD

HOLDER_COMMITMENT = "holder_commitment"
COUNTERPARTY_COMMITMENT = "counterparty_commitment"
REVOKED_COMMITMENT = "revoked_commitment"
UNKNOWN_COMMITMENT = "unknown_commitment"
COOPERATIVE_CLOSE = "cooperative_close"


class MonitorUpdateError(RefusedError):
    """An update the monitor cannot take (out of order, for another channel, inconsistent)."""


# --------------------------------------------------------------------------------- actions


class Action:
    """What the monitor asks its caller to do or know."""


@dataclass(frozen=True)
class Broadcast(Action):
    """Get ``tx`` into the mempool (again, if it is already there: it is not yet confirmed)."""

    tx: Transaction
    reason: str


@dataclass(frozen=True)
class WaitUntil(Action):
    """A claim becomes valid at tip ``height`` (it will then come as a :class:`Broadcast`)."""

    height: int
    reason: str


@dataclass(frozen=True)
class FundingSpent(Action):
    """The funding output was spent by ``txid`` at ``height``; ``kind`` says by what."""

    txid: bytes
    kind: str
    height: int


@dataclass(frozen=True)
class PreimageLearned(Action):
    """A preimage seen in a witness on chain (settle the incoming side of a forward)."""

    payment_hash: bytes
    payment_preimage: bytes


@dataclass(frozen=True)
class Resolved(Action):
    """Everything we could claim is claimed, ``ANTI_REORG_DELAY`` deep: stop watching."""

    kind: str
    funding_spend_txid: bytes
    height: int


# --------------------------------------------------------------------------------- state


class _Plan:
    def __init__(self) -> None:
        self.actions: list[Action] = []
        self.pending: list[str] = []

    def broadcast(self, tx: Transaction | None, reason: str) -> None:
        if tx is not None:  # None: not worth its fee
            self.actions.append(Broadcast(tx, reason))

    def wait(self, height: int, reason: str) -> None:
        self.actions.append(WaitUntil(height, reason))

    def waiting_for(self, reason: str) -> None:
        self.pending.append(reason)

    @property
    def done(self) -> bool:
        return not self.actions and not self.pending


class ChannelMonitor:
    """The chain watcher of one channel; see the module docstring.

    ``secrets`` are our ``lncli.channel.keys.ChannelSecrets`` for the channel (never stored
    here); ``destination_script`` receives every sweep (it may be set later, before the first
    block that needs it); ``feerate_per_kw`` is the fee rate of our sweeps.
    """

    def __init__(
        self,
        channel_id: bytes,
        secrets,
        *,
        destination_script: bytes | None = None,
        feerate_per_kw: int = DEFAULT_FEERATE_PER_KW,
    ):
        self.channel_id = bytes(channel_id)
        self.secrets = secrets
        self.destination_script = destination_script
        self.feerate_per_kw = feerate_per_kw
        self.latest_update_id = 0
        self.setup: ev.ChannelSetup | None = None
        self.holder: ev.LatestHolderCommitment | None = None
        self.prev_holder: ev.LatestHolderCommitment | None = None
        self.counterparty: dict[int, CounterpartyCommitment] = {}
        self.revocations = RevocationStore()
        self.preimages: dict[bytes, bytes] = {}
        self.force_closed = False
        self.best_height: int | None = None
        self.resolved_height: int | None = None
        self._confirmed: dict[bytes, _Conf] = {}
        self._spent_by: dict[OutPoint, bytes] = {}
        self._watched: set[OutPoint] = set()
        self._block_hashes: dict[int, bytes] = {}  # recent blocks processed, to skip re-deliveries
        self._preimage_texts: dict[bytes, tuple[bytes, str]] = {}  # payment_hash -> (preimage, record text)
        self._setup_text: tuple[ev.ChannelSetup, str] | None = None
        self._signed: dict[int, tuple[ev.LatestHolderCommitment, ev.LatestHolderCommitment]] = {}
        self._told: set[int] = set()  # HTLCs we offered whose OfferedHtlcResolved was returned (not stored)

    # ------------------------------------------------------------------ updates

    @property
    def funding_outpoint(self) -> OutPoint | None:
        if self.setup is None:
            return None
        return OutPoint(self.setup.funding_txid, self.setup.funding_output_index)

    def check_update(self, update: ev.MonitorUpdate) -> None:
        """Raise :class:`MonitorUpdateError` if :meth:`apply` would refuse ``update``."""
        self._check(update, trial=True)

    def _check(self, update: ev.MonitorUpdate, trial: bool) -> None:
        """:meth:`check_update`; without ``trial`` the shachain check of a CommitmentSecret is left
        to :meth:`apply`'s insert (which checks before it changes anything)."""
        if not isinstance(update, ev.MonitorUpdate):
            raise MonitorUpdateError(f"not a monitor update: {type(update).__name__}")
        if update.update_id <= self.latest_update_id:
            raise MonitorUpdateError(
                f"monitor update {update.update_id} is not after update {self.latest_update_id}"
            )
        if isinstance(update, ev.ChannelSetup):
            if self.setup is not None:
                raise MonitorUpdateError("the channel is already set up")
            if update.channel_id != self.channel_id:
                raise MonitorUpdateError("ChannelSetup is for another channel")
            if update.local_basepoints.revocation_basepoint != self.secrets.revocation_basepoint:
                raise MonitorUpdateError("ChannelSetup basepoints do not match the channel secrets")
            return
        if self.setup is None:
            raise MonitorUpdateError(f"{type(update).__name__} before ChannelSetup")
        if isinstance(update, ev.CommitmentSecret):
            expected = self.revocations.next_commitment_number
            if update.commitment_number != expected:
                raise MonitorUpdateError(
                    f"secret for commitment {update.commitment_number}, expected commitment {expected}"
                )
            if trial:
                copy = RevocationStore.from_bytes(self.revocations.to_bytes())
                try:
                    copy.insert_commitment_secret(update.secret, update.commitment_number)
                except ShachainError as e:
                    raise MonitorUpdateError(f"inconsistent commitment secret: {e}") from None
            info = self.counterparty.get(update.commitment_number)
            if info is not None and per_commitment_point(update.secret) != info.per_commitment_point:
                raise MonitorUpdateError("commitment secret does not match the commitment's per_commitment_point")
        elif isinstance(update, ev.PaymentPreimage):
            if hashlib.sha256(update.payment_preimage).digest() != update.payment_hash:
                raise MonitorUpdateError("payment_preimage does not hash to payment_hash")

    def apply(self, update: ev.MonitorUpdate) -> None:
        """Take one update; :class:`MonitorUpdateError` (state unchanged) if it is refused."""
        self._check(update, trial=False)
        if isinstance(update, ev.ChannelSetup):
            self.setup = update
            self._rebuild_chain_index()
        elif isinstance(update, ev.LatestHolderCommitment):
            if self.holder is not None and update.commitment_number != self.holder.commitment_number:
                self.prev_holder = self.holder
            self.holder = update
        elif isinstance(update, ev.LatestCounterpartyCommitment):
            self.counterparty[update.commitment_number] = CounterpartyCommitment(
                update.commitment_number,
                update.txid,
                update.per_commitment_point,
                tuple(update.htlcs),
                update.feerate_per_kw,
            )
        elif isinstance(update, ev.CommitmentSecret):
            try:  # checks the secret against the stored ones before storing anything
                self.revocations.insert_commitment_secret(update.secret, update.commitment_number)
            except ShachainError as e:
                raise MonitorUpdateError(f"inconsistent commitment secret: {e}") from None
            info = self.counterparty.get(update.commitment_number)
            if info is not None:
                if not info.htlcs:
                    del self.counterparty[update.commitment_number]  # the secret rebuilds everything
                else:  # kept for good: its snapshot text now rather than all at the next snapshot
                    _ = info.record_text
        elif isinstance(update, ev.PaymentPreimage):
            self.preimages[update.payment_hash] = update.payment_preimage
            _rec.preimage_entry(self, update.payment_hash, update.payment_preimage)
        elif isinstance(update, ev.ChannelForceClosed):
            self.force_closed = True
        self.latest_update_id = update.update_id

    # ------------------------------------------------------------------ blocks

    def block_connected(self, block, height: int | None = None) -> list[Action]:
        """Process ``block`` (at ``height``, default ``block.height``). A height at or below the
        best one seen means a reorg: the blocks from there are disconnected first."""
        height = block.height if height is None else height
        block_hash = getattr(block, "hash", None)
        if self.best_height is not None and height <= self.best_height:
            if block_hash is not None and self._block_hashes.get(height) == block_hash:
                return []  # delivered again (another subscriber needed older blocks): seen already
            self.block_disconnected(height)
        self.best_height = height
        if block_hash is not None:
            self._block_hashes[height] = block_hash
            for h in [h for h in self._block_hashes if h <= height - BLOCK_HASH_WINDOW]:
                del self._block_hashes[h]
        if self.setup is None:
            return []
        notices: list[Action] = []
        for tx in block.txs:
            spends = [i for i in tx.inputs if i.prevout in self._watched]
            if not spends or tx.is_coinbase():
                continue
            txid = tx.txid()
            if txid in self._confirmed:
                continue
            fo = self.funding_outpoint
            if any(i.prevout == fo for i in spends):
                level = 1
            else:
                level = 1 + max(self._confirmed[i.prevout.txid].level for i in spends)
            self._record(_Conf(tx, txid, height, level))
            if level == 1:
                notices.append(FundingSpent(txid, self._classify(tx)[0], height))
            notices += self._learn_preimages(tx)
        if self.resolved_height is not None:
            return notices
        plan = self._plan(height)
        actions = notices + plan.actions + self._offered_outcomes(height)
        spend = self.funding_spend
        if plan.done and spend is not None:
            settled = max(c.height for c in self._confirmed.values())
            if height >= settled + ANTI_REORG_DELAY - 1:
                self.resolved_height = height
                actions.append(Resolved(self._classify(spend.tx)[0], spend.txid, height))
        return actions

    def _offered_outcomes(self, height: int) -> list[Action]:
        spend = self.funding_spend
        if spend is None:
            return []
        kind, info = self._classify(spend.tx)
        if kind == REVOKED_COMMITMENT:  # its HTLCs, if it had any (None: none were kept)
            info = self.counterparty.get(info)
        elif kind not in (HOLDER_COMMITMENT, COUNTERPARTY_COMMITMENT):
            return []  # a mutual close has no HTLC; an unknown commitment: nothing we can tell
        return offered_htlc_outcomes(self, spend, info, holder=kind == HOLDER_COMMITMENT, height=height,
                                     depth=ANTI_REORG_DELAY)

    def block_disconnected(self, height: int) -> None:
        """The blocks from ``height`` up are no longer in the best chain."""
        for txid in [t for t, c in self._confirmed.items() if c.height >= height]:
            del self._confirmed[txid]
        for h in [h for h in self._block_hashes if h >= height]:
            del self._block_hashes[h]
        self._rebuild_chain_index()
        if self.best_height is not None:
            self.best_height = min(self.best_height, height - 1)
        if self.resolved_height is not None and self.resolved_height >= height:
            self.resolved_height = None

    @property
    def is_resolved(self) -> bool:
        return self.resolved_height is not None

    @property
    def funding_spend(self) -> _Conf | None:
        fo = self.funding_outpoint
        txid = self._spent_by.get(fo) if fo is not None else None
        return self._confirmed[txid] if txid is not None else None

    def plan(self, height: int | None = None) -> list[Action]:
        """The broadcasts and waits for the current state at ``height`` (default: best height)."""
        h = self.best_height if height is None else height
        return [] if self.setup is None or h is None else self._plan(h).actions

    def _record(self, conf: _Conf) -> None:
        self._confirmed[conf.txid] = conf
        for i in conf.tx.inputs:
            if i.prevout in self._watched:
                self._spent_by[i.prevout] = conf.txid
        if conf.level <= 2:
            for vout in range(len(conf.tx.outputs)):
                self._watched.add(OutPoint(conf.txid, vout))

    def _rebuild_chain_index(self) -> None:
        self._spent_by = {}
        self._watched = set()
        if self.setup is not None:
            self._watched.add(self.funding_outpoint)
        for conf in sorted(self._confirmed.values(), key=lambda c: (c.level, c.height)):
            self._record(conf)

    def _htlc_hashes(self) -> set[bytes]:
        hashes = set()
        for hc in (self.holder, self.prev_holder):
            if hc is not None:
                hashes.update(h.payment_hash for h in hc.htlc_txs)
        for info in self.counterparty.values():
            hashes.update(h.payment_hash for h in info.htlcs)
        return hashes

    def _learn_preimages(self, tx: Transaction) -> list[Action]:
        hashes = None
        out = []
        for txin in tx.inputs:
            for item in txin.witness:
                if len(item) != 32:
                    continue
                if hashes is None:
                    hashes = self._htlc_hashes()
                h = hashlib.sha256(item).digest()
                if h in hashes and h not in self.preimages:
                    self.preimages[h] = item
                    out.append(PreimageLearned(h, item))
        return out

    # ------------------------------------------------------------------ what spent the funding

    def _classify(self, tx: Transaction) -> tuple[str, Any]:
        txid = tx.txid()
        for hc in (self.holder, self.prev_holder):
            if hc is not None and hc.tx.txid() == txid:
                return HOLDER_COMMITMENT, hc
        try:
            n = commitment_number_from_tx(tx.locktime, tx.inputs[0].sequence, self.setup.obscure_factor)
        except DecodeError:
            return COOPERATIVE_CLOSE, None
        if n < self.revocations.next_commitment_number:
            return REVOKED_COMMITMENT, n
        info = self.counterparty.get(n)
        if info is not None and info.txid == txid:
            return COUNTERPARTY_COMMITMENT, info
        return UNKNOWN_COMMITMENT, None

    def _plan(self, height: int) -> _Plan:
        plan = _Plan()
        spend = self.funding_spend
        if spend is None:
            if self.force_closed and self.holder is not None:
                try:
                    plan.broadcast(self.signed_holder().tx, "our latest commitment (force close)")
                except RefusedError as e:
                    plan.waiting_for(f"a broadcastable commitment: {e}")
            return plan
        if self.destination_script is None:
            plan.waiting_for("a destination script for the sweeps")
            return plan
        kind, info = self._classify(spend.tx)
        if kind == HOLDER_COMMITMENT:
            try:
                info = self.signed_holder(info)
            except RefusedError as e:
                plan.waiting_for(f"our HTLC txs: {e}")
                return plan
            self._plan_holder(plan, spend, info, height)
        elif kind == COUNTERPARTY_COMMITMENT:
            self._plan_to_remote(plan, spend)
            self._plan_counterparty_htlcs(plan, spend, info, height)
        elif kind == REVOKED_COMMITMENT:
            self._plan_to_remote(plan, spend)
            self._plan_revoked(plan, spend, info)
        elif kind == UNKNOWN_COMMITMENT:
            self._plan_to_remote(plan, spend)
        return plan

    # (a) our commitment ------------------------------------------------------------------

    def signed_holder(self, holder: ev.LatestHolderCommitment | None = None) -> ev.LatestHolderCommitment:
        """``holder`` (default: our latest commitment) with its commitment tx fully signed and our
        signature on each HTLC tx (HTLC-timeout txs fully signed; HTLC-success txs are completed
        with the preimage when claimed). Signed once per commitment, on demand: the channel hands
        over the unsigned txs with the counterparty's signatures, which are checked here again
        (RefusedError if one does not verify: there is nothing valid to broadcast). An update
        written with signed txs is returned as it is."""
        hc = self.holder if holder is None else holder
        if hc is None:
            raise RefusedError("no holder commitment yet")
        if hc.remote_signature is None and all(h.local_signature is not None for h in hc.htlc_txs):
            return hc  # written signed
        hit = self._signed.get(hc.commitment_number)
        if hit is not None and hit[0] is hc:
            return hit[1]
        signed = self._sign_holder(hc)
        for n in [n for n, (u, _) in self._signed.items() if u is not self.holder and u is not self.prev_holder]:
            del self._signed[n]
        self._signed[hc.commitment_number] = (hc, signed)
        return signed

    def _sign_holder(self, hc: ev.LatestHolderCommitment) -> ev.LatestHolderCommitment:
        s, sec = self.setup, self.secrets
        if s is None:
            raise RefusedError("this monitor has no channel set up")
        n = hc.commitment_number
        tx = hc.tx
        if hc.remote_signature is not None:
            remote_funding = s.remote_basepoints.funding_pubkey
            cache = SighashCache(tx)
            if not bolt3.verify_input(
                tx, 0, s.funding_script, s.funding_satoshis, remote_funding, hc.remote_signature, cache=cache
            ):
                raise RefusedError(f"the counterparty's signature of our commitment {n} does not verify")
            ours = bolt3.sign_input(tx, 0, s.funding_script, s.funding_satoshis, sec.funding_privkey, cache=cache)
            tx = tx.with_witness(0, bolt3.funding_witness(ours, hc.remote_signature, sec.funding_pubkey, remote_funding))
        htlc_txs = []
        keys = priv = None
        remote_type = bolt3.htlc_remote_sighash_type(s.anchors)
        for h in hc.htlc_txs:
            if h.local_signature is not None:
                htlc_txs.append(h)
                continue
            if keys is None:
                pcp = sec.per_commitment_point(n)
                keys = bolt3.derive_commitment_keys(pcp, s.local_basepoints, s.remote_basepoints)
                priv = derive_privkey(sec.htlc_basepoint_secret, pcp)
            htx, ws = h.tx, h.witness_script
            try:
                amount = hc.tx.outputs[htx.inputs[0].prevout.vout].value_sat
            except IndexError:
                raise RefusedError(f"HTLC {h.htlc_id}'s tx does not spend an output of our commitment {n}") from None
            cache = SighashCache(htx)
            if not bolt3.verify_input(
                htx, 0, ws, amount, keys.remote_htlc_pubkey, h.remote_signature, remote_type, cache=cache
            ):
                raise RefusedError(f"the counterparty's signature of HTLC {h.htlc_id} on our commitment {n} does not verify")
            local = bolt3.sign_input(htx, 0, ws, amount, priv, SIGHASH_ALL, cache=cache)
            if h.offered:  # HTLC-timeout: complete now
                witness = bolt3.htlc_witness(
                    remote_sig_der=h.remote_signature, local_sig_der=local, witness_script=ws, anchors=s.anchors
                )
                htx = htx.with_witness(0, witness)
            htlc_txs.append(dataclasses.replace(h, tx=htx, local_signature=local, complete=h.offered))
        return dataclasses.replace(hc, tx=tx, htlc_txs=tuple(htlc_txs), remote_signature=None)

    def _plan_delayed(self, plan, op, amount, ws, priv, delay, conf_height, height, what) -> None:
        if op in self._spent_by:
            return
        ready = conf_height + delay - 1
        if height < ready:
            plan.wait(ready, f"{what}: to_self_delay of {delay} blocks")
            return
        inp = SweepInput(op, amount, ws, priv, delay, (None, b"", ws))
        plan.broadcast(sweep_tx([inp], self.destination_script, self.feerate_per_kw), f"sweep {what}")

    def _plan_holder(self, plan: _Plan, spend: _Conf, holder: ev.LatestHolderCommitment, height: int) -> None:
        s = self.setup
        pcp = self.secrets.per_commitment_point(holder.commitment_number)
        keys = bolt3.derive_commitment_keys(pcp, s.local_basepoints, s.remote_basepoints)
        delay = s.local_to_self_delay
        priv = derive_privkey(self.secrets.delayed_payment_basepoint_secret, pcp)
        ws = to_local_script(keys.revocation_pubkey, delay, keys.local_delayed_pubkey)
        spk = p2wsh_script(ws)
        for vout, out in enumerate(spend.tx.outputs):
            if out.script_pubkey == spk:
                op = OutPoint(spend.txid, vout)
                self._plan_delayed(plan, op, out.value_sat, ws, priv, delay, spend.height, height, "to_local of our commitment")
        out_ws = htlc_tx_output_script(keys.revocation_pubkey, delay, keys.local_delayed_pubkey)
        out_spk = p2wsh_script(out_ws)
        for h in holder.htlc_txs:
            op = h.tx.inputs[0].prevout
            name = f"HTLC-{'timeout' if h.offered else 'success'} tx of HTLC {h.htlc_id}"
            spender = self._spent_by.get(op)
            if spender is not None:
                conf = self._confirmed[spender]
                for vout, out in enumerate(conf.tx.outputs):
                    if out.script_pubkey == out_spk:  # ours: its output waits for to_self_delay
                        self._plan_delayed(
                            plan, OutPoint(spender, vout), out.value_sat, out_ws, priv, delay, conf.height, height,
                            f"output of our {name}",
                        )
                continue  # else the counterparty took it (preimage or timeout)
            if h.offered:
                if height >= h.cltv_expiry:
                    plan.broadcast(h.tx, f"our {name} (cltv_expiry {h.cltv_expiry})")
                else:
                    plan.wait(h.cltv_expiry, f"our {name}: cltv_expiry")
            else:
                tx = self._complete_success(h)
                if tx is None:
                    plan.waiting_for(f"the preimage of received HTLC {h.htlc_id} (or its timeout by the peer)")
                else:
                    plan.broadcast(tx, f"our {name}")

    def _complete_success(self, h: ev.HolderHtlcTx) -> Transaction | None:
        if h.complete:
            return h.tx
        preimage = self.preimages.get(h.payment_hash)
        if preimage is None:
            return None
        witness = bolt3.htlc_witness(
            remote_sig_der=h.remote_signature,
            local_sig_der=h.local_signature,
            witness_script=h.witness_script,
            anchors=self.setup.anchors,
            payment_preimage=preimage,
        )
        return h.tx.with_witness(0, witness)

    # (b) their commitment ----------------------------------------------------------------

    def _plan_to_remote(self, plan: _Plan, spend: _Conf) -> None:
        pub = self.secrets.payment_basepoint
        priv = self.secrets.payment_basepoint_secret
        if self.setup.anchors:
            ws = to_remote_anchor_script(pub)
            spk, code, seq, template = p2wsh_script(ws), ws, 1, (None, ws)
        else:
            spk = to_remote_script_pubkey(pub, False)
            code, seq, template = p2wpkh_script_code(hash160(pub)), _RBF_SEQUENCE, (None, pub)
        for vout, out in enumerate(spend.tx.outputs):
            op = OutPoint(spend.txid, vout)
            if out.script_pubkey == spk and op not in self._spent_by:
                inp = SweepInput(op, out.value_sat, code, priv, seq, template)
                plan.broadcast(sweep_tx([inp], self.destination_script, self.feerate_per_kw), "sweep our to_remote")

    def _plan_counterparty_htlcs(self, plan: _Plan, spend: _Conf, info: CounterpartyCommitment, height: int) -> None:
        s = self.setup
        pcp = info.per_commitment_point
        keys = bolt3.derive_commitment_keys(pcp, s.remote_basepoints, s.local_basepoints)
        priv = derive_privkey(self.secrets.htlc_basepoint_secret, pcp)
        seq = 1 if s.anchors else _RBF_SEQUENCE
        by_spk = {}
        for h in info.htlcs:
            ws = bolt3.htlc_witness_script(h, keys, s.anchors)
            by_spk[p2wsh_script(ws)] = (h, ws)
        for vout, out in enumerate(spend.tx.outputs):
            hit = by_spk.get(out.script_pubkey)
            op = OutPoint(spend.txid, vout)
            if hit is None or op in self._spent_by:
                continue
            h, ws = hit
            if h.offered:  # they offered it: ours with the preimage
                preimage = self.preimages.get(h.payment_hash)
                if preimage is None:
                    plan.waiting_for(f"the preimage of HTLC {h.htlc_id} they offered (or its timeout by them)")
                    continue
                inp = SweepInput(op, out.value_sat, ws, priv, seq, (None, preimage, ws))
                tx = sweep_tx([inp], self.destination_script, self.feerate_per_kw)
                plan.broadcast(tx, f"claim HTLC {h.htlc_id} they offered, with its preimage")
            else:  # we offered it: ours after cltv_expiry
                if height < h.cltv_expiry:
                    plan.wait(h.cltv_expiry, f"timeout of our HTLC {h.htlc_id} on their commitment")
                    continue
                inp = SweepInput(op, out.value_sat, ws, priv, seq, (None, b"", ws))
                tx = sweep_tx([inp], self.destination_script, self.feerate_per_kw, locktime=h.cltv_expiry)
                plan.broadcast(tx, f"time out our HTLC {h.htlc_id} on their commitment")

    # (c) their revoked commitment ----------------------------------------------------------

    def _revoked_keys(self, commitment_number: int):
        s = self.setup
        secret = self.revocations.get_commitment_secret(commitment_number)
        keys = bolt3.derive_commitment_keys(per_commitment_point(secret), s.remote_basepoints, s.local_basepoints)
        priv = justice.revocation_privkey(secret, self.secrets.revocation_basepoint_secret)
        info = self.counterparty.get(commitment_number)
        return keys, priv, (info.htlcs if info is not None else ())

    def _plan_revoked(self, plan: _Plan, spend: _Conf, commitment_number: int) -> None:
        s = self.setup
        keys, priv, htlcs = self._revoked_keys(commitment_number)
        found = justice.find_revoked_outputs(spend.tx, keys, htlcs, s.remote_to_self_delay, s.anchors)
        unspent = [o for o in found if o.outpoint not in self._spent_by]
        if unspent:
            plan.broadcast(
                self._sweep_revoked(unspent, priv),
                f"justice tx: revoked commitment {commitment_number} ({len(unspent)} outputs)",
            )
        out_ws = htlc_tx_output_script(keys.revocation_pubkey, s.remote_to_self_delay, keys.local_delayed_pubkey)
        out_spk = p2wsh_script(out_ws)
        seen = set()
        for o in found:
            spender = self._spent_by.get(o.outpoint)
            if spender is None or spender in seen:
                continue
            seen.add(spender)
            conf = self._confirmed[spender]
            second = [
                justice.RevokedOutput(OutPoint(spender, v), out.value_sat, out_ws, justice.HTLC_TX_OUTPUT)
                for v, out in enumerate(conf.tx.outputs)
                if out.script_pubkey == out_spk and OutPoint(spender, v) not in self._spent_by
            ]
            if second:
                plan.broadcast(self._sweep_revoked(second, priv), "justice tx: their second-stage HTLC tx")

    def _sweep_revoked(self, outputs, priv) -> Transaction | None:
        try:
            return justice.sweep_revoked_outputs(
                outputs,
                priv,
                feerate_per_kw=self.feerate_per_kw,
                destination_script=self.destination_script,
                min_output_sat=MIN_SWEEP_OUTPUT_SAT,
            )
        except RefusedError:
            return None

    def build_justice_tx(
        self,
        revoked_commitment_tx: Transaction,
        *,
        destination_script: bytes | None = None,
        feerate_per_kw: int | None = None,
    ) -> Transaction:
        """The signed justice tx for ``revoked_commitment_tx`` (whatever the chain holds):
        to_local and every HTLC output with the revocation key. RefusedError if the tx is not
        a revoked commitment of this channel or there is nothing worth sweeping."""
        if self.setup is None:
            raise RefusedError("this monitor has no channel set up")
        if not any(i.prevout == self.funding_outpoint for i in revoked_commitment_tx.inputs):
            raise RefusedError("the transaction does not spend this channel's funding output")
        kind, n = self._classify(revoked_commitment_tx)
        if kind != REVOKED_COMMITMENT:
            raise RefusedError(f"the transaction is not a revoked commitment of this channel ({kind})")
        dest = destination_script or self.destination_script
        if dest is None:
            raise RefusedError("no destination script")
        keys, priv, htlcs = self._revoked_keys(n)
        found = justice.find_revoked_outputs(
            revoked_commitment_tx, keys, htlcs, self.setup.remote_to_self_delay, self.setup.anchors
        )
        if not found:
            raise RefusedError(f"revoked commitment {n} has no output the revocation key can spend")
        return justice.sweep_revoked_outputs(
            found,
            priv,
            feerate_per_kw=self.feerate_per_kw if feerate_per_kw is None else feerate_per_kw,
            destination_script=dest,
        )

    # ------------------------------------------------------------------ persistence (lncli.monitor.record)

    def to_record(self) -> dict:
        """A JSON-able snapshot of everything but the secrets."""
        return _rec.to_record(self)

    def to_record_text(self) -> str:
        """The JSON text of :meth:`to_record`: what the store writes."""
        return _rec.to_record_text(self)

    @classmethod
    def from_record(cls, record: dict, secrets) -> ChannelMonitor:
        """Inverse of :meth:`to_record`; DecodeError on a malformed record."""
        return _rec.from_record(cls, record, secrets)

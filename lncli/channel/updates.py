"""BOLT 2 "Normal Operation", the updates: the HTLC ledger of a channel.

``update_add_htlc`` (BOLT 2 "Adding an HTLC"), ``update_fulfill_htlc``, ``update_fail_htlc`` and
``update_fail_malformed_htlc`` ("Removing an HTLC"), ``update_fee`` ("Updating Fees"), both as
sender and as receiver, with their checks; the :class:`HtlcRecord` of each HTLC; and the
balances, HTLCs and feerate of any commitment (side, number).

Update bookkeeping. Every update (an HTLC add, its removal, a fee change) records the
commitment number at which it entered our commitment (LOCAL) and theirs (REMOTE):

* an update *we* send enters their commitment when we send the next ``commitment_signed``
  (number ``remote_ctn + 1``) and ours when they revoke that commitment's predecessor
  (``local_ctn + 1``: the next ``commitment_signed`` they send covers it);
* an update *they* send enters our commitment with their next ``commitment_signed``
  (``local_ctn + 1``) and theirs when we send ``revoke_and_ack`` (``remote_ctn + 1``).

An HTLC is on commitment (side, n) when its add entered that side at or before n and its
removal did not. Balances, HTLC lists and the feerate of any commitment follow from that.
The commitment numbers themselves move in :mod:`lncli.channel.commitment_dance`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from lncli.channel import events as ev
from lncli.channel.common import ENC as _ENC
from lncli.channel.common import ProtocolError
from lncli.channel.common import ids as _ids
from lncli.channel.common import msg as _msg
from lncli.channel.events import Outcome
from lncli.channel.params import FEERATE_FLOOR_PER_KW, ChannelError
from lncli.channel.state import LOCAL, REMOTE, ChannelState, inbound_htlc_state, outbound_htlc_state
from lncli.proto import commitment as bolt3
from lncli.proto.commitment import Htlc
from lncli.proto.wire import Message

__all__ = ["HtlcRecord", "UpdatesMixin"]

S = ChannelState
_CLTV_LIMIT = 500_000_000
_BADONION = 0x8000
_ANCHORS_MSAT = 2 * bolt3.ANCHOR_OUTPUT_SAT * 1000
_REMOVALS = frozenset(("fulfill", "fail", "fail_malformed"))


def _sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


@dataclass
class HtlcRecord:
    """One HTLC and its progress. ``outbound``: offered by us."""

    htlc_id: int
    outbound: bool
    amount_msat: int
    payment_hash: bytes
    cltv_expiry: int
    onion_routing_packet: bytes | None  # None once no message can need it (Channel._drop_onions)
    add_ctn: list  # [local, remote] commitment numbers the add entered (None: not yet)
    remove_ctn: list | None = None  # same for the removal
    removal: dict | None = None  # {"kind": "fulfill"|"fail"|"fail_malformed", ...}

    def present(self, side: int, ctn: int) -> bool:
        a = self.add_ctn[side]
        if a is None or a > ctn:
            return False
        if self.remove_ctn is not None:
            r = self.remove_ctn[side]
            if r is not None and r <= ctn:
                return False
        return True

    def to_json(self) -> dict:
        removal = None
        if self.removal is not None:
            removal = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in self.removal.items()}
        return {
            "htlc_id": self.htlc_id,
            "outbound": self.outbound,
            "amount_msat": self.amount_msat,
            "payment_hash": self.payment_hash.hex(),
            "cltv_expiry": self.cltv_expiry,
            "onion_routing_packet": None if self.onion_routing_packet is None else self.onion_routing_packet.hex(),
            "add_ctn": list(self.add_ctn),
            "remove_ctn": None if self.remove_ctn is None else list(self.remove_ctn),
            "removal": removal,
        }

    def json_text(self) -> str:
        """``json.dumps(self.to_json(), separators=(",", ":"))``; the part up to the onion is
        cached on the record while those fields hold the same objects."""
        key = (self.htlc_id, self.outbound, self.amount_msat, self.payment_hash, self.cltv_expiry, self.onion_routing_packet)
        hit = self.__dict__.get("_json_head")
        if hit is None or hit[1] != _ids(key) or type(key[3]) is not bytes or not (key[5] is None or type(key[5]) is bytes):
            d = self.to_json()
            for k in ("add_ctn", "remove_ctn", "removal"):
                del d[k]
            hit = (key, _ids(key), _ENC(d)[:-1])
            self.__dict__["_json_head"] = hit
        removal = self.removal
        if removal is not None:
            removal = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in removal.items()}
        rc = self.remove_ctn
        return hit[2] + "," + _ENC({"add_ctn": list(self.add_ctn), "remove_ctn": None if rc is None else list(rc), "removal": removal})[1:]

    @classmethod
    def from_json(cls, d: dict) -> HtlcRecord:
        removal = d["removal"]
        if removal is not None:
            removal = {
                k: (bytes.fromhex(v) if k in ("payment_preimage", "reason", "sha256_of_onion") else v)
                for k, v in removal.items()
            }
        return cls(
            htlc_id=d["htlc_id"],
            outbound=d["outbound"],
            amount_msat=d["amount_msat"],
            payment_hash=bytes.fromhex(d["payment_hash"]),
            cltv_expiry=d["cltv_expiry"],
            onion_routing_packet=None if d["onion_routing_packet"] is None else bytes.fromhex(d["onion_routing_packet"]),
            add_ctn=list(d["add_ctn"]),
            remove_ctn=None if d["remove_ctn"] is None else list(d["remove_ctn"]),
            removal=removal,
        )


class UpdatesMixin:
    """The update messages of a :class:`~lncli.channel.channel.Channel` (its state is set up in
    ``Channel.__init__``)."""

    # ---------------------------- balances and feerate of a commitment

    def feerate(self, side: int, ctn: int) -> int:
        rate = self.fees[0]["feerate"]
        for f in self.fees:
            c = f["ctn"][side]
            if c is not None and c <= ctn:
                rate = f["feerate"]
        return rate

    def balances(self, side: int, ctn: int) -> tuple[int, int, list[HtlcRecord]]:
        """(our msat, their msat, HTLC records) on commitment ``ctn`` of ``side``, before fees."""
        ours = self.base_ours_msat
        theirs = self.funding_satoshis * 1000 - ours
        live: list[HtlcRecord] = []
        # An HTLC we offered moves from our balance to theirs when fulfilled; one we received the other way.
        offered_in, offered_out = self._htlcs_on(self.offered.values(), side, ctn, live)
        received_in, received_out = self._htlcs_on(self.received.values(), side, ctn, live)
        ours += -offered_in - offered_out + received_out
        theirs += -received_in - received_out + offered_out
        return ours, theirs, live

    @staticmethod
    def _htlcs_on(records, side: int, ctn: int, live: list) -> tuple[int, int]:
        """Of ``records`` (one direction's HTLCs): the msat still pending on commitment ``ctn`` of
        ``side`` (appended to ``live``) and the msat fulfilled by then. Failed ones count in neither."""
        pending = fulfilled = 0
        for rec in records:
            a = rec.add_ctn[side]
            if a is None or a > ctn:
                continue
            if rec.remove_ctn is not None and rec.remove_ctn[side] is not None and rec.remove_ctn[side] <= ctn:
                if rec.removal["kind"] == "fulfill":
                    fulfilled += rec.amount_msat
                continue
            pending += rec.amount_msat
            live.append(rec)
        return pending, fulfilled

    def _projected(self) -> tuple[int, int, list[HtlcRecord], int]:
        """Balances and live HTLCs counting every update sent or received so far."""
        ours = self.base_ours_msat
        theirs = self.funding_satoshis * 1000 - ours
        live = []
        for recs, outbound in ((self.offered, True), (self.received, False)):
            for rec in recs.values():
                if rec.removal is None:
                    live.append(rec)
                    if outbound:
                        ours -= rec.amount_msat
                    else:
                        theirs -= rec.amount_msat
                elif rec.removal["kind"] == "fulfill":
                    if outbound:
                        ours -= rec.amount_msat
                        theirs += rec.amount_msat
                    else:
                        theirs -= rec.amount_msat
                        ours += rec.amount_msat
        return ours, theirs, live, self.fees[-1]["feerate"]

    def _opener_fee_msat(self, live: list[HtlcRecord], feerate: int) -> int:
        """The largest commitment fee (+ anchors) the opener pays on either side's commitment."""
        worst = 0
        for side, cfg in ((LOCAL, self.local_config), (REMOTE, self.remote_config)):
            n = 0
            for r in live:
                h = Htlc(r.htlc_id, r.amount_msat, r.payment_hash, r.cltv_expiry, r.outbound == (side == LOCAL))
                if not bolt3.is_trimmed(h, cfg.dust_limit_satoshis, feerate, self.anchors):
                    n += 1
            worst = max(worst, bolt3.commitment_fee_sat(feerate, n, self.anchors))
        return worst * 1000 + (_ANCHORS_MSAT if self.anchors else 0)

    # -------------------------------------------------- adding an HTLC

    def can_add_htlcs(self) -> bool:
        return self.state == S.NORMAL and not self.shutdown_sent and not self.shutdown_received

    def add_htlc(
        self, amount_msat: int, payment_hash: bytes, cltv_expiry: int, onion_routing_packet: bytes
    ) -> Outcome:
        """Offer an HTLC (every sender-side BOLT 2 check; ChannelError refuses it)."""
        if not self.can_add_htlcs():
            closing = " (shutting down)" if self.state == S.NORMAL else ""
            raise ChannelError(f"cannot add an HTLC in channel state {self.state.value}{closing}")
        cfg = self.remote_config
        if amount_msat <= 0:
            raise ChannelError("HTLC amount must be positive")
        if amount_msat < cfg.htlc_minimum_msat:
            raise ChannelError(f"HTLC of {amount_msat} msat is below the peer's htlc_minimum_msat {cfg.htlc_minimum_msat}")
        if not 0 <= cltv_expiry < _CLTV_LIMIT:
            raise ChannelError(f"cltv_expiry {cltv_expiry} must be a block height below {_CLTV_LIMIT}")
        if len(payment_hash) != 32 or len(onion_routing_packet) != 1366:
            raise ChannelError("payment_hash must be 32 bytes and onion_routing_packet 1366 bytes")
        ours, theirs, live, feerate = self._projected()
        mine = [r for r in live if r.outbound]
        if len(mine) + 1 > cfg.max_accepted_htlcs:
            raise ChannelError(f"the peer accepts at most {cfg.max_accepted_htlcs} HTLCs from us")
        inflight = sum(r.amount_msat for r in mine) + amount_msat
        if inflight > cfg.max_htlc_value_in_flight_msat:
            raise ChannelError(
                f"{inflight} msat in flight would exceed the peer's max_htlc_value_in_flight_msat "
                f"{cfg.max_htlc_value_in_flight_msat}"
            )
        probe = HtlcRecord(self.next_htlc_id, True, amount_msat, bytes(payment_hash), cltv_expiry, b"", [None, None])
        fee = self._opener_fee_msat(live + [probe], feerate)
        after = ours - amount_msat - (fee if self.is_opener else 0)
        if after < cfg.channel_reserve_satoshis * 1000:
            raise ChannelError(
                f"insufficient balance: offering {amount_msat} msat would leave {max(after, 0)} msat, below "
                f"the channel reserve of {cfg.channel_reserve_satoshis} sat"
                + (" after the commitment fee" if self.is_opener else "")
            )
        if not self.is_opener and theirs - fee < 0:
            raise ChannelError("the peer (the opener) cannot pay the commitment fee for another HTLC")
        rec = probe
        rec.onion_routing_packet = bytes(onion_routing_packet)
        self.offered[rec.htlc_id] = rec
        self.next_htlc_id += 1
        self.local_log.append(["add", rec.htlc_id])
        return Outcome(messages=[self._update_message(["add", rec.htlc_id])])

    def on_update_add_htlc(self, msg: Message) -> Outcome:
        self._expect(msg, S.NORMAL, S.SHUTDOWN)
        if self.shutdown_received:
            raise ProtocolError("update_add_htlc after shutdown")
        if msg.id != self.remote_next_htlc_id:
            raise ProtocolError(f"update_add_htlc id {msg.id}, expected {self.remote_next_htlc_id}")
        cfg = self.local_config
        amount = msg.amount_msat
        if amount == 0 or amount < cfg.htlc_minimum_msat:
            raise ProtocolError(f"update_add_htlc amount {amount} msat is below htlc_minimum_msat {cfg.htlc_minimum_msat}")
        if msg.cltv_expiry >= _CLTV_LIMIT:
            raise ProtocolError(f"update_add_htlc cltv_expiry {msg.cltv_expiry} is not a block height")
        ours, theirs, live, feerate = self._projected()
        theirs_live = [r for r in live if not r.outbound]
        if len(theirs_live) + 1 > cfg.max_accepted_htlcs:
            raise ProtocolError(f"update_add_htlc exceeds max_accepted_htlcs {cfg.max_accepted_htlcs}")
        inflight = sum(r.amount_msat for r in theirs_live) + amount
        if inflight > cfg.max_htlc_value_in_flight_msat:
            raise ProtocolError(f"update_add_htlc exceeds max_htlc_value_in_flight_msat {cfg.max_htlc_value_in_flight_msat}")
        rec = HtlcRecord(
            msg.id, False, amount, bytes(msg.payment_hash), msg.cltv_expiry, bytes(msg.onion_routing_packet), [None, None]
        )
        # Lenient on fees: count only our HTLCs the sender had surely seen (crossing updates).
        seen = [r for r in live if not r.outbound or r.add_ctn[REMOTE] is not None]
        fee = self._opener_fee_msat(seen + [rec], feerate)
        after = theirs - amount - (0 if self.is_opener else fee)
        if after < cfg.channel_reserve_satoshis * 1000:
            raise ProtocolError(
                f"update_add_htlc of {amount} msat: the sender cannot afford it while keeping the channel reserve"
            )
        self.received[rec.htlc_id] = rec
        self.remote_next_htlc_id += 1
        self.remote_log.append(["add", rec.htlc_id])
        return Outcome()

    # ------------------------------------------------ removing an HTLC

    def _committed_inbound(self, htlc_id: int) -> HtlcRecord:
        rec = self.received.get(htlc_id)
        if rec is None:
            raise ChannelError(f"no incoming HTLC {htlc_id}")
        if rec.removal is not None:
            raise ChannelError(f"incoming HTLC {htlc_id} is already being removed")
        if not (rec.present(LOCAL, self.local_ctn) and rec.add_ctn[REMOTE] is not None and rec.add_ctn[REMOTE] <= self.remote_ctn):
            raise ChannelError(f"incoming HTLC {htlc_id} is not irrevocably committed yet")
        return rec

    def _remove_inbound(self, rec: HtlcRecord, removal: dict, kind: str) -> Outcome:
        rec.removal = removal
        rec.remove_ctn = [None, None]
        rec.onion_routing_packet = None  # settled: nothing reads it again (see _drop_onions)
        ref = [kind, rec.htlc_id]
        self.local_log.append(ref)
        return Outcome(messages=[self._update_message(ref)])

    def fulfill_htlc(self, htlc_id: int, payment_preimage: bytes) -> Outcome:
        rec = self._committed_inbound(htlc_id)
        if _sha256(payment_preimage) != rec.payment_hash:
            raise ChannelError(f"preimage does not match the payment_hash of HTLC {htlc_id}")
        out = self._remove_inbound(rec, {"kind": "fulfill", "payment_preimage": bytes(payment_preimage)}, "fulfill")
        out.monitor_updates.append(ev.PaymentPreimage(self._update_id(), rec.payment_hash, bytes(payment_preimage)))
        return out

    def fail_htlc(self, htlc_id: int, reason: bytes) -> Outcome:
        rec = self._committed_inbound(htlc_id)
        return self._remove_inbound(rec, {"kind": "fail", "reason": bytes(reason)}, "fail")

    def fail_malformed_htlc(self, htlc_id: int, sha256_of_onion: bytes, failure_code: int) -> Outcome:
        if not failure_code & _BADONION:
            raise ChannelError("update_fail_malformed_htlc failure_code must have the BADONION bit")
        rec = self._committed_inbound(htlc_id)
        return self._remove_inbound(
            rec,
            {"kind": "fail_malformed", "sha256_of_onion": bytes(sha256_of_onion), "failure_code": failure_code},
            "fail_malformed",
        )

    def _outbound_for_removal(self, msg: Message) -> HtlcRecord:
        self._expect(msg, S.NORMAL, S.SHUTDOWN)
        rec = self.offered.get(msg.id)
        if rec is None or rec.removal is not None or not rec.present(LOCAL, self.local_ctn):
            raise ProtocolError(f"{msg.name} for HTLC {msg.id}, which is not in our current commitment")
        if rec.add_ctn[REMOTE] is None or rec.add_ctn[REMOTE] > self.remote_ctn:
            raise ProtocolError(f"{msg.name} for HTLC {msg.id}, which is not committed")
        return rec

    def _remote_removal(self, rec: HtlcRecord, removal: dict) -> None:
        rec.removal = removal
        rec.remove_ctn = [None, None]
        self.remote_log.append([removal["kind"], rec.htlc_id])

    def on_update_fulfill_htlc(self, msg: Message) -> Outcome:
        rec = self._outbound_for_removal(msg)
        if _sha256(msg.payment_preimage) != rec.payment_hash:
            raise ProtocolError(f"update_fulfill_htlc preimage does not match HTLC {msg.id}")
        self._remote_removal(rec, {"kind": "fulfill", "payment_preimage": bytes(msg.payment_preimage)})
        out = Outcome()
        # The monitor claims with a preimage only HTLCs we received: for one we offered it can
        # claim nothing (and a snapshot would keep it for good). Only if an HTLC we received on
        # this channel has the same payment_hash (a route through us twice) does it get it now.
        h = rec.payment_hash
        if any(r.payment_hash == h for r in self.received.values()):
            out.monitor_updates.append(ev.PaymentPreimage(self._update_id(), h, bytes(msg.payment_preimage)))
        out.events.append(ev.HtlcFulfilled(rec.htlc_id, rec.payment_hash, bytes(msg.payment_preimage)))
        return out

    def on_update_fail_htlc(self, msg: Message) -> Outcome:
        rec = self._outbound_for_removal(msg)
        self._remote_removal(rec, {"kind": "fail", "reason": bytes(msg.reason)})
        return Outcome()

    def on_update_fail_malformed_htlc(self, msg: Message) -> Outcome:
        rec = self._outbound_for_removal(msg)
        if not msg.failure_code & _BADONION:
            raise ProtocolError("update_fail_malformed_htlc failure_code lacks the BADONION bit")
        self._remote_removal(
            rec,
            {"kind": "fail_malformed", "sha256_of_onion": bytes(msg.sha256_of_onion), "failure_code": msg.failure_code},
        )
        return Outcome()

    # ------------------------------------------------------ update_fee

    def update_fee(self, feerate_per_kw: int) -> Outcome:
        """Opener only: change the commitment feerate."""
        if not self.is_opener:
            raise ChannelError("only the channel opener can send update_fee")
        if self.state not in (S.NORMAL, S.SHUTDOWN):
            raise ChannelError(f"cannot update the fee in channel state {self.state.value}")
        if feerate_per_kw < FEERATE_FLOOR_PER_KW:
            raise ChannelError(f"feerate_per_kw must be at least {FEERATE_FLOOR_PER_KW}")
        ours, _, live, _ = self._projected()
        fee = self._opener_fee_msat(live, feerate_per_kw)
        if ours - fee < 0:
            raise ChannelError(f"cannot afford the commitment fee at {feerate_per_kw} sat/kw")
        seq = self.next_fee_seq
        self.next_fee_seq += 1
        self.fees.append({"seq": seq, "feerate": feerate_per_kw, "ctn": [None, None]})
        ref = ["fee", seq]
        self.local_log.append(ref)
        return Outcome(messages=[self._update_message(ref)])

    def on_update_fee(self, msg: Message) -> Outcome:
        self._expect(msg, S.NORMAL, S.SHUTDOWN)
        if self.is_opener:
            raise ProtocolError("update_fee from the non-opener")
        if msg.feerate_per_kw < FEERATE_FLOOR_PER_KW:
            raise ProtocolError(f"update_fee feerate_per_kw {msg.feerate_per_kw} is below {FEERATE_FLOOR_PER_KW}")
        _, theirs, live, _ = self._projected()
        if theirs - self._opener_fee_msat(live, msg.feerate_per_kw) < 0:
            raise ProtocolError(f"update_fee: the opener cannot afford feerate_per_kw {msg.feerate_per_kw}")
        seq = self.next_fee_seq
        self.next_fee_seq += 1
        self.fees.append({"seq": seq, "feerate": msg.feerate_per_kw, "ctn": [None, None]})
        self.remote_log.append(["fee", seq])
        return Outcome()

    def fee_update_pending(self) -> bool:
        """Whether an update_fee (ours or theirs) is not yet irrevocably on both commitments."""
        return len(self.fees) > 1

    def current_feerate(self) -> int:
        """The feerate of the latest update_fee sent or received (or the channel's initial one)."""
        return self.fees[-1]["feerate"]

    def max_affordable_feerate(self, ceiling: int) -> int:
        """Opener only: the highest feerate, at most ``ceiling``, at which the opener can still pay
        the commitment fee on either commitment (counting every pending HTLC) and keep the
        channel reserve the peer requires; never below the floor of 253 sat/kw."""
        ours, _, live, _ = self._projected()
        reserve = self.remote_config.channel_reserve_satoshis * 1000

        def ok(rate: int) -> bool:
            return ours - self._opener_fee_msat(live, rate) >= reserve

        lo, hi = FEERATE_FLOOR_PER_KW, max(FEERATE_FLOOR_PER_KW, ceiling)
        if ok(hi):
            return hi
        while lo < hi:  # the fee grows with the feerate (trimming aside): bisect
            mid = (lo + hi + 1) // 2
            if ok(mid):
                lo = mid
            else:
                hi = mid - 1
        return lo

    # ------------------------------------------------------ update log

    def _slot(self, ref: list, ours: bool) -> list:
        kind, key = ref
        if kind == "fee":
            for f in self.fees:
                if f["seq"] == key:
                    return f["ctn"]
            raise KeyError(ref)
        if kind == "add":
            return (self.offered if ours else self.received)[key].add_ctn
        return (self.received if ours else self.offered)[key].remove_ctn

    def _update_message(self, ref: list) -> Message:
        kind, key = ref
        cid = self.channel_id
        if kind == "fee":
            rate = next(f["feerate"] for f in self.fees if f["seq"] == key)
            return _msg("update_fee", channel_id=cid, feerate_per_kw=rate)
        if kind == "add":
            r = self.offered[key]
            return _msg(
                "update_add_htlc",
                channel_id=cid,
                id=r.htlc_id,
                amount_msat=r.amount_msat,
                payment_hash=r.payment_hash,
                cltv_expiry=r.cltv_expiry,
                onion_routing_packet=r.onion_routing_packet,
                tlvs={},
            )
        r = self.received[key]
        rm = r.removal
        if kind == "fulfill":
            return _msg("update_fulfill_htlc", channel_id=cid, id=key, payment_preimage=rm["payment_preimage"], tlvs={})
        if kind == "fail":
            return _msg("update_fail_htlc", channel_id=cid, id=key, reason=rm["reason"], tlvs={})
        return _msg(
            "update_fail_malformed_htlc",
            channel_id=cid,
            id=key,
            sha256_of_onion=rm["sha256_of_onion"],
            failure_code=rm["failure_code"],
        )

    # ----------------------------------------------------------- views

    def htlc_states(self) -> dict:
        """Every tracked HTLC's named state: {("out"|"in", id): state}."""
        d = {}
        for r in self.offered.values():
            d[("out", r.htlc_id)] = outbound_htlc_state(r.add_ctn, r.remove_ctn, self.local_ctn, self.remote_ctn)
        for r in self.received.values():
            d[("in", r.htlc_id)] = inbound_htlc_state(
                r.add_ctn, r.remove_ctn, self.local_ctn, self.remote_ctn, self.remote_revoked
            )
        return d

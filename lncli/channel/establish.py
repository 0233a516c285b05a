"""BOLT 2 "Channel Establishment" (v1): ``open_channel``, ``accept_channel``,
``funding_created``, ``funding_signed`` and ``channel_ready``, as opener
(:meth:`~EstablishMixin.new_outbound`, then on_accept_channel, funding_tx_built,
on_funding_signed) and as accepter (:meth:`~EstablishMixin.from_open_channel`, then
on_funding_created); then the funding tx's depth (funding_confirmed) and channel_ready move
the channel to NORMAL. The checks of the open/accept parameters are in
:mod:`lncli.channel.params`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lncli.bitcoin.script import p2wsh_script
from lncli.channel import events as ev
from lncli.channel.closing import check_shutdown_script as _check_shutdown_script
from lncli.channel.common import ProtocolError
from lncli.channel.common import msg as _msg
from lncli.channel.events import Outcome
from lncli.channel.keys import ChannelSecrets
from lncli.channel.params import (
    FEERATE_FLOOR_PER_KW,
    ChannelConfig,
    ChannelError,
    LocalPolicy,
    check_accept_channel,
    check_open_channel,
    default_config,
)
from lncli.channel.state import REMOTE, ChannelState
from lncli.channel.updates import _ANCHORS_MSAT
from lncli.proto import commitment as bolt3
from lncli.proto.commitment import Basepoints
from lncli.proto.features import CHANNEL_TYPE_ANCHORS, CHANNEL_TYPE_STATIC_REMOTEKEY
from lncli.proto.scid import ShortChannelId
from lncli.proto.scid import channel_id as make_channel_id
from lncli.proto.wire import Message

if TYPE_CHECKING:
    from lncli.channel.channel import Channel

__all__ = ["EstablishMixin"]

S = ChannelState


def _our_parameters(c: Channel) -> dict:
    """The fields open_channel and accept_channel share: our limits and our keys for commitment 0."""
    cfg, sec = c.local_config, c.secrets
    return dict(
        dust_limit_satoshis=cfg.dust_limit_satoshis,
        max_htlc_value_in_flight_msat=cfg.max_htlc_value_in_flight_msat,
        channel_reserve_satoshis=cfg.channel_reserve_satoshis,
        htlc_minimum_msat=cfg.htlc_minimum_msat,
        to_self_delay=cfg.to_self_delay,
        max_accepted_htlcs=cfg.max_accepted_htlcs,
        funding_pubkey=sec.funding_pubkey,
        revocation_basepoint=sec.revocation_basepoint,
        payment_basepoint=sec.payment_basepoint,
        delayed_payment_basepoint=sec.delayed_payment_basepoint,
        htlc_basepoint=sec.htlc_basepoint,
        first_per_commitment_point=sec.per_commitment_point(0),
    )


class EstablishMixin:
    """Opening a :class:`~lncli.channel.channel.Channel`."""

    # ------------------------------------ open_channel, accept_channel

    @classmethod
    def new_outbound(
        cls,
        *,
        channel_seed: bytes,
        temporary_channel_id: bytes,
        chain_hash: bytes,
        funding_satoshis: int,
        push_msat: int = 0,
        feerate_per_kw: int,
        policy: LocalPolicy = LocalPolicy(),
        anchors: bool | None = None,
        announce: bool = False,
        shutdown_scriptpubkey: bytes | None = None,
    ) -> tuple[Channel, Message]:
        """Open a channel: returns the channel and the ``open_channel`` to send."""
        if funding_satoshis >= 1 << 24 and not policy.large_channels:
            raise ChannelError(f"funding of {funding_satoshis} sat needs option_support_large_channel")
        if not 0 <= push_msat <= funding_satoshis * 1000:
            raise ChannelError("push amount must be between 0 and the funding amount")
        if feerate_per_kw < FEERATE_FLOOR_PER_KW:
            raise ChannelError(f"feerate_per_kw must be at least {FEERATE_FLOOR_PER_KW}")
        c = cls()
        c.secrets = ChannelSecrets.from_seed(channel_seed)
        c.policy = policy
        c.is_opener = True
        c.chain_hash = bytes(chain_hash)
        c.temporary_channel_id = c.channel_id = bytes(temporary_channel_id)
        c.funding_satoshis = funding_satoshis
        c.push_msat = push_msat
        c.anchors = policy.anchors if anchors is None else anchors
        c.channel_flags = 1 if announce else 0
        c.local_config = default_config(funding_satoshis, policy)
        c.initial_feerate_per_kw = feerate_per_kw
        c.fees = [{"seq": 0, "feerate": feerate_per_kw, "ctn": [0, 0]}]
        c.next_fee_seq = 1
        c.base_ours_msat = funding_satoshis * 1000 - push_msat
        c.local_shutdown_script = shutdown_scriptpubkey
        fee_msat = bolt3.commitment_fee_sat(feerate_per_kw, 0, c.anchors) * 1000 + (_ANCHORS_MSAT if c.anchors else 0)
        if c.base_ours_msat < fee_msat + c.local_config.dust_limit_satoshis * 1000:
            raise ChannelError("the funding amount cannot pay the initial commitment fee")
        tlvs: dict = {"channel_type": {"type": (CHANNEL_TYPE_ANCHORS if c.anchors else CHANNEL_TYPE_STATIC_REMOTEKEY).to_bytes()}}
        if shutdown_scriptpubkey is not None:
            tlvs["upfront_shutdown_script"] = {"shutdown_scriptpubkey": shutdown_scriptpubkey}
        msg = _msg(
            "open_channel",
            chain_hash=c.chain_hash,
            temporary_channel_id=c.temporary_channel_id,
            funding_satoshis=funding_satoshis,
            push_msat=push_msat,
            feerate_per_kw=feerate_per_kw,
            **_our_parameters(c),
            channel_flags=c.channel_flags,
            tlvs=tlvs,
        )
        return c, msg

    @classmethod
    def from_open_channel(
        cls,
        msg: Message,
        *,
        channel_seed: bytes,
        chain_hash: bytes,
        feerate_estimate_per_kw: int,
        policy: LocalPolicy = LocalPolicy(),
        shutdown_scriptpubkey: bytes | None = None,
    ) -> tuple[Channel, Message]:
        """Accept an ``open_channel`` (every BOLT 2 check; ChannelError refuses it).
        Returns the channel and the ``accept_channel`` to send."""
        their_cfg, anchors = check_open_channel(
            msg, chain_hash=chain_hash, policy=policy, feerate_estimate_per_kw=feerate_estimate_per_kw
        )
        c = cls()
        c.secrets = ChannelSecrets.from_seed(channel_seed)
        c.policy = policy
        c.is_opener = False
        c.state = S.AWAITING_FUNDING_CREATED
        c.chain_hash = bytes(chain_hash)
        c.temporary_channel_id = c.channel_id = bytes(msg.temporary_channel_id)
        c.funding_satoshis = msg.funding_satoshis
        c.push_msat = msg.push_msat
        c.anchors = anchors
        c.channel_flags = msg.channel_flags
        c.minimum_depth = policy.minimum_depth
        c.remote_config = their_cfg
        ours = default_config(c.funding_satoshis, policy)
        # BOLT 2: our reserve >= their dust limit; our dust limit <= their reserve.
        reserve = max(ours.channel_reserve_satoshis, their_cfg.dust_limit_satoshis)
        dust = min(ours.dust_limit_satoshis, their_cfg.channel_reserve_satoshis)
        if dust < 354:
            raise ChannelError(
                f"channel_reserve_satoshis {their_cfg.channel_reserve_satoshis} is below the lowest dust limit we can use"
            )
        c.local_config = ChannelConfig(
            dust_limit_satoshis=dust,
            max_htlc_value_in_flight_msat=ours.max_htlc_value_in_flight_msat,
            channel_reserve_satoshis=reserve,
            htlc_minimum_msat=ours.htlc_minimum_msat,
            to_self_delay=ours.to_self_delay,
            max_accepted_htlcs=ours.max_accepted_htlcs,
        )
        c.remote_basepoints = Basepoints(
            funding_pubkey=msg.funding_pubkey,
            revocation_basepoint=msg.revocation_basepoint,
            payment_basepoint=msg.payment_basepoint,
            delayed_payment_basepoint=msg.delayed_payment_basepoint,
            htlc_basepoint=msg.htlc_basepoint,
        )
        c.remote_points = {0: msg.first_per_commitment_point}
        c.initial_feerate_per_kw = msg.feerate_per_kw
        c.fees = [{"seq": 0, "feerate": msg.feerate_per_kw, "ctn": [0, 0]}]
        c.next_fee_seq = 1
        c.base_ours_msat = msg.push_msat
        c.local_shutdown_script = shutdown_scriptpubkey
        upfront = (msg.tlvs or {}).get("upfront_shutdown_script")
        if upfront and upfront.get("shutdown_scriptpubkey"):
            c.remote_shutdown_script = _check_shutdown_script(upfront["shutdown_scriptpubkey"])
        tlvs: dict = {"channel_type": {"type": (CHANNEL_TYPE_ANCHORS if anchors else CHANNEL_TYPE_STATIC_REMOTEKEY).to_bytes()}}
        if shutdown_scriptpubkey is not None:
            tlvs["upfront_shutdown_script"] = {"shutdown_scriptpubkey": shutdown_scriptpubkey}
        accept = _msg(
            "accept_channel",
            temporary_channel_id=c.temporary_channel_id,
            minimum_depth=c.minimum_depth,
            **_our_parameters(c),
            tlvs=tlvs,
        )
        return c, accept

    def on_accept_channel(self, msg: Message) -> Outcome:
        """Opener: check accept_channel; the node must now build the funding tx."""
        if self.state != S.AWAITING_ACCEPT:
            raise ProtocolError(f"unexpected accept_channel in channel state {self.state.value}")
        if msg.temporary_channel_id != self.temporary_channel_id:
            raise ProtocolError("accept_channel for another temporary_channel_id")
        self.remote_config = check_accept_channel(
            msg,
            our_config=self.local_config,
            funding_satoshis=self.funding_satoshis,
            anchors=self.anchors,
            policy=self.policy,
        )
        self.minimum_depth = msg.minimum_depth
        self.remote_basepoints = Basepoints(
            funding_pubkey=msg.funding_pubkey,
            revocation_basepoint=msg.revocation_basepoint,
            payment_basepoint=msg.payment_basepoint,
            delayed_payment_basepoint=msg.delayed_payment_basepoint,
            htlc_basepoint=msg.htlc_basepoint,
        )
        self.remote_points = {0: msg.first_per_commitment_point}
        upfront = (msg.tlvs or {}).get("upfront_shutdown_script")
        if upfront and upfront.get("shutdown_scriptpubkey"):
            self.remote_shutdown_script = _check_shutdown_script(upfront["shutdown_scriptpubkey"])
        self.set_state(S.AWAITING_FUNDING_TX)
        return Outcome(events=[ev.FundingRequired(p2wsh_script(self.funding_script), self.funding_satoshis)])

    # --------------------------------- funding_created, funding_signed

    def funding_tx_built(self, funding_txid: bytes, funding_output_index: int) -> Outcome:
        """Opener: the (unbroadcast) funding tx pays the 2-of-2 at this outpoint."""
        if self.state != S.AWAITING_FUNDING_TX:
            raise ChannelError(f"no funding transaction expected in channel state {self.state.value}")
        self.funding_txid = bytes(funding_txid)
        self.funding_output_index = funding_output_index
        msg, _ = self._sign_remote_commitment(0)
        created = _msg(
            "funding_created",
            temporary_channel_id=self.temporary_channel_id,
            funding_txid=self.funding_txid,
            funding_output_index=funding_output_index,
            signature=msg.signature,
        )
        self.channel_id = make_channel_id(self.funding_txid, funding_output_index)
        self.set_state(S.AWAITING_FUNDING_SIGNED)
        return Outcome(messages=[created])

    def on_funding_created(self, msg: Message) -> Outcome:
        """Accepter: verify their signature on our commitment 0, sign theirs."""
        if self.state != S.AWAITING_FUNDING_CREATED:
            raise ProtocolError(f"unexpected funding_created in channel state {self.state.value}")
        if msg.temporary_channel_id != self.temporary_channel_id:
            raise ProtocolError("funding_created for another temporary_channel_id")
        self.funding_txid = bytes(msg.funding_txid)
        self.funding_output_index = msg.funding_output_index
        try:
            self._verify_local_commitment(0, msg.signature, ())
        except ProtocolError:
            self.funding_txid = self.funding_output_index = None
            raise
        self.local_sigs = {"signature": msg.signature, "htlc_signatures": []}
        self.channel_id = make_channel_id(self.funding_txid, self.funding_output_index)
        signed, rctx = self._sign_remote_commitment(0)
        out = Outcome(
            messages=[_msg("funding_signed", channel_id=self.channel_id, signature=signed.signature)],
        )
        out.monitor_updates += [self._setup_update(), self._holder_update(), self._counterparty_update(0, rctx)]
        out.events.append(
            ev.WatchFunding(self.funding_txid, self.funding_output_index, p2wsh_script(self.funding_script), self.minimum_depth)
        )
        self.set_state(S.AWAITING_LOCKIN)
        return out

    def on_funding_signed(self, msg: Message) -> Outcome:
        """Opener: their signature on our commitment 0; only now may the funding tx go out."""
        self._expect(msg, S.AWAITING_FUNDING_SIGNED)
        self._verify_local_commitment(0, msg.signature, ())
        self.local_sigs = {"signature": msg.signature, "htlc_signatures": []}
        rctx, _ = self.commitment(REMOTE, 0)
        out = Outcome()
        out.monitor_updates += [self._setup_update(), self._holder_update(), self._counterparty_update(0, rctx)]
        out.events += [
            ev.BroadcastFunding(self.funding_txid, self.funding_output_index),
            ev.WatchFunding(self.funding_txid, self.funding_output_index, p2wsh_script(self.funding_script), self.minimum_depth),
        ]
        self.set_state(S.AWAITING_LOCKIN)
        return out

    def _setup_update(self) -> ev.ChannelSetup:
        return ev.ChannelSetup(
            update_id=self._update_id(),
            channel_id=self.channel_id,
            funding_txid=self.funding_txid,
            funding_output_index=self.funding_output_index,
            funding_satoshis=self.funding_satoshis,
            funding_script=self.funding_script,
            local_basepoints=self.local_basepoints,
            remote_basepoints=self.remote_basepoints,
            local_to_self_delay=self.remote_config.to_self_delay,
            remote_to_self_delay=self.local_config.to_self_delay,
            local_dust_limit_satoshis=self.local_config.dust_limit_satoshis,
            remote_dust_limit_satoshis=self.remote_config.dust_limit_satoshis,
            is_opener=self.is_opener,
            anchors=self.anchors,
            obscure_factor=self.obscure_factor,
        )

    # --------------------------------------------------- channel_ready

    def _channel_ready_msg(self) -> Message:
        return _msg(
            "channel_ready",
            channel_id=self.channel_id,
            second_per_commitment_point=self.secrets.per_commitment_point(1),
            tlvs={},
        )

    def funding_confirmed(self, depth: int, short_channel_id=None) -> Outcome:
        """The funding tx has ``depth`` confirmations; sends channel_ready at minimum_depth."""
        out = Outcome()
        self.funding_depth = max(self.funding_depth, depth)
        if short_channel_id is not None:
            self.short_channel_id = int(short_channel_id)
        if self.state == S.AWAITING_LOCKIN and not self.channel_ready_sent and depth >= max(self.minimum_depth, 1):
            self.channel_ready_sent = True
            out.messages.append(self._channel_ready_msg())
            self._maybe_normal(out)
        return out

    def on_channel_ready(self, msg: Message) -> Outcome:
        self._expect(msg, S.AWAITING_LOCKIN, S.NORMAL, S.SHUTDOWN, S.NEGOTIATING_CLOSING)
        point = msg.second_per_commitment_point
        if self.channel_ready_received:
            if self.remote_points.get(1, point) != point and self.remote_ctn == 0:
                raise ProtocolError("channel_ready repeated with a different second_per_commitment_point")
            return Outcome()
        self.channel_ready_received = True
        self.remote_points[1] = point
        out = Outcome()
        self._maybe_normal(out)
        return out

    def _maybe_normal(self, out: Outcome) -> None:
        if self.state == S.AWAITING_LOCKIN and self.channel_ready_sent and self.channel_ready_received:
            self.set_state(S.NORMAL)
            scid = ShortChannelId(self.short_channel_id) if self.short_channel_id is not None else None
            out.events.append(ev.ChannelReady(self.channel_id, scid))

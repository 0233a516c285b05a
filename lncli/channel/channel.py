"""One BOLT 2 channel, both roles, without I/O.

A :class:`Channel` is fed decoded peer messages (``lncli.proto.wire.Message``) and local
commands; each returns an :class:`~lncli.channel.events.Outcome` (messages to send, monitor
updates, events). The caller persists ``to_record()`` and the monitor updates before sending
the messages. Keys, the channel seed and block heights are inputs; nothing here touches a
socket, the disk, the clock or a random source.

``Channel`` is the one object the node talks to. Its state is set up in ``__init__`` here,
with the helpers every phase uses and the dispatch of peer messages (:meth:`Channel.handle`);
its methods come, one module per phase of BOLT 2, from the mixins it inherits:

* :mod:`lncli.channel.establish`: "Channel Establishment" (open_channel, accept_channel,
  funding_created, funding_signed, channel_ready);
* :mod:`lncli.channel.updates`: "Normal Operation", the updates (update_add_htlc,
  update_fulfill_htlc, update_fail_htlc, update_fail_malformed_htlc, update_fee), the HTLC
  ledger (:class:`HtlcRecord`) and the balances of each commitment; its docstring explains the
  update bookkeeping;
* :mod:`lncli.channel.commitment_dance`: commitment_signed and revoke_and_ack;
* :mod:`lncli.channel.reestablish`: "Message Retransmission" (channel_reestablish);
* :mod:`lncli.channel.closing`: "Channel Close" (shutdown, closing_signed) and force close;
* :mod:`lncli.channel.record`: the stored record (to_record, record_json, from_record).

The BOLT 3 transactions of each commitment are built in :mod:`lncli.proto.commitment_tx`.
"""

from __future__ import annotations

from lncli.bitcoin.script import funding_script
from lncli.bitcoin.tx import OutPoint
from lncli.channel.closing import ClosingMixin
from lncli.channel.commitment_dance import CommitmentDanceMixin
from lncli.channel.common import ZERO32 as _ZERO32
from lncli.channel.common import ProtocolError, WeAreBehind
from lncli.channel.common import msg as _msg
from lncli.channel.establish import EstablishMixin
from lncli.channel.events import Outcome
from lncli.channel.keys import ChannelSecrets
from lncli.channel.params import ChannelConfig, ChannelError, LocalPolicy
from lncli.channel.record import RecordMixin
from lncli.channel.reestablish import ReestablishMixin
from lncli.channel.state import LOCAL, ChannelState, check_transition
from lncli.channel.updates import HtlcRecord, UpdatesMixin
from lncli.proto.commitment import Basepoints
from lncli.proto.keys import obscure_factor
from lncli.proto.scid import ShortChannelId
from lncli.proto.shachain import RevocationStore
from lncli.proto.wire import Message

__all__ = ["Channel", "ChannelError", "ProtocolError", "WeAreBehind", "HtlcRecord"]

S = ChannelState


class Channel(EstablishMixin, UpdatesMixin, CommitmentDanceMixin, ReestablishMixin, ClosingMixin, RecordMixin):
    """One channel (see the module doc). Build with :meth:`new_outbound`,
    :meth:`from_open_channel` or :meth:`from_record`.

    Its methods are those of the phase mixins it inherits (one module each); its state is
    all set up here, in ``__init__``."""

    def __init__(self) -> None:
        self.state = S.AWAITING_ACCEPT
        self.is_opener = True
        self.secrets: ChannelSecrets | None = None
        self.policy = LocalPolicy()
        self.chain_hash = _ZERO32
        self.temporary_channel_id = _ZERO32
        self.channel_id = _ZERO32
        self.funding_satoshis = 0
        self.push_msat = 0
        self.funding_txid: bytes | None = None
        self.funding_output_index: int | None = None
        self.anchors = False
        self.channel_flags = 0
        self.minimum_depth = 0
        self.local_config: ChannelConfig | None = None
        self.remote_config: ChannelConfig | None = None
        self.remote_basepoints: Basepoints | None = None
        self.initial_feerate_per_kw = 0
        # commitment numbers
        self.local_ctn = 0
        self.remote_ctn = 0
        self.remote_revoked = 0  # their commitments revoked so far (= next_revocation_number)
        self.remote_points: dict[int, bytes] = {}
        self.remote_store = RevocationStore()
        self.local_sigs: dict | None = None  # their signatures on our latest commitment
        # HTLCs and updates
        self.offered: dict[int, HtlcRecord] = {}
        self.received: dict[int, HtlcRecord] = {}
        self.next_htlc_id = 0
        self.remote_next_htlc_id = 0
        self.base_ours_msat = 0  # our balance before the HTLCs still held in offered/received
        self.fees: list[dict] = []  # {"seq", "feerate", "ctn": [local, remote]}
        self.next_fee_seq = 0
        self.local_log: list[list] = []  # our sent updates in order: [kind, key]
        self.remote_log: list[list] = []  # their updates in order
        self.commit_after_revoke = False  # our last commitment_signed came after our last revoke_and_ack
        self.next_update_id = 1
        # opening / closing
        self.channel_ready_sent = False
        self.channel_ready_received = False
        self.funding_depth = 0
        self.short_channel_id: int | None = None
        self.local_shutdown_script: bytes | None = None
        self.remote_shutdown_script: bytes | None = None
        self.shutdown_sent = False
        self.shutdown_received = False
        self.closing_fee_sent: int | None = None
        self.closing_feerate_per_kw: int | None = None
        self.data_loss = False

    # ================================================================== small helpers

    def set_state(self, new: ChannelState) -> None:
        """The one place the channel's state changes (checked against TRANSITIONS)."""
        check_transition(self.state, new)
        self.state = new

    def _expect(self, msg: Message, *states: ChannelState) -> None:
        if self.state not in states:
            raise ProtocolError(f"unexpected {msg.name} in channel state {self.state.value}")
        cid = msg.get("channel_id")
        if cid is not None and cid != self.channel_id:
            raise ProtocolError(f"{msg.name} for another channel ({cid.hex()})")

    def _update_id(self) -> int:
        n = self.next_update_id
        self.next_update_id += 1
        return n

    # The four below are memoised while the objects they follow from are the same objects
    # (secrets, policy and basepoints are immutable; ids are bytes): the memo holds those
    # objects, so identity cannot be confused by a reused id.

    @property
    def local_basepoints(self) -> Basepoints:
        sec = self.secrets
        m = self.__dict__.get("_m_lbp")
        if m is None or m[0] is not sec:
            m = self._m_lbp = (sec, sec.basepoints())
        return m[1]

    @property
    def funding_script(self) -> bytes:
        sec, rbp = self.secrets, self.remote_basepoints
        m = self.__dict__.get("_m_fs")
        if m is None or m[0] is not sec or m[1] is not rbp:
            m = self._m_fs = (sec, rbp, funding_script(sec.funding_pubkey, rbp.funding_pubkey))
        return m[2]

    @property
    def funding_outpoint(self) -> OutPoint:
        txid, n = self.funding_txid, self.funding_output_index
        m = self.__dict__.get("_m_op")
        if m is None or m[0] is not txid or m[1] is not n:
            m = self._m_op = (txid, n, OutPoint(txid, n))
        return m[2]

    @property
    def obscure_factor(self) -> int:
        sec, rbp, opener = self.secrets, self.remote_basepoints, self.is_opener
        m = self.__dict__.get("_m_of")
        if m is None or m[0] is not sec or m[1] is not rbp or m[2] is not opener:
            ours, theirs = sec.payment_basepoint, rbp.payment_basepoint
            f = obscure_factor(ours, theirs) if opener else obscure_factor(theirs, ours)
            m = self._m_of = (sec, rbp, opener, f)
        return m[3]

    def error_message(self, exc: Exception) -> Message:
        """The ``error`` to send the peer for a ChannelError raised by a handler."""
        return _msg("error", channel_id=self.channel_id, data=str(exc).encode())

    # ================================================================== dispatch, views

    def handle(self, msg: Message) -> Outcome:
        """Dispatch a peer message to its handler (explicit table; unknown names raise)."""
        handler = _HANDLERS.get(msg.name)
        if handler is None:
            raise ChannelError(f"{msg.name} is not a channel message")
        return handler(self, msg)

    def summary(self) -> dict:
        """JSON-ready view for ``lncli channels``."""
        d = {
            "state": self.state.value,
            "channel_id": self.channel_id.hex(),
            "is_opener": self.is_opener,
            "funding_satoshis": self.funding_satoshis,
            "anchors": self.anchors,
            "short_channel_id": str(ShortChannelId(self.short_channel_id)) if self.short_channel_id is not None else None,
        }
        if self.funding_txid is not None:
            d["funding_outpoint"] = str(self.funding_outpoint)
        if self.local_sigs is not None:
            ours, theirs, live = self.balances(LOCAL, self.local_ctn)
            d.update(to_us_msat=ours, to_them_msat=theirs, htlcs=len(live),
                     feerate_per_kw=self.feerate(LOCAL, self.local_ctn))
        return d


_HANDLERS = {
    "accept_channel": Channel.on_accept_channel,
    "funding_created": Channel.on_funding_created,
    "funding_signed": Channel.on_funding_signed,
    "channel_ready": Channel.on_channel_ready,
    "update_add_htlc": Channel.on_update_add_htlc,
    "update_fulfill_htlc": Channel.on_update_fulfill_htlc,
    "update_fail_htlc": Channel.on_update_fail_htlc,
    "update_fail_malformed_htlc": Channel.on_update_fail_malformed_htlc,
    "update_fee": Channel.on_update_fee,
    "commitment_signed": Channel.on_commitment_signed,
    "revoke_and_ack": Channel.on_revoke_and_ack,
    "channel_reestablish": Channel.on_channel_reestablish,
    "shutdown": Channel.on_shutdown,
    "closing_signed": Channel.on_closing_signed,
}

"""BOLT 2 "Message Retransmission": a disconnection forgets the peer's uncommitted updates;
``channel_reestablish`` on reconnection compares both views, detects that we (or the peer) lost
data, and retransmits what the peer missed (channel_ready, updates, commitment_signed,
revoke_and_ack, shutdown) in the original order."""

from __future__ import annotations

from lncli.channel.common import ZERO32 as _ZERO32
from lncli.channel.common import ProtocolError, WeAreBehind
from lncli.channel.common import msg as _msg
from lncli.channel.events import Outcome
from lncli.channel.state import LOCAL, REMOTE, ChannelState
from lncli.proto.wire import Message

__all__ = ["ReestablishMixin"]

S = ChannelState


class ReestablishMixin:
    """Reconnection of a :class:`~lncli.channel.channel.Channel`."""

    def peer_disconnected(self) -> None:
        """Forget the updates they sent that no commitment_signed of theirs covered (BOLT 2).
        Ours are kept and sent again after channel_reestablish."""
        keep = []
        for ref in self.remote_log:
            slot = self._slot(ref, False)
            if slot[LOCAL] is not None:
                keep.append(ref)
                continue
            kind, key = ref
            if kind == "fee":
                self.fees = [f for f in self.fees if f["seq"] != key]
            elif kind == "add":
                del self.received[key]
                self.remote_next_htlc_id = min(self.remote_next_htlc_id, key)
            else:
                r = self.offered[key]
                r.removal = None
                r.remove_ctn = None
        self.remote_log = keep
        if self.state == S.NEGOTIATING_CLOSING:
            self.closing_fee_sent = None

    def reestablish_message(self) -> Message:
        """The ``channel_reestablish`` to send on (re)connection."""
        self.peer_disconnected()
        last_secret = (
            self.remote_store.get_commitment_secret(self.remote_revoked - 1) if self.remote_revoked else _ZERO32
        )
        return _msg(
            "channel_reestablish",
            channel_id=self.channel_id,
            next_commitment_number=self.local_ctn + 1,
            next_revocation_number=self.remote_revoked,
            your_last_per_commitment_secret=last_secret,
            my_current_per_commitment_point=self.secrets.per_commitment_point(self.local_ctn),
            tlvs={},
        )

    def on_channel_reestablish(self, msg: Message) -> Outcome:
        """Check their view against ours; return what they missed, in the original order."""
        self._expect(
            msg, S.AWAITING_LOCKIN, S.NORMAL, S.SHUTDOWN, S.NEGOTIATING_CLOSING, S.CLOSING, S.FORCE_CLOSING
        )
        n_c, n_r = msg.next_commitment_number, msg.next_revocation_number
        if n_r > 0:
            expected = self.secrets.per_commitment_secret(n_r - 1)
            if msg.your_last_per_commitment_secret != expected:
                raise ProtocolError("channel_reestablish your_last_per_commitment_secret is wrong")
        if n_r > self.local_ctn or n_c > self.remote_ctn + 1:
            self.data_loss = True
            raise WeAreBehind(
                "the peer proves our channel state is out of date (data loss): we will not broadcast our "
                "commitment; the peer should close the channel"
            )
        retransmit_raa = n_r == self.local_ctn - 1 and self.local_ctn > 0
        if not retransmit_raa and n_r != self.local_ctn:
            raise ProtocolError(
                f"channel_reestablish next_revocation_number {n_r}, expected {self.local_ctn} (peer lost data?)"
            )
        retransmit_commit = n_c == self.remote_ctn and self.remote_ctn > 0
        if not retransmit_commit and n_c != self.remote_ctn + 1:
            raise ProtocolError(
                f"channel_reestablish next_commitment_number {n_c}, expected {self.remote_ctn + 1} (peer lost data?)"
            )
        if retransmit_commit and self.remote_revoked >= self.remote_ctn:
            raise ProtocolError("channel_reestablish asks again for a commitment that was already revoked")
        out = Outcome()
        if self.state in (S.CLOSING, S.FORCE_CLOSING):
            return out
        if n_c == 1 and self.local_ctn == 0 and self.channel_ready_sent:
            out.messages.append(self._channel_ready_msg())
        commit_msgs: list[Message] = []
        if retransmit_commit:
            commit_msgs = [self._update_message(ref) for ref in self.local_log if self._slot(ref, True)[REMOTE] == self.remote_ctn]
            commit_msgs.append(self._sign_remote_commitment(self.remote_ctn)[0])
        raa = [self._revoke_and_ack_msg()] if retransmit_raa else []
        out.messages += (raa + commit_msgs) if self.commit_after_revoke else (commit_msgs + raa)
        out.messages += [self._update_message(ref) for ref in self.local_log if self._slot(ref, True)[REMOTE] is None]
        if self.shutdown_sent:
            out.messages.append(_msg("shutdown", channel_id=self.channel_id, scriptpubkey=self.local_shutdown_script))
            out.extend(self._maybe_start_closing())
        return out

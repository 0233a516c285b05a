"""Channel and HTLC states.

``ChannelState`` is the lifecycle of one channel; ``TRANSITIONS`` lists every allowed
``(old, new)`` pair and :func:`check_transition` enforces it (``Channel.set_state`` is the
only place a channel changes state).

An HTLC's progress is recorded as the commitment numbers its add and its removal entered our
(LOCAL) and their (REMOTE) commitments; :func:`outbound_htlc_state` /
:func:`inbound_htlc_state` name that progress after the BOLT 2 messages that move it (the
names follow LDK's ``OutboundHTLCState`` / ``InboundHTLCState``).
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "LOCAL",
    "REMOTE",
    "ChannelState",
    "TRANSITIONS",
    "check_transition",
    "OutboundHTLCState",
    "InboundHTLCState",
]

#: Index of our side / the peer's side in two-element [local, remote] lists.
LOCAL = 0
REMOTE = 1


class ChannelState(str, Enum):
    # opener: open_channel sent, waiting for accept_channel
    AWAITING_ACCEPT = "AWAITING_ACCEPT"
    # opener: accept_channel checked; waiting for the node to build the funding tx (FundingRequired)
    AWAITING_FUNDING_TX = "AWAITING_FUNDING_TX"
    # accepter: accept_channel sent, waiting for funding_created
    AWAITING_FUNDING_CREATED = "AWAITING_FUNDING_CREATED"
    # opener: funding_created sent, waiting for funding_signed (funding tx not broadcast yet)
    AWAITING_FUNDING_SIGNED = "AWAITING_FUNDING_SIGNED"
    # both: commitment 0 signed both ways; waiting for minimum_depth and both channel_ready
    AWAITING_LOCKIN = "AWAITING_LOCKIN"
    # both channel_ready exchanged: HTLCs may be offered
    NORMAL = "NORMAL"
    # shutdown sent or received: no new HTLCs; waiting for the pending ones to resolve
    SHUTDOWN = "SHUTDOWN"
    # no HTLC left: closing_signed fee negotiation
    NEGOTIATING_CLOSING = "NEGOTIATING_CLOSING"
    # the mutual closing tx is fully signed (BroadcastClosing emitted)
    CLOSING = "CLOSING"
    # our latest commitment was handed out for broadcast (or the channel failed)
    FORCE_CLOSING = "FORCE_CLOSING"
    # the funding output is spent and settled; nothing left to do
    CLOSED = "CLOSED"


S = ChannelState
TRANSITIONS: frozenset[tuple[ChannelState, ChannelState]] = frozenset(
    {
        (S.AWAITING_ACCEPT, S.AWAITING_FUNDING_TX),
        (S.AWAITING_FUNDING_TX, S.AWAITING_FUNDING_SIGNED),
        (S.AWAITING_FUNDING_SIGNED, S.AWAITING_LOCKIN),
        (S.AWAITING_FUNDING_CREATED, S.AWAITING_LOCKIN),
        (S.AWAITING_LOCKIN, S.NORMAL),
        (S.AWAITING_LOCKIN, S.SHUTDOWN),
        (S.NORMAL, S.SHUTDOWN),
        (S.SHUTDOWN, S.NEGOTIATING_CLOSING),
        (S.NEGOTIATING_CLOSING, S.CLOSING),
        (S.CLOSING, S.CLOSED),
        (S.FORCE_CLOSING, S.CLOSED),
        # before funding is broadcast, a failed open just ends
        (S.AWAITING_ACCEPT, S.CLOSED),
        (S.AWAITING_FUNDING_TX, S.CLOSED),
        (S.AWAITING_FUNDING_CREATED, S.CLOSED),
        (S.AWAITING_FUNDING_SIGNED, S.CLOSED),
    }
    | {
        (s, S.FORCE_CLOSING)
        for s in (S.AWAITING_LOCKIN, S.NORMAL, S.SHUTDOWN, S.NEGOTIATING_CLOSING, S.CLOSING)
    }
)


def check_transition(old: ChannelState, new: ChannelState) -> None:
    if old != new and (old, new) not in TRANSITIONS:
        raise ValueError(f"channel state transition {old.value} -> {new.value} is not allowed")


class OutboundHTLCState(str, Enum):
    """An HTLC we offered (update_add_htlc sent by us)."""

    # update_add_htlc sent; no commitment_signed of ours covers it yet
    LOCAL_ANNOUNCED = "LocalAnnounced"
    # in their commitment (our commitment_signed), not yet in ours
    AWAITING_REMOTE_REVOKE_TO_ANNOUNCE = "AwaitingRemoteRevokeToAnnounce"
    # in both commitments
    COMMITTED = "Committed"
    # they sent update_fulfill/fail/fail_malformed; not yet out of our commitment
    REMOTE_REMOVED = "RemoteRemoved"
    # out of our commitment (their commitment_signed); we revoked, waiting for it to leave theirs
    AWAITING_REMOTE_REVOKE_TO_REMOVE = "AwaitingRemoteRevokeToRemove"
    # out of both commitments
    REMOVED = "Removed"


class InboundHTLCState(str, Enum):
    """An HTLC they offered (update_add_htlc received)."""

    # update_add_htlc received; no commitment_signed of theirs covers it yet
    REMOTE_ANNOUNCED = "RemoteAnnounced"
    # in our commitment (their commitment_signed); we revoked, waiting to sign theirs
    AWAITING_REMOTE_REVOKE_TO_ANNOUNCE = "AwaitingRemoteRevokeToAnnounce"
    # in both commitments, but their old commitment without it is not revoked yet
    AWAITING_ANNOUNCED_REMOTE_REVOKE = "AwaitingAnnouncedRemoteRevoke"
    # irrevocably committed: may be fulfilled / failed / forwarded
    COMMITTED = "Committed"
    # we sent update_fulfill/fail/fail_malformed; not yet out of both commitments
    LOCAL_REMOVED = "LocalRemoved"
    # out of both commitments
    REMOVED = "Removed"


def outbound_htlc_state(add_ctn, remove_ctn, local_ctn: int, remote_ctn: int) -> OutboundHTLCState:
    """Name the progress of an HTLC we offered from the commitment numbers it entered/left."""
    O = OutboundHTLCState  # noqa: E741 - the enum, short: every line names one of its states
    if add_ctn[REMOTE] is None:
        return O.LOCAL_ANNOUNCED
    if add_ctn[LOCAL] is None:
        return O.AWAITING_REMOTE_REVOKE_TO_ANNOUNCE
    if remove_ctn is None or remove_ctn[LOCAL] is None or remove_ctn[LOCAL] > local_ctn:
        return O.COMMITTED if remove_ctn is None else O.REMOTE_REMOVED
    if remove_ctn[REMOTE] is None or remove_ctn[REMOTE] > remote_ctn:
        return O.AWAITING_REMOTE_REVOKE_TO_REMOVE
    return O.REMOVED


def inbound_htlc_state(
    add_ctn, remove_ctn, local_ctn: int, remote_ctn: int, remote_revoked: int
) -> InboundHTLCState:
    """Name the progress of an HTLC they offered. ``remote_revoked``: number of their
    commitments revoked so far."""
    I = InboundHTLCState  # noqa: E741 - likewise
    if add_ctn[LOCAL] is None:
        return I.REMOTE_ANNOUNCED
    if add_ctn[REMOTE] is None or add_ctn[REMOTE] > remote_ctn:
        return I.AWAITING_REMOTE_REVOKE_TO_ANNOUNCE
    if remove_ctn is None:
        return I.COMMITTED if add_ctn[REMOTE] <= remote_revoked else I.AWAITING_ANNOUNCED_REMOTE_REVOKE
    if (
        remove_ctn[REMOTE] is not None
        and remove_ctn[REMOTE] <= remote_ctn
        and remove_ctn[LOCAL] is not None
        and remove_ctn[LOCAL] <= local_ctn
    ):
        return I.REMOVED
    return I.LOCAL_REMOVED

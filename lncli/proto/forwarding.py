"""The checks at a forwarding hop (BOLT 4 "Failure Messages", BOLT 7 "The channel_update
Message", BOLT 2 "cltv_expiry_delta Selection"), pure: a policy and a hop in, None or the
BOLT 4 failure out.

:class:`Policy` is what a node announces for one direction of a channel in its
``channel_update`` and charges when it forwards over it: ``fee_base_msat``,
``fee_proportional_millionths``, ``cltv_expiry_delta``, ``htlc_minimum_msat`` and
``htlc_maximum_msat``. :func:`check_forward` applies it to one incoming HTLC and its onion
payload, in this order (BOLT 4: "if there is more than one error, SHOULD select the first error
it encounters"):

1. the outgoing channel is disabled: ``channel_disabled`` (``disabled_flags`` 0);
2. ``amt_to_forward`` below ``htlc_minimum_msat``: ``amount_below_minimum``, reporting the
   amount of the outgoing HTLC;
3. ``amt_to_forward`` above ``htlc_maximum_msat``: ``temporary_channel_failure`` (BOLT 4 names
   no code of its own for it; Core Lightning and LND answer this one);
4. the incoming amount below ``amt_to_forward + fee`` (BOLT 7's
   ``fee_base_msat + amt_to_forward * fee_proportional_millionths / 1000000``, rounded down):
   ``fee_insufficient``, reporting the amount of the incoming HTLC;
5. ``cltv_expiry - cltv_expiry_delta < outgoing_cltv_value``: ``incorrect_cltv_expiry``,
   reporting "the cltv_expiry of the outgoing HTLC" as BOLT 4's requirement words it (that is
   ``outgoing_cltv_value``; Core Lightning, LND and LDK put the incoming one there);
6. ``outgoing_cltv_value <= height + EXPIRY_TOO_SOON``: ``expiry_too_soon`` (the next hop
   needs a few blocks to act);
7. ``outgoing_cltv_value > height + MAX_HTLC_CLTV``: ``expiry_too_far``.

After a policy change, BOLT 7 says a node "SHOULD keep accepting the previous channel
parameters for 10 minutes": ``previous`` (the caller decides whether it is still in its window;
this module has no clock) makes a fee or cltv that satisfies the old policy acceptable too.

Whether the outgoing channel can take the HTLC now (balance, reserve, ``max_accepted_htlcs``,
``max_htlc_value_in_flight_msat``) is the channel's own check when the HTLC is offered; a
refusal there is ``temporary_channel_failure`` too.

Every failure here but ``expiry_too_far`` carries a ``channel_update`` field; BOLT 4 asks to
"report the current channel setting for the outgoing channel" and since 2024 lets it be empty.
:attr:`ForwardFailure.wants_update` tells the caller to put the outgoing channel's current
update in (:func:`update_field`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lncli.proto.gossip import fee_msat
from lncli.proto.onion_failure import UPDATE, code_for

__all__ = [
    "Policy",
    "ForwardFailure",
    "check_forward",
    "update_field",
    "EXPIRY_TOO_SOON",
    "MAX_HTLC_CLTV",
    "MAX_CLTV_EXPIRY_DELTA",
]

#: expiry_too_soon when outgoing_cltv_value <= height + this.
EXPIRY_TOO_SOON = 3
#: expiry_too_far when outgoing_cltv_value > height + this (two weeks of blocks).
MAX_HTLC_CLTV = 2016
#: the largest cltv_expiry_delta we let a policy set (the field is a u16; more than two weeks
#: would make every route through us exceed the payer's max expiry).
MAX_CLTV_EXPIRY_DELTA = 2016

_U32, _U64 = (1 << 32) - 1, (1 << 64) - 1


@dataclass(frozen=True)
class Policy:
    """One direction's forwarding policy. ``htlc_maximum_msat`` None: no limit of its own (the
    channel's capacity and the peer's ``max_htlc_value_in_flight_msat`` still bound it)."""

    fee_base_msat: int
    fee_proportional_millionths: int
    cltv_expiry_delta: int
    htlc_minimum_msat: int = 0
    htlc_maximum_msat: int | None = None

    def problems(self) -> list[str]:
        """What makes this policy impossible to announce (empty if nothing)."""
        out = []
        if not 0 <= self.fee_base_msat <= _U32:
            out.append(f"fee_base_msat {self.fee_base_msat} is not a u32")
        if not 0 <= self.fee_proportional_millionths <= _U32:
            out.append(f"fee_proportional_millionths {self.fee_proportional_millionths} is not a u32")
        if not 1 <= self.cltv_expiry_delta <= MAX_CLTV_EXPIRY_DELTA:
            out.append(f"cltv_expiry_delta {self.cltv_expiry_delta} is not between 1 and {MAX_CLTV_EXPIRY_DELTA} blocks")
        if not 0 <= self.htlc_minimum_msat <= _U64:
            out.append(f"htlc_minimum_msat {self.htlc_minimum_msat} is not a u64")
        if self.htlc_maximum_msat is not None:
            if not 1 <= self.htlc_maximum_msat <= _U64:
                out.append(f"htlc_maximum_msat {self.htlc_maximum_msat} is not a positive u64")
            elif self.htlc_maximum_msat < self.htlc_minimum_msat:
                out.append(f"htlc_maximum_msat {self.htlc_maximum_msat} is below htlc_minimum_msat {self.htlc_minimum_msat}")
        return out

    def fee_msat(self, amt_to_forward: int) -> int:
        return fee_msat(amt_to_forward, self.fee_base_msat, self.fee_proportional_millionths)

    def bounded(self, htlc_minimum_msat: int, htlc_maximum_msat: int) -> Policy:
        """This policy within a channel's own limits: the minimum at least ``htlc_minimum_msat``
        (what the peer accepts), the maximum at most ``htlc_maximum_msat`` (capacity, the peer's
        max_htlc_value_in_flight_msat), and never below the minimum (BOLT 7)."""
        lo = max(self.htlc_minimum_msat, htlc_minimum_msat)
        hi = htlc_maximum_msat if self.htlc_maximum_msat is None else min(self.htlc_maximum_msat, htlc_maximum_msat)
        return replace(self, htlc_minimum_msat=lo, htlc_maximum_msat=max(hi, lo))

    def to_json(self) -> dict:
        return {
            "fee_base_msat": self.fee_base_msat,
            "fee_proportional_millionths": self.fee_proportional_millionths,
            "cltv_expiry_delta": self.cltv_expiry_delta,
            "htlc_minimum_msat": self.htlc_minimum_msat,
            "htlc_maximum_msat": self.htlc_maximum_msat,
        }


@dataclass(frozen=True)
class ForwardFailure:
    """A BOLT 4 failure of a forward: the spec ``name`` and its data ``fields`` but the
    ``channel_update`` one."""

    name: str
    fields: dict = field(default_factory=dict)

    @property
    def code(self) -> int:
        return code_for(self.name)

    @property
    def wants_update(self) -> bool:
        """The failure has a ``channel_update`` field (the UPDATE flag is set)."""
        return bool(self.code & UPDATE)


def update_field(channel_update: bytes | None) -> dict:
    """The ``channel_update`` field of a failure: the whole message with its 2-byte type 0x0102
    (as BOLT 4 said while the field was mandatory), or empty (``len`` 0) when there is none."""
    raw = bytes(channel_update or b"")
    if raw and raw[:2] != b"\x01\x02":
        raise ValueError("a channel_update in a failure starts with its message type 0x0102")
    return {"channel_update": raw}


def _meets(p: Policy, amount_in_msat: int, cltv_expiry: int, amt_to_forward: int, outgoing_cltv_value: int) -> tuple[bool, bool]:
    """(fee paid, cltv delta kept) under ``p``."""
    return (amount_in_msat >= amt_to_forward + p.fee_msat(amt_to_forward),
            cltv_expiry - p.cltv_expiry_delta >= outgoing_cltv_value)


def check_forward(
    policy: Policy,
    *,
    amount_in_msat: int,
    cltv_expiry: int,
    amt_to_forward: int,
    outgoing_cltv_value: int,
    height: int,
    enabled: bool = True,
    previous: Policy | None = None,
) -> ForwardFailure | None:
    """None if an incoming HTLC of ``amount_in_msat`` expiring at ``cltv_expiry`` may be forwarded
    as ``amt_to_forward`` expiring at ``outgoing_cltv_value`` over a channel with ``policy``
    (``enabled`` False: the channel cannot forward now) at block ``height``; else the failure.
    ``policy`` is the channel's bounded one (:meth:`Policy.bounded`)."""
    if not enabled:
        return ForwardFailure("channel_disabled", {"disabled_flags": 0})
    if amt_to_forward < policy.htlc_minimum_msat:
        return ForwardFailure("amount_below_minimum", {"htlc_msat": amt_to_forward})
    if policy.htlc_maximum_msat is not None and amt_to_forward > policy.htlc_maximum_msat:
        return ForwardFailure("temporary_channel_failure")
    fee_ok, cltv_ok = _meets(policy, amount_in_msat, cltv_expiry, amt_to_forward, outgoing_cltv_value)
    if previous is not None and not (fee_ok and cltv_ok):
        old_fee, old_cltv = _meets(previous, amount_in_msat, cltv_expiry, amt_to_forward, outgoing_cltv_value)
        if old_fee and old_cltv:
            fee_ok = cltv_ok = True
    if not fee_ok:
        return ForwardFailure("fee_insufficient", {"htlc_msat": amount_in_msat})
    if not cltv_ok:
        return ForwardFailure("incorrect_cltv_expiry", {"cltv_expiry": outgoing_cltv_value})
    if outgoing_cltv_value <= height + EXPIRY_TOO_SOON:
        return ForwardFailure("expiry_too_soon")
    if outgoing_cltv_value > height + MAX_HTLC_CLTV:
        return ForwardFailure("expiry_too_far")
    return None

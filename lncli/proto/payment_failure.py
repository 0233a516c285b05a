"""What a BOLT 4 failure tells the payer about its route: which channel direction or node to leave
out, whom to distrust, what the liquidity scorer learns, and whether another route may succeed.

Pure: a route, the erring hop, the failure code (and its channel_update) in, a
:class:`FailureVerdict` out. The payment loop then calls :func:`apply_verdict` (or does the same
itself) and searches again with ``find_route(..., exclude=..., scorer=scorer.view(now))``.

``erring_index`` indexes ``route.hops`` (0 is our peer, ``len(route.hops) - 1`` the payee): the
node whose failure message decrypted, None when no shared secret made the failure readable.
Channel ``j`` of the route (``route.channels[j]``) leads into ``route.hops[j]``; the channel a hop
``i`` could not forward over is ``route.channels[i + 1]``.

BOLT 4 ("Returning Errors", the origin node's requirements), as applied:

- from the final node: ``mpp_timeout`` may be retried; ``final_incorrect_cltv_expiry`` and
  ``final_incorrect_htlc_amount`` mean the hop before it altered the HTLC: that node is left out
  and retried without; anything else (``incorrect_or_unknown_payment_details``, ...) is final.
- NODE bit: the erring node is left out of this payment (PERM or not) and distrusted.
- PERM without NODE (``permanent_channel_failure``, ``required_channel_feature_missing``,
  ``unknown_next_peer``): the outgoing channel is left out.
- UPDATE bit: the ``channel_update`` is returned to be applied (after checking its signature, as
  BOLT 4 says); ``temporary_channel_failure`` teaches the scorer that the outgoing direction could
  not carry the amount (no exclusion: a smaller part may pass); ``amount_below_minimum``,
  ``fee_insufficient``, ``incorrect_cltv_expiry``, ``expiry_too_soon``: retried with the new policy,
  the direction left out only when no update came with it; ``channel_disabled``: left out.
- BADONION (the next node could not parse the onion the erring node forwarded): the outgoing
  channel is left out and the next node distrusted.
- ``invalid_onion_payload`` from an intermediate node, ``expiry_too_far`` and unknown codes: the
  node (PERM) or its outgoing channel is left out.
- unreadable failure: every intermediate node is distrusted a little, nothing left out.
- every channel before the failing one carried its amount: ``passed`` (``Scorer.record_pass``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lncli.proto.onion_failure import BADONION, FAILURE_CODES, NODE, PERM, UPDATE
from lncli.proto.route_graph import direction_of

if TYPE_CHECKING:
    from lncli.proto.liquidity import Scorer
    from lncli.proto.routing import Route

__all__ = ["FailureVerdict", "interpret_failure", "apply_verdict", "route_directions"]

_F = FAILURE_CODES
_RETRY_WITH_UPDATE = {_F["amount_below_minimum"], _F["fee_insufficient"], _F["incorrect_cltv_expiry"], _F["expiry_too_soon"]}
_FINAL_TAMPERED = {_F["final_incorrect_cltv_expiry"], _F["final_incorrect_htlc_amount"]}


@dataclass(frozen=True, slots=True)
class FailureVerdict:
    """``exclude`` is what to add to find_route's ``exclude`` for the rest of the payment:
    ``(short_channel_id, direction)`` pairs and node ids. ``liquidity_failure``: ``(scid,
    direction, amount_msat)`` for ``Scorer.record_failure``; ``passed``: the same triples for
    ``Scorer.record_pass``; ``distrust``: node ids for ``Scorer.record_node_failure``;
    ``channel_update``: the raw message to verify and apply to the graph."""

    retry: bool
    reason: str
    exclude: frozenset = frozenset()
    liquidity_failure: tuple[int, int, int] | None = None
    passed: tuple[tuple[int, int, int], ...] = ()
    distrust: tuple[bytes, ...] = ()
    channel_update: bytes | None = None


def route_directions(route: Route, source: bytes) -> list[tuple[int, int, int]]:
    """``(short_channel_id, direction, amount_msat)`` of each channel of the route, ours first."""
    nodes = [source] + [h.node_id for h in route.hops]
    amounts = [route.amount_msat] + [h.amt_to_forward for h in route.hops[:-1]]
    return [(scid, direction_of(nodes[j], nodes[j + 1]), amounts[j]) for j, scid in enumerate(route.channels)]


def interpret_failure(route: Route, source: bytes, erring_index: int | None, code: int | None,
                      channel_update: bytes | None = None) -> FailureVerdict:
    """The verdict on a failure of ``route`` (see the module doc)."""
    hops = route.hops
    last = len(hops) - 1
    if erring_index is None or code is None:
        return FailureVerdict(True, "unreadable failure: every intermediate node is distrusted",
                              distrust=tuple(h.node_id for h in hops[:-1]))
    if not 0 <= erring_index <= last:
        raise ValueError(f"erring_index {erring_index} is outside the route's {len(hops)} hops")
    dirs = route_directions(route, source)
    passed = tuple(dirs[: erring_index + 1])
    node = hops[erring_index].node_id
    if erring_index == last:
        if code == _F["mpp_timeout"]:
            return FailureVerdict(True, "mpp_timeout: the payee gave up waiting for the other parts", passed=passed)
        if code in _FINAL_TAMPERED and erring_index > 0:
            prev = hops[erring_index - 1].node_id
            return FailureVerdict(True, f"the payee got an HTLC other than the onion said: {prev.hex()} left out",
                                  exclude=frozenset({prev}), distrust=(prev,), passed=passed[:-1])
        return FailureVerdict(False, "the payee refused the payment", passed=passed)
    out_scid, out_dir, out_amt = dirs[erring_index + 1]
    out = (out_scid, out_dir)
    nxt = hops[erring_index + 1].node_id
    update = channel_update if code & UPDATE else None
    if code & BADONION:
        return FailureVerdict(True, f"{nxt.hex()} could not parse the onion: the channel into it left out",
                              exclude=frozenset({out}), distrust=(nxt,), passed=passed)
    if code & NODE:
        return FailureVerdict(True, f"node {node.hex()} failed: left out", exclude=frozenset({node}), distrust=(node,),
                              passed=passed[:-1])
    if code & PERM:
        if code == _F["invalid_onion_payload"]:
            return FailureVerdict(True, f"node {node.hex()} rejected our payload: left out", exclude=frozenset({node}),
                                  distrust=(node,), passed=passed)
        return FailureVerdict(True, f"channel {out_scid} failed for good: left out", exclude=frozenset({out}),
                              passed=passed)
    if code == _F["temporary_channel_failure"]:
        return FailureVerdict(True, f"channel {out_scid} could not carry {out_amt} msat", liquidity_failure=(*out, out_amt),
                              passed=passed, channel_update=update)
    if code in _RETRY_WITH_UPDATE:
        if update:
            return FailureVerdict(True, f"channel {out_scid}'s policy changed: apply its channel_update", passed=passed,
                                  channel_update=update)
        return FailureVerdict(True, f"channel {out_scid} refused its policy and sent no update: left out",
                              exclude=frozenset({out}), passed=passed)
    return FailureVerdict(True, f"channel {out_scid} failed (code 0x{code:04x}): left out", exclude=frozenset({out}),
                          passed=passed, channel_update=update)


def apply_verdict(verdict: FailureVerdict, scorer: Scorer | None, exclude: set, now: float) -> None:
    """Add the verdict's exclusions to ``exclude`` and teach ``scorer`` (if any) what it says."""
    exclude.update(verdict.exclude)
    if scorer is None:
        if verdict.liquidity_failure is not None:
            exclude.add(verdict.liquidity_failure[:2])
        return
    for scid, d, amt in verdict.passed:
        scorer.record_pass(scid, d, amt, now)
    if verdict.liquidity_failure is not None:
        scorer.record_failure(*verdict.liquidity_failure, now)
    for n in verdict.distrust:
        scorer.record_node_failure(n, now)

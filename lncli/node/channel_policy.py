"""Our forwarding policy per channel: the defaults of lncli.conf, the changes of ``lncli
setchannel``, and the previous policy still honoured for a while after a change.

The policy (:class:`lncli.proto.forwarding.Policy`) of a channel is lncli.conf's
(``fee-base=`` msat, default 1000; ``fee-ppm=``, default 1: 1 keeps test arithmetic easy,
Core Lightning and LND default to 10 and 1 ppm; ``cltv-delta=``, default 34, BOLT 2's "at least
34 is reasonable"; ``htlc-minimum=`` msat, default 0; ``htlc-maximum=`` msat, default none) with
the fields ``setchannel`` set for that channel over it (stored in ``channel_policies``, so they
survive a restart). What is announced and enforced is that policy within the channel's own limits
(:meth:`ChannelPolicies.effective`): the minimum at least what the peer accepts
(its ``htlc_minimum_msat``, and 1), the maximum at most the capacity and the peer's
``max_htlc_value_in_flight_msat``.

BOLT 7: after a new channel_update, a node "SHOULD keep accepting the previous channel
parameters for 10 minutes". ``setchannel`` keeps the policy it replaces until
``enforce_delay`` seconds later (default :data:`ENFORCE_DELAY`, 600; Core Lightning's
``enforcedelay`` does the same); :meth:`ChannelPolicies.previous` returns it while it lasts.

The RPC ``setchannel`` (:func:`register`) changes one channel's policy, and the gossip component
signs, stores and sends the new channel_update (:meth:`lncli.node.gossip.Gossip.policy_changed`).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

from lncli.config import policy_options
from lncli.errors import InputError
from lncli.proto.forwarding import Policy
from lncli.proto.scid import ShortChannelId
from lncli.store.db import migrate, transaction

COMPONENT = "channel_policy"
MIGRATIONS = [
    "CREATE TABLE channel_policies (\n"
    "  channel_id BLOB PRIMARY KEY,\n"
    "  policy TEXT NOT NULL,\n"  # JSON: the fields setchannel set
    "  previous TEXT,\n"  # JSON: the whole policy it replaced
    "  previous_until INTEGER,\n"
    "  updated_at INTEGER NOT NULL\n"
    ")",
]

FEE_BASE_MSAT = 1000
FEE_PROPORTIONAL_MILLIONTHS = 1
CLTV_EXPIRY_DELTA = 34
#: seconds the policy replaced by setchannel is still accepted (BOLT 7: 10 minutes)
ENFORCE_DELAY = 600
FIELDS = ("fee_base_msat", "fee_proportional_millionths", "cltv_expiry_delta", "htlc_minimum_msat", "htlc_maximum_msat")


def _checked(p: Policy, what: str) -> Policy:
    problems = p.problems()
    if problems:
        raise InputError(f"{what}: " + "; ".join(problems))
    return p


class ChannelPolicies:
    """The policies of our channels, by channel_id, over the defaults of ``config`` (a
    :class:`lncli.config.Config`, or None: the built-in defaults)."""

    def __init__(self, db, config=None):
        self.db = db
        migrate(db, COMPONENT, MIGRATIONS)
        conf = policy_options(config) if config is not None else {}
        base = Policy(FEE_BASE_MSAT, FEE_PROPORTIONAL_MILLIONTHS, CLTV_EXPIRY_DELTA)
        self.default = _checked(replace(base, **conf), "lncli.conf forwarding policy")
        self._set: dict[bytes, dict] = {}
        self._previous: dict[bytes, tuple[Policy, int]] = {}
        for row in db.execute("SELECT channel_id, policy, previous, previous_until FROM channel_policies"):
            cid = bytes(row["channel_id"])
            self._set[cid] = json.loads(row["policy"])
            if row["previous"] is not None:
                self._previous[cid] = (Policy(**json.loads(row["previous"])), row["previous_until"])

    def policy(self, channel_id: bytes) -> Policy:
        """The configured policy of a channel (not yet within the channel's limits)."""
        return replace(self.default, **self._set.get(channel_id, {}))

    def previous(self, channel_id: bytes, now: float | None = None) -> Policy | None:
        """The policy a setchannel replaced, while it is still accepted; else None."""
        got = self._previous.get(channel_id)
        if got is None or (time.time() if now is None else now) >= got[1]:
            return None
        return got[0]

    def previous_until(self, channel_id: bytes, now: float | None = None) -> int | None:
        """Until when (unix time) the replaced policy is accepted; None if it is not any more."""
        return self._previous[channel_id][1] if self.previous(channel_id, now) is not None else None

    def set(self, channel_id: bytes, changes: dict, enforce_delay: int = ENFORCE_DELAY, now: float | None = None) -> Policy:
        """Set some fields (``FIELDS``; a value None leaves the field as it is) of a channel's
        policy and store it; the policy it replaces is accepted ``enforce_delay`` seconds more.
        InputError for an unknown field or a policy that cannot be announced."""
        unknown = set(changes) - set(FIELDS)
        if unknown:
            raise InputError(f"unknown policy field(s): {', '.join(sorted(unknown))}")
        if isinstance(enforce_delay, bool) or not isinstance(enforce_delay, int) or enforce_delay < 0:
            raise InputError("enforce_delay must be a whole number of seconds, 0 or more")
        for k, v in changes.items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise InputError(f"{k} must be a whole number")
        old = self.policy(channel_id)
        fields = dict(self._set.get(channel_id, {}))
        fields.update({k: v for k, v in changes.items() if v is not None})
        new = _checked(replace(self.default, **fields), "the channel's new policy")
        if new == old and fields == self._set.get(channel_id, {}):
            return new  # nothing changes (a previous policy keeps its window)
        now = int(time.time() if now is None else now)
        keep = old if (old != new and enforce_delay > 0) else None
        with transaction(self.db) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO channel_policies(channel_id, policy, previous, previous_until, updated_at) VALUES(?,?,?,?,?)",
                (channel_id, json.dumps(fields, sort_keys=True), json.dumps(old.to_json()) if keep else None,
                 now + enforce_delay if keep else None, now),
            )
        self._set[channel_id] = fields
        if keep is not None:
            self._previous[channel_id] = (keep, now + enforce_delay)
        else:
            self._previous.pop(channel_id, None)
        return new

    def effective(self, e, policy: Policy | None = None) -> Policy:
        """The policy of entry ``e`` (or ``policy``) within its channel's limits: what its
        channel_update announces and forwarding enforces."""
        ch = e.channel
        cfg = ch.remote_config
        p = self.policy(e.channel_id) if policy is None else policy
        return p.bounded(max(1, cfg.htlc_minimum_msat), min(ch.funding_satoshis * 1000, cfg.max_htlc_value_in_flight_msat))


def register(registry, policies: ChannelPolicies, channels, gossip) -> None:
    """The RPC ``setchannel``: one channel's new policy, announced."""

    async def setchannel(channel: str, fee_base_msat: int | None = None, fee_proportional_millionths: int | None = None,
                         cltv_expiry_delta: int | None = None, htlc_minimum_msat: int | None = None,
                         htlc_maximum_msat: int | None = None, enforce_delay: int = ENFORCE_DELAY) -> dict:
        if not isinstance(channel, str):
            raise InputError("channel must be a string")
        e = channels.find(channel.strip())
        changes = {"fee_base_msat": fee_base_msat, "fee_proportional_millionths": fee_proportional_millionths,
                   "cltv_expiry_delta": cltv_expiry_delta, "htlc_minimum_msat": htlc_minimum_msat,
                   "htlc_maximum_msat": htlc_maximum_msat}
        before = policies.effective(e)
        configured = policies.set(e.channel_id, changes, enforce_delay)
        changed = policies.effective(e) != before
        # BOLT 7: no redundant channel_update; a new one only when what it says changes
        upd = gossip.policy_changed(e) if gossip is not None and changed else None
        ch = e.channel
        eff = policies.effective(e)
        until = policies.previous_until(e.channel_id)
        return {
            "channel_id": e.channel_id.hex(),
            "short_channel_id": str(ShortChannelId(ch.short_channel_id)) if ch.short_channel_id is not None else None,
            "peer_id": e.peer.hex(),
            **eff.to_json(),
            "configured": configured.to_json(),
            "changed": changed,
            "previous_accepted_until": until,
            "channel_update": {k: v for k, v in upd.to_json().items() if k != "signature"} if upd is not None else None,
        }

    registry.add("setchannel", setchannel)


__all__ = ["ChannelPolicies", "register", "FIELDS", "ENFORCE_DELAY", "FEE_BASE_MSAT", "FEE_PROPORTIONAL_MILLIONTHS",
           "CLTV_EXPIRY_DELTA"]

"""The stored record of a channel: ``to_record`` (a JSON-ready dict), ``record_json`` (its
exact ``json.dumps(..., separators=(",", ":"))`` text, cheaper) and ``from_record``.

Not a BOLT 2 message: what the node persists after every step, before it sends the messages
(BOLT 2 "Message Retransmission" relies on it). The format is version 1; its text must stay
byte for byte what it is, so that existing datadirs load.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING

from lncli.channel.common import ENC as _ENC
from lncli.channel.common import ids as _ids
from lncli.channel.keys import ChannelSecrets
from lncli.channel.params import ChannelConfig, LocalPolicy
from lncli.channel.state import ChannelState
from lncli.channel.updates import HtlcRecord
from lncli.proto.commitment import Basepoints
from lncli.proto.shachain import RevocationStore

__all__ = ["RecordMixin"]

if TYPE_CHECKING:
    from lncli.channel.channel import Channel


def _bp_json(bp: Basepoints) -> dict:
    return {k: getattr(bp, k).hex() for k in Basepoints.__dataclass_fields__}


def _bp_from_json(d: dict) -> Basepoints:
    return Basepoints(**{k: bytes.fromhex(d[k]) for k in Basepoints.__dataclass_fields__})


# Fields persisted as-is (ints, bools, str, None) and as hex bytes.
_PLAIN = (
    "is_opener",
    "funding_satoshis",
    "push_msat",
    "funding_output_index",
    "anchors",
    "channel_flags",
    "minimum_depth",
    "local_ctn",
    "remote_ctn",
    "remote_revoked",
    "next_htlc_id",
    "remote_next_htlc_id",
    "base_ours_msat",
    "next_update_id",
    "next_fee_seq",
    "commit_after_revoke",
    "channel_ready_sent",
    "channel_ready_received",
    "funding_depth",
    "shutdown_sent",
    "shutdown_received",
    "closing_fee_sent",
    "closing_feerate_per_kw",
    "data_loss",
    "initial_feerate_per_kw",
)
_HEX = (
    "chain_hash",
    "temporary_channel_id",
    "channel_id",
    "funding_txid",
    "local_shutdown_script",
    "remote_shutdown_script",
)

_PLAIN_GET = operator.attrgetter(*_PLAIN)


class RecordMixin:
    """Persistence of a :class:`~lncli.channel.channel.Channel`."""

    def _static_record_fields(self) -> dict:
        """The record's fields that rarely change, in record order (to_record, record_json)."""
        d: dict = {}
        for k in _HEX:
            v = getattr(self, k)
            d[k] = None if v is None else v.hex()
        d["channel_seed"] = self.secrets.channel_seed.hex()
        d["policy"] = {k: getattr(self.policy, k) for k in self.policy.__dataclass_fields__}
        d["local_config"] = self.local_config.to_json() if self.local_config else None
        d["remote_config"] = self.remote_config.to_json() if self.remote_config else None
        d["remote_basepoints"] = _bp_json(self.remote_basepoints) if self.remote_basepoints else None
        return d

    def to_record(self) -> dict:
        d: dict = {"version": 1, "state": self.state.value}
        for k in _PLAIN:
            d[k] = getattr(self, k)
        d.update(self._static_record_fields())
        d["remote_points"] = {str(k): v.hex() for k, v in self.remote_points.items()}
        d["remote_store"] = self.remote_store.to_bytes().hex()
        d["local_sigs"] = (
            None
            if self.local_sigs is None
            else {
                "signature": self.local_sigs["signature"].hex(),
                "htlc_signatures": [s.hex() for s in self.local_sigs["htlc_signatures"]],
            }
        )
        d["offered"] = [r.to_json() for r in self.offered.values()]
        d["received"] = [r.to_json() for r in self.received.values()]
        d["fees"] = [{"seq": f["seq"], "feerate": f["feerate"], "ctn": list(f["ctn"])} for f in self.fees]
        d["local_log"] = [list(r) for r in self.local_log]
        d["remote_log"] = [list(r) for r in self.remote_log]
        d["short_channel_id"] = self.short_channel_id
        return d

    def record_json(self) -> str:
        """``json.dumps(self.to_record(), separators=(",", ":"))``, the same text, but cheaper:
        the JSON of what rarely changes (seed, policy, configs, basepoints, ids, scripts) is
        cached and reused while those very objects (immutable) are still in place; each HTLC's
        fixed part (with its 1366-byte onion in hex) is cached on the HtlcRecord while its
        fields are the same objects; the revocation store's hex is cached until a secret is
        inserted (or the store is replaced). Everything else is encoded afresh each call."""
        enc = _ENC
        cache = self.__dict__.get("_json_cache")
        if cache is None:
            cache = self.__dict__["_json_cache"] = {}
        head = {"version": 1, "state": self.state.value}
        head.update(zip(_PLAIN, _PLAIN_GET(self)))
        parts = [enc(head)[:-1]]
        # ids, scripts, seed, policy, configs, remote basepoints: cached by identity
        key = (
            self.chain_hash,
            self.temporary_channel_id,
            self.channel_id,
            self.funding_txid,
            self.local_shutdown_script,
            self.remote_shutdown_script,
            self.secrets,
            self.policy,
            self.local_config,
            self.remote_config,
            self.remote_basepoints,
        )
        hit = cache.get("static")
        if hit is not None and hit[1] == _ids(key):
            parts.append(hit[2])
        else:
            frag = "," + enc(self._static_record_fields())[1:-1]
            if all(v is None or type(v) is bytes for v in key[:6]):  # bytearrays may change in place
                cache["static"] = (key, _ids(key), frag)
            parts.append(frag)
        parts.append(',"remote_points":')
        parts.append(enc({str(k): v.hex() for k, v in self.remote_points.items()}))
        store = self.remote_store
        hit = cache.get("store")
        if hit is None or hit[0] is not store or hit[1] != store.next_index:
            hit = cache["store"] = (store, store.next_index, enc(store.to_bytes().hex()))
        parts.append(',"remote_store":')
        parts.append(hit[2])
        ls = self.local_sigs
        parts.append(',"local_sigs":')
        parts.append(
            "null"
            if ls is None
            else enc({"signature": ls["signature"].hex(), "htlc_signatures": [s.hex() for s in ls["htlc_signatures"]]})
        )
        parts.append(',"offered":[')
        parts.append(",".join([r.json_text() for r in self.offered.values()]))
        parts.append('],"received":[')
        parts.append(",".join([r.json_text() for r in self.received.values()]))
        parts.append("],")
        tail = {
            "fees": [{"seq": f["seq"], "feerate": f["feerate"], "ctn": list(f["ctn"])} for f in self.fees],
            "local_log": [list(r) for r in self.local_log],
            "remote_log": [list(r) for r in self.remote_log],
            "short_channel_id": self.short_channel_id,
        }
        parts.append(enc(tail)[1:])
        return "".join(parts)

    @classmethod
    def from_record(cls, d: dict) -> Channel:
        if d.get("version") != 1:
            raise ValueError(f"unknown channel record version {d.get('version')!r}")
        c = cls()
        c.state = ChannelState(d["state"])
        for k in _PLAIN:
            setattr(c, k, d[k])
        for k in _HEX:
            setattr(c, k, None if d[k] is None else bytes.fromhex(d[k]))
        c.secrets = ChannelSecrets.from_seed(bytes.fromhex(d["channel_seed"]))
        c.policy = LocalPolicy(**d["policy"])
        c.local_config = ChannelConfig.from_json(d["local_config"]) if d["local_config"] else None
        c.remote_config = ChannelConfig.from_json(d["remote_config"]) if d["remote_config"] else None
        c.remote_basepoints = _bp_from_json(d["remote_basepoints"]) if d["remote_basepoints"] else None
        c.remote_points = {int(k): bytes.fromhex(v) for k, v in d["remote_points"].items()}
        c.remote_store = RevocationStore.from_bytes(bytes.fromhex(d["remote_store"]))
        ls = d["local_sigs"]
        c.local_sigs = (
            None
            if ls is None
            else {
                "signature": bytes.fromhex(ls["signature"]),
                "htlc_signatures": [bytes.fromhex(s) for s in ls["htlc_signatures"]],
            }
        )
        c.offered = {r["htlc_id"]: HtlcRecord.from_json(r) for r in d["offered"]}
        c.received = {r["htlc_id"]: HtlcRecord.from_json(r) for r in d["received"]}
        c.fees = [{"seq": f["seq"], "feerate": f["feerate"], "ctn": list(f["ctn"])} for f in d["fees"]]
        c.local_log = [list(r) for r in d["local_log"]]
        c.remote_log = [list(r) for r in d["remote_log"]]
        c.short_channel_id = d["short_channel_id"]
        return c

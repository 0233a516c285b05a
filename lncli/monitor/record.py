"""A :class:`~lncli.monitor.monitor.ChannelMonitor`'s stored record and its updates' JSON.

The monitor store (:mod:`lncli.monitor.store`) writes a monitor's snapshot as the compact JSON
of :func:`to_record` (built as text by :func:`to_record_text`, which serializes the parts that
grow with the channel's history once each) and every ``MonitorUpdate`` as :func:`update_body`,
the same bytes as the generic compact encoder of :func:`update_to_json`. Stored records must
stay byte-identical: a change here is a change of the store's format.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any

from lncli.bitcoin.tx import Transaction
from lncli.channel import events as ev
from lncli.errors import DecodeError
from lncli.proto import commitment as bolt3
from lncli.proto.shachain import RevocationStore

if TYPE_CHECKING:
    from lncli.monitor.monitor import ChannelMonitor

__all__ = [
    "from_record",
    "to_record",
    "to_record_text",
    "update_body",
    "update_from_json",
    "update_to_json",
]

# --------------------------------------------------------------------------------- what a record holds


@dataclass(frozen=True)
class CounterpartyCommitment:
    """What we know of one counterparty commitment (``htlcs`` from their side: offered = offered
    by them)."""

    commitment_number: int
    txid: bytes
    per_commitment_point: bytes
    htlcs: tuple
    feerate_per_kw: int

    @cached_property
    def record_text(self) -> str:
        """Its entry in a monitor record (compact JSON), computed once: a long-lived channel keeps
        every revoked commitment with HTLCs, and each snapshot writes them all again."""
        try:
            return (
                f'{{"commitment_number":{_int(self.commitment_number)},"txid":"{_hex(self.txid)}",'
                f'"per_commitment_point":"{_hex(self.per_commitment_point)}",'
                f'"htlcs":[{",".join([_htlc_text(h) for h in self.htlcs])}],"feerate_per_kw":{_int(self.feerate_per_kw)}}}'
            )
        except (TypeError, AttributeError):  # an unexpected value somewhere: the generic encoder
            return _COMPACT(_counterparty_json(self))


@dataclass(frozen=True)
class _Conf:
    tx: Transaction
    txid: bytes
    height: int
    level: int  # 1: spends the funding output; 2: spends an output of a level-1 tx; ...


# --------------------------------------------------------------------------------- monitor records


def to_record(self: ChannelMonitor) -> dict:
    """A JSON-able snapshot of everything but the secrets."""
    record = _record_head(self)
    record["counterparty"] = [
        _counterparty_json(c) for c in sorted(self.counterparty.values(), key=lambda c: c.commitment_number)
    ]
    record["preimages"] = {k.hex(): v.hex() for k, v in sorted(self.preimages.items())}
    return record

def to_record_text(self: ChannelMonitor) -> str:
    """The JSON text of :func:`to_record` (compact; preimages in the order learned): what the
    store writes. The parts that grow with the channel's history (revoked commitments with
    HTLCs, preimages) are serialized once each and reused by every later snapshot."""
    counterparty = self.counterparty
    cps = ",".join([counterparty[n].record_text for n in sorted(counterparty)])
    cache = self._preimage_texts
    if len(cache) > len(self.preimages):
        cache.clear()  # some were dropped: do not keep their text
    pre = []
    for k, v in self.preimages.items():
        hit = cache.get(k)
        pre.append(hit[1] if hit is not None and hit[0] == v else preimage_entry(self, k, v))
    setup = self.setup
    if setup is None:
        setup_text = "null"
    else:
        if self._setup_text is None or self._setup_text[0] is not setup:
            self._setup_text = (setup, update_body(setup))
        setup_text = self._setup_text[1]
    head = _COMPACT(_record_head(self, False))
    return (
        f'{head[:-1]},"setup":{setup_text},"holder":{_body_or_null(self.holder)},'
        f'"prev_holder":{_body_or_null(self.prev_holder)},"counterparty":[{cps}],"preimages":{{{",".join(pre)}}}}}'
    )

def preimage_entry(self: ChannelMonitor, payment_hash: bytes, payment_preimage: bytes) -> str:
    """The record text of one preimage, remembered on the monitor for later snapshots."""
    text = f'"{payment_hash.hex()}":"{payment_preimage.hex()}"'
    self._preimage_texts[payment_hash] = (payment_preimage, text)
    return text

def _record_head(self: ChannelMonitor, updates: bool = True) -> dict:
    """:func:`to_record` but ``counterparty`` and ``preimages`` (the parts that grow), and
    without ``updates`` but ``setup``, ``holder`` and ``prev_holder`` too."""

    def j(u):
        return None if u is None else update_to_json(u)

    record = {
        "version": 1,
        "channel_id": self.channel_id.hex(),
        "destination_script": None if self.destination_script is None else self.destination_script.hex(),
        "feerate_per_kw": self.feerate_per_kw,
        "latest_update_id": self.latest_update_id,
    }
    if updates:  # in to_record's order; it fills counterparty and preimages
        record["setup"] = j(self.setup)
        record["holder"] = j(self.holder)
        record["prev_holder"] = j(self.prev_holder)
        record["counterparty"] = None
    record["revocations"] = self.revocations.to_bytes().hex()
    if updates:
        record["preimages"] = None
    record.update({
        "force_closed": self.force_closed,
        "best_height": self.best_height,
        "resolved_height": self.resolved_height,
        "block_hashes": {str(h): v.hex() for h, v in sorted(self._block_hashes.items())},
        "confirmed": [
            {"tx": c.tx.to_hex(), "height": c.height, "level": c.level}
            for c in sorted(self._confirmed.values(), key=lambda c: (c.level, c.height, c.txid))
        ],
    })
    return record

def from_record(cls: type[ChannelMonitor], record: dict, secrets) -> ChannelMonitor:
    """Inverse of :func:`to_record`; DecodeError on a malformed record. ``cls``: the monitor class."""
    try:
        if record.get("version") != 1:
            raise DecodeError(f"unknown monitor record version {record.get('version')!r}")
        dest = record["destination_script"]
        m = cls(
            bytes.fromhex(record["channel_id"]),
            secrets,
            destination_script=None if dest is None else bytes.fromhex(dest),
            feerate_per_kw=int(record["feerate_per_kw"]),
        )
        m.latest_update_id = int(record["latest_update_id"])
        m.setup = None if record["setup"] is None else update_from_json(record["setup"])
        m.holder = None if record["holder"] is None else update_from_json(record["holder"])
        m.prev_holder = None if record["prev_holder"] is None else update_from_json(record["prev_holder"])
        for c in record["counterparty"]:
            info = CounterpartyCommitment(
                int(c["commitment_number"]),
                bytes.fromhex(c["txid"]),
                bytes.fromhex(c["per_commitment_point"]),
                tuple(_htlc_from_json(h) for h in c["htlcs"]),
                int(c["feerate_per_kw"]),
            )
            m.counterparty[info.commitment_number] = info
        m.revocations = RevocationStore.from_bytes(bytes.fromhex(record["revocations"]))
        m.preimages = {bytes.fromhex(k): bytes.fromhex(v) for k, v in record["preimages"].items()}
        m.force_closed = bool(record["force_closed"])
        m.best_height = _opt_int(record["best_height"])
        m.resolved_height = _opt_int(record["resolved_height"])
        m._block_hashes = {int(h): bytes.fromhex(v) for h, v in record.get("block_hashes", {}).items()}
        for c in record["confirmed"]:
            tx = Transaction.from_hex(c["tx"])
            m._confirmed[tx.txid()] = _Conf(tx, tx.txid(), int(c["height"]), int(c["level"]))
        m._rebuild_chain_index()
        return m
    except DecodeError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DecodeError(f"malformed monitor record: {e!r}") from None


# --------------------------------------------------------------------------------- update codec


def _opt_int(v: Any) -> int | None:
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool):
        raise DecodeError(f"expected an integer or null, got {v!r}")
    return v


_BYTES_FIELDS = {
    "channel_id",
    "funding_txid",
    "funding_script",
    "txid",
    "per_commitment_point",
    "secret",
    "payment_hash",
    "payment_preimage",
    "witness_script",
    "remote_signature",
    "local_signature",
}
_UPDATE_TYPES = {
    cls.__name__: cls
    for cls in (
        ev.ChannelSetup,
        ev.LatestHolderCommitment,
        ev.LatestCounterpartyCommitment,
        ev.CommitmentSecret,
        ev.PaymentPreimage,
        ev.ChannelForceClosed,
    )
}


def _htlc_json(h: bolt3.Htlc) -> dict:
    return {
        "htlc_id": h.htlc_id,
        "amount_msat": h.amount_msat,
        "payment_hash": h.payment_hash.hex(),
        "cltv_expiry": h.cltv_expiry,
        "offered": h.offered,
    }


def _body_or_null(u: ev.MonitorUpdate | None) -> str:
    return "null" if u is None else update_body(u)


def _counterparty_json(c: CounterpartyCommitment) -> dict:
    return {
        "commitment_number": c.commitment_number,
        "txid": c.txid.hex(),
        "per_commitment_point": c.per_commitment_point.hex(),
        "htlcs": [_htlc_json(h) for h in c.htlcs],
        "feerate_per_kw": c.feerate_per_kw,
    }


def _htlc_from_json(d: dict) -> bolt3.Htlc:
    return bolt3.Htlc(
        int(d["htlc_id"]), int(d["amount_msat"]), bytes.fromhex(d["payment_hash"]), int(d["cltv_expiry"]), bool(d["offered"])
    )


def _field_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _BYTES_FIELDS:
        return bytes.fromhex(value)
    if name == "tx":
        return Transaction.from_hex(value)
    if name in ("local_basepoints", "remote_basepoints"):
        return bolt3.Basepoints(**{k: bytes.fromhex(v) for k, v in value.items()})
    if name == "htlcs":
        return tuple(_htlc_from_json(h) for h in value)
    if name == "htlc_txs":
        return tuple(
            ev.HolderHtlcTx(**{f.name: _field_value(f.name, h[f.name]) for f in fields(ev.HolderHtlcTx)}) for h in value
        )
    return value


def update_to_json(update: ev.MonitorUpdate) -> dict:
    """A monitor update as JSON (``{"type": ..., fields...}``, bytes as hex)."""
    return update.to_json()


# ---- update_body: the compact JSON text of update_to_json, written directly (hot path) ------------
#
# Each writer below spells out one type's fields in its dataclass order, so the text is exactly
# ``json.dumps(update_to_json(u), separators=(",", ":"))`` (tests check it on real updates). A value
# of an unexpected type makes a writer raise TypeError/AttributeError: update_body then falls back
# to the generic encoder, which answers as before.

_int = int.__repr__  # TypeError for anything but an int (a bool gives 1/0: the same number)
_hex = bytes.hex  # TypeError for anything but bytes (a float has a .hex() too)
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode


def _bool(v: Any) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    raise TypeError("not a bool")


def _opt_hex(v: Any) -> str:
    return "null" if v is None else f'"{_hex(v)}"'


def _htlc_text(h: Any) -> str:
    if type(h) is not bolt3.Htlc:
        raise TypeError("not an Htlc")
    return (
        f'{{"htlc_id":{_int(h.htlc_id)},"amount_msat":{_int(h.amount_msat)},"payment_hash":"{_hex(h.payment_hash)}",'
        f'"cltv_expiry":{_int(h.cltv_expiry)},"offered":{_bool(h.offered)}}}'
    )


def _htlc_tx_text(h: Any) -> str:
    if type(h) is not ev.HolderHtlcTx or type(h.tx) is not Transaction:
        raise TypeError("not a HolderHtlcTx")
    return (
        f'{{"htlc_id":{_int(h.htlc_id)},"offered":{_bool(h.offered)},"payment_hash":"{_hex(h.payment_hash)}",'
        f'"cltv_expiry":{_int(h.cltv_expiry)},"tx":"{h.tx.to_hex()}","witness_script":"{_hex(h.witness_script)}",'
        f'"remote_signature":"{_hex(h.remote_signature)}","local_signature":{_opt_hex(h.local_signature)},'
        f'"complete":{_bool(h.complete)}}}'
    )


def _holder_text(u: ev.LatestHolderCommitment) -> str:
    if type(u.tx) is not Transaction or type(u.htlc_txs) not in (tuple, list):
        raise TypeError("unexpected LatestHolderCommitment field types")
    return (
        f'{{"type":"LatestHolderCommitment","update_id":{_int(u.update_id)},'
        f'"commitment_number":{_int(u.commitment_number)},"tx":"{u.tx.to_hex()}",'
        f'"htlc_txs":[{",".join([_htlc_tx_text(h) for h in u.htlc_txs])}],'
        f'"remote_signature":{_opt_hex(u.remote_signature)}}}'
    )


def _counterparty_text(u: ev.LatestCounterpartyCommitment) -> str:
    if type(u.htlcs) not in (tuple, list):
        raise TypeError("unexpected htlcs")
    return (
        f'{{"type":"LatestCounterpartyCommitment","update_id":{_int(u.update_id)},"txid":"{_hex(u.txid)}",'
        f'"commitment_number":{_int(u.commitment_number)},"per_commitment_point":"{_hex(u.per_commitment_point)}",'
        f'"htlcs":[{",".join([_htlc_text(h) for h in u.htlcs])}],"feerate_per_kw":{_int(u.feerate_per_kw)},'
        f'"to_local_sat":{_int(u.to_local_sat)},"to_remote_sat":{_int(u.to_remote_sat)}}}'
    )


def _secret_text(u: ev.CommitmentSecret) -> str:
    return (
        f'{{"type":"CommitmentSecret","update_id":{_int(u.update_id)},'
        f'"commitment_number":{_int(u.commitment_number)},"secret":"{_hex(u.secret)}"}}'
    )


def _preimage_text(u: ev.PaymentPreimage) -> str:
    return (
        f'{{"type":"PaymentPreimage","update_id":{_int(u.update_id)},"payment_hash":"{_hex(u.payment_hash)}",'
        f'"payment_preimage":"{_hex(u.payment_preimage)}"}}'
    )


def _force_closed_text(u: ev.ChannelForceClosed) -> str:
    return f'{{"type":"ChannelForceClosed","update_id":{_int(u.update_id)},"commitment_number":{_int(u.commitment_number)}}}'


_BODY_WRITERS = {
    ev.LatestHolderCommitment: _holder_text,
    ev.LatestCounterpartyCommitment: _counterparty_text,
    ev.CommitmentSecret: _secret_text,
    ev.PaymentPreimage: _preimage_text,
    ev.ChannelForceClosed: _force_closed_text,
}


def update_body(update: ev.MonitorUpdate) -> str:
    """``json.dumps(update_to_json(update), separators=(",", ":"))``, the same text, faster: what
    the store writes for each update (read back with ``update_from_json(json.loads(body))``)."""
    writer = _BODY_WRITERS.get(type(update))
    if writer is not None:
        try:
            return writer(update)
        except (TypeError, AttributeError):
            pass  # an unexpected value somewhere: the generic encoder says what it says
    return _COMPACT(update_to_json(update))


#: fields an update may lack (written before they existed): absent means their default
_OPTIONAL_FIELDS = {
    cls: {f.name for f in fields(cls) if f.default is not dataclasses.MISSING} for cls in _UPDATE_TYPES.values()
}


def update_from_json(d: dict) -> ev.MonitorUpdate:
    """Inverse of :func:`update_to_json`; DecodeError on anything malformed."""
    try:
        cls = _UPDATE_TYPES[d["type"]]
        optional = _OPTIONAL_FIELDS[cls]
        return cls(**{
            f.name: _field_value(f.name, d[f.name])
            for f in fields(cls)
            if f.name in d or f.name not in optional
        })
    except DecodeError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DecodeError(f"malformed monitor update: {e!r}") from None

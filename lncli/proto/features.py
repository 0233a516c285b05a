"""BOLT 9 feature bits.

A feature vector is a big-endian bitfield (bit 0 is the least significant bit of the last byte).
Features come in pairs: the even bit means "required", the odd bit "supported (optional)".
:class:`Features` is an immutable value over an integer mask; the table :data:`FEATURES` follows
09-features.md of lightning/bolts at commit a3772650d8ebc06acf457fcadf97968ebfc4dfff.

Context letters (the table's "Context" column): ``I`` init, ``N`` node_announcement,
``C`` channel_announcement, ``9`` BOLT 11 invoices, ``B`` blinded path ``allowed_features``,
``T`` channel_type. Features marked ASSUMED have no context in the table; they are still known
(and commonly set) everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable

from lncli.errors import DecodeError

__all__ = [
    "Feature",
    "FEATURES",
    "BY_NAME",
    "Features",
    "FeatureError",
    "UnknownRequiredFeature",
    "MissingFeatureDependency",
    "feature_name",
    "check_known",
    "check_dependencies",
    "CHANNEL_TYPE_STATIC_REMOTEKEY",
    "CHANNEL_TYPE_ANCHORS",
    "channel_type",
    "check_channel_type",
    "channel_type_name",
]


class Feature:
    """One feature pair: ``bit`` is the even (required) bit, ``bit + 1`` the odd one."""

    __slots__ = ("name", "bit", "context", "assumed", "depends", "legacy")

    def __init__(self, name, bit, context="", assumed=False, depends=(), legacy=False):
        self.name, self.bit, self.context = name, bit, context
        self.assumed, self.depends, self.legacy = assumed, tuple(depends), legacy

    def known_in(self, context: str | None) -> bool:
        if self.legacy:
            return False
        return context is None or not self.context or context in self.context

    def __repr__(self) -> str:
        return f"Feature({self.name!r}, {self.bit}/{self.bit + 1})"


# name, even bit, context, assumed, dependencies
FEATURES: tuple[Feature, ...] = (
    Feature("option_data_loss_protect", 0, assumed=True),
    # removed from the current table (bit 3 only ever existed as odd); kept for naming only
    Feature("initial_routing_sync", 2, legacy=True),
    Feature("option_upfront_shutdown_script", 4, "IN"),
    Feature("gossip_queries", 6),
    Feature("var_onion_optin", 8, assumed=True),
    Feature("gossip_queries_ex", 10, "IN"),
    Feature("option_static_remotekey", 12, assumed=True),
    Feature("payment_secret", 14, assumed=True),
    Feature("basic_mpp", 16, "IN9", depends=("payment_secret",)),
    Feature("option_support_large_channel", 18, "IN"),
    # superseded by option_anchors (22/23) and no longer in the table; kept for naming only
    Feature("option_anchor_outputs", 20, legacy=True),
    Feature("option_anchors", 22, "INT"),
    Feature("option_route_blinding", 24, "IN9"),
    Feature("option_shutdown_anysegwit", 26, "IN"),
    Feature("option_dual_fund", 28, "IN"),
    Feature("option_quiesce", 34, "IN"),
    Feature("option_attribution_data", 36, "IN9"),
    Feature("option_onion_messages", 38, "IN"),
    Feature("option_provide_storage", 42, "IN"),
    Feature("option_channel_type", 44, assumed=True),
    Feature("option_scid_alias", 46, "INT"),
    Feature("option_payment_metadata", 48, "9"),
    Feature("option_zeroconf", 50, "INT", depends=("option_scid_alias",)),
    Feature("option_simple_close", 60, "IN", depends=("option_shutdown_anysegwit",)),
    Feature("option_splice", 62, "IN"),
)

BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
_BY_PAIR: dict[int, Feature] = {f.bit: f for f in FEATURES}  # even bit -> feature

# the single odd bit of initial_routing_sync is its only meaning; bit 2 is not assigned to it
_ODD_ONLY = {"initial_routing_sync"}


def _feature_of_bit(bit: int) -> Feature | None:
    f = _BY_PAIR.get(bit & ~1)
    if f is not None and f.name in _ODD_ONLY and not bit & 1:
        return None
    return f


def feature_name(bit: int) -> str | None:
    f = _feature_of_bit(bit)
    return f.name if f is not None else None


class FeatureError(DecodeError):
    """A feature vector that must be refused."""


class UnknownRequiredFeature(FeatureError):
    def __init__(self, bits: list[int], context: str | None):
        where = f" in context {context}" if context else ""
        super().__init__(f"unknown required (even) feature bit(s){where}: {', '.join(map(str, bits))}")
        self.bits = bits


class MissingFeatureDependency(FeatureError):
    def __init__(self, missing: list[tuple[str, str]]):
        text = "; ".join(f"{a} requires {b}" for a, b in missing)
        super().__init__(f"feature dependencies not set: {text}")
        self.missing = missing


def _bit_of(x: int | str, required: bool) -> int:
    if isinstance(x, str):
        f = BY_NAME.get(x)
        if f is None:
            raise ValueError(f"unknown feature name {x!r}")
        if f.name in _ODD_ONLY:
            return f.bit + 1
        return f.bit if required else f.bit + 1
    if isinstance(x, bool) or not isinstance(x, int) or x < 0:
        raise ValueError(f"not a feature bit: {x!r}")
    return x


class Features:
    """An immutable feature vector."""

    __slots__ = ("_mask",)

    def __init__(self, mask: int = 0):
        if mask < 0:
            raise ValueError("feature mask cannot be negative")
        object.__setattr__(self, "_mask", int(mask))

    def __setattr__(self, key, value):
        raise AttributeError("Features is immutable")

    # -- construction

    @classmethod
    def from_bytes(cls, data: bytes) -> Features:
        """From the wire form. Any length is accepted (leading zero bytes are padding)."""
        return cls(int.from_bytes(data, "big"))

    @classmethod
    def from_bits(cls, bits: Iterable[int | str], required: bool = False) -> Features:
        """From bit numbers and/or feature names (a name sets its odd bit, or its even bit if
        ``required``)."""
        mask = 0
        for b in bits:
            mask |= 1 << _bit_of(b, required)
        return cls(mask)

    @classmethod
    def from_names(cls, *names: str, required: bool = False) -> Features:
        return cls.from_bits(names, required=required)

    @classmethod
    def from_init(cls, globalfeatures: bytes, features: bytes) -> Features:
        """The logical feature set of an ``init`` message: both bitmaps ORed (BOLT 1)."""
        return cls(int.from_bytes(globalfeatures, "big") | int.from_bytes(features, "big"))

    @classmethod
    def from_json(cls, value) -> Features:
        """Inverse of :meth:`to_json` (also accepts a list of names or bit numbers)."""
        bits = []
        for item in value:
            bits.append(item["bit"] if isinstance(item, dict) else item)
        return cls.from_bits(bits)

    # -- wire

    def to_bytes(self) -> bytes:
        """Big-endian, minimal length (empty when no bit is set)."""
        m = self._mask
        return m.to_bytes((m.bit_length() + 7) // 8, "big")

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    # -- queries

    def has_bit(self, bit: int) -> bool:
        return bool(self._mask >> bit & 1)

    def __contains__(self, item: int | str) -> bool:
        if isinstance(item, str):
            return self.supports(item)
        return self.has_bit(item)

    def supports(self, name: str) -> bool:
        """Either bit of the feature is set."""
        f = BY_NAME[name]
        return bool(self._mask >> f.bit & 3)

    def requires(self, name: str) -> bool:
        """The even (compulsory) bit of the feature is set."""
        f = BY_NAME[name]
        return f.name not in _ODD_ONLY and self.has_bit(f.bit)

    def bits(self) -> list[int]:
        m, out, i = self._mask, [], 0
        while m:
            if m & 1:
                out.append(i)
            m >>= 1
            i += 1
        return out

    def names(self) -> list[str]:
        """Names of the known features present (each once), unknown bits as ``bit_N``."""
        out: list[str] = []
        for b in self.bits():
            n = feature_name(b) or f"bit_{b}"
            if n not in out:
                out.append(n)
        return out

    # -- updates (return new values)

    def set(self, bit: int | str, required: bool = False) -> Features:
        return Features(self._mask | 1 << _bit_of(bit, required))

    def clear(self, bit: int | str, required: bool = False) -> Features:
        if isinstance(bit, str):
            f = BY_NAME[bit]
            return Features(self._mask & ~(3 << f.bit))
        return Features(self._mask & ~(1 << _bit_of(bit, required)))

    def __or__(self, other: Features) -> Features:
        return Features(self._mask | other._mask)

    def __and__(self, other: Features) -> Features:
        return Features(self._mask & other._mask)

    # -- checks

    def unknown_required(self, context: str | None = None, known: Iterable[int | str] | None = None) -> list[int]:
        """Even bits set that are not known (in ``context``, or in the ``known`` set)."""
        if known is not None:
            known_bits = set()
            for k in known:
                if isinstance(k, str):
                    known_bits.add(BY_NAME[k].bit)
                else:
                    known_bits.add(k & ~1)
        out = []
        for b in self.bits():
            if b & 1:
                continue
            if known is not None:
                ok = b in known_bits
            else:
                f = _feature_of_bit(b)
                ok = f is not None and f.known_in(context)
            if not ok:
                out.append(b)
        return out

    def missing_dependencies(self) -> list[tuple[str, str]]:
        out = []
        for f in FEATURES:
            if f.depends and self._mask >> f.bit & 3:
                for dep in f.depends:
                    if not self.supports(dep):
                        out.append((f.name, dep))
        return out

    # -- misc

    def __int__(self) -> int:
        return self._mask

    def __bool__(self) -> bool:
        return bool(self._mask)

    def __eq__(self, other) -> bool:
        if isinstance(other, Features):
            return self._mask == other._mask
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Features", self._mask))

    def __repr__(self) -> str:
        return f"Features({', '.join(map(str, self.bits()))})" if self._mask else "Features()"

    def to_json(self) -> list[dict]:
        return [{"bit": b, "name": feature_name(b), "required": b % 2 == 0} for b in self.bits()]


def _as_features(features: Features | bytes) -> Features:
    if isinstance(features, Features):
        return features
    return Features.from_bytes(features)


def check_known(
    features: Features | bytes, context: str | None = None, known: Iterable[int | str] | None = None
) -> Features:
    """Raise UnknownRequiredFeature if an even bit is set that we do not know.

    ``context`` is a letter of the BOLT 9 Context column (``I``, ``N``, ``C``, ``9``, ``B``, ``T``):
    a feature outside its context counts as unknown. ``known`` (bits or names) replaces the table,
    e.g. with the features this node implements. Unknown odd bits are ignored. Returns the value.
    """
    f = _as_features(features)
    bad = f.unknown_required(context, known)
    if bad:
        raise UnknownRequiredFeature(bad, context)
    return f


def check_dependencies(features: Features | bytes) -> Features:
    """Raise MissingFeatureDependency unless every set feature has its dependencies set."""
    f = _as_features(features)
    missing = f.missing_dependencies()
    if missing:
        raise MissingFeatureDependency(missing)
    return f


# --------------------------------------------------------------------------- channel_type (BOLT 2)

CHANNEL_TYPE_STATIC_REMOTEKEY = Features.from_bits([12])
CHANNEL_TYPE_ANCHORS = Features.from_bits([12, 22])
_VARIATIONS = {46: "scid_alias", 50: "zeroconf"}


def channel_type(anchors: bool = True, scid_alias: bool = False, zeroconf: bool = False) -> Features:
    """A defined channel type: static_remotekey or anchors, with optional variations."""
    bits = [12, 22] if anchors else [12]
    if scid_alias:
        bits.append(46)
    if zeroconf:
        bits.append(50)
    return Features.from_bits(bits)


def check_channel_type(features: Features | bytes) -> Features:
    """Raise FeatureError unless this is one of the channel types BOLT 2 defines."""
    f = _as_features(features)
    base = Features(int(f) & ~sum(1 << b for b in _VARIATIONS))
    if base not in (CHANNEL_TYPE_STATIC_REMOTEKEY, CHANNEL_TYPE_ANCHORS):
        raise FeatureError(f"not a defined channel_type: bits {f.bits()}")
    return f


def channel_type_name(features: Features | bytes) -> str:
    """``static_remotekey`` or ``anchors``, with ``+scid_alias`` / ``+zeroconf``."""
    f = check_channel_type(features)
    name = "anchors" if f.has_bit(22) else "static_remotekey"
    for b, var in _VARIATIONS.items():
        if f.has_bit(b):
            name += "+" + var
    return name

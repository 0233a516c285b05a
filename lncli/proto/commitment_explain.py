"""What a transaction that spends a channel is, read with BOLT 3 and BOLT 5: pure.

Given a transaction and what one knows of a channel, this module says whether it is a BOLT 3
commitment (version 2, one input, locktime upper byte 0x20, sequence upper byte 0x80), whose it
is, which commitment number it carries (the obscured number, and the real one when the
obscuring factor is known), and for each output its type (to_local, to_remote, offered or
received HTLC, anchor) and who can claim it when (BOLT 5).

Names are from our side: "us" and "them". A commitment's *holder* (broadcaster) is ``owner``
("local": ours, "remote": theirs); the other side is its countersignatory. HTLC directions
(``offered_htlc`` / ``received_htlc``) are the holder's, as in BOLT 3.

:func:`offline_view` builds a :class:`CommitmentView` of the peer's revoked commitment from keys
given by hand (no datadir: teaching, watchtowers); :func:`explain_commitment` and
:func:`explain_transaction` do the reading for any view; the caller (``lncli.monitor.explain``
for a datadir) builds the views.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lncli.bitcoin.ecdsa import pubkey_from_privkey
from lncli.bitcoin.script import classify, p2wsh_script
from lncli.bitcoin.tx import OutPoint, Transaction
from lncli.errors import DecodeError, InputError
from lncli.proto.commitment import CommitmentKeys, Htlc, htlc_witness_script
from lncli.proto.justice import revocation_privkey
from lncli.proto.keys import (
    derive_pubkey,
    derive_revocation_pubkey,
    obscured_from_locktime_sequence,
    per_commitment_point,
)
from lncli.proto.scripts import ANCHOR_CSV, anchor_script, to_local_script, to_remote_anchor_script, to_remote_script_pubkey

__all__ = [
    "LOCAL",
    "REMOTE",
    "COMMITMENT",
    "MUTUAL_CLOSE",
    "UNKNOWN",
    "Claim",
    "ExplainedOutput",
    "CommitmentView",
    "Explanation",
    "obscured_number",
    "explain_commitment",
    "explain_transaction",
    "offline_view",
    "parse_htlc_spec",
]

LOCAL = "local"
REMOTE = "remote"
COMMITMENT = "commitment"
MUTUAL_CLOSE = "mutual_close"
UNKNOWN = "unknown"

TO_LOCAL = "to_local"
TO_REMOTE = "to_remote"
OFFERED_HTLC = "offered_htlc"
RECEIVED_HTLC = "received_htlc"
ANCHOR = "anchor"
CLOSE_OUTPUT = "close_output"


@dataclass(frozen=True)
class Claim:
    """One way to spend an output: ``who`` ("us", "them", "anyone"), ``how``, ``when``."""

    who: str
    how: str
    when: str

    def to_json(self) -> dict:
        return {"who": self.who, "how": self.how, "when": self.when}


@dataclass(frozen=True)
class ExplainedOutput:
    vout: int
    type: str
    amount_sat: int
    script_type: str
    claims: tuple[Claim, ...] = ()
    htlc: Htlc | None = None
    witness_script: bytes | None = None

    def to_json(self) -> dict:
        data = {
            "vout": self.vout,
            "type": self.type,
            "amount_sat": self.amount_sat,
            "script_type": self.script_type,
            "claim": [c.to_json() for c in self.claims],
        }
        if self.htlc is not None:
            data["payment_hash"] = self.htlc.payment_hash.hex()
            data["cltv_expiry"] = self.htlc.cltv_expiry
        return data


@dataclass(frozen=True)
class CommitmentView:
    """What one knows of one commitment, enough to recognise its outputs.

    ``owner``: whose commitment (LOCAL: ours, REMOTE: theirs). ``keys``: its BOLT 3 keys, named
    from the holder's side, or None when its per_commitment_point is unknown (then only the
    to_remote output, which needs no per-commitment key, can be recognised); any key of ``keys``
    may be None when unknown (its outputs are not recognised). ``to_remote_script``: the
    countersignatory's to_remote scriptPubKey (None: unknown). ``funding_pubkeys``: (holder's,
    countersignatory's), for the anchors, either None. ``htlcs``: the commitment's HTLCs from the
    holder's side. ``to_self_delay``: the holder's delay. ``revoked``: the countersignatory holds
    the commitment's per_commitment_secret."""

    owner: str
    keys: CommitmentKeys | None
    to_self_delay: int
    anchors: bool
    to_remote_script: bytes | None = None
    funding_pubkeys: tuple = (None, None)
    htlcs: Sequence[Htlc] = ()
    revoked: bool = False


@dataclass(frozen=True)
class Explanation:
    """What a transaction is. ``per_commitment_secret``: the secret of a revoked commitment (the
    peer's, from the shachain store; or ours, which the peer holds)."""

    tx: Transaction
    kind: str
    spends_channel: bool
    channel_id: bytes | None = None
    owner: str | None = None
    commitment_number: int | None = None
    obscured_commitment_number: int | None = None
    revoked: bool = False
    per_commitment_secret: bytes | None = None
    outputs: tuple[ExplainedOutput, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def summary(self) -> str:
        if self.kind == UNKNOWN:
            return "not a commitment of a channel of ours" if not self.spends_channel else "spends a channel of ours"
        if self.kind == MUTUAL_CLOSE:
            return "a mutual (cooperative) close of a channel of ours: nothing to punish"
        whose = {LOCAL: "our", REMOTE: "the peer's"}.get(self.owner, "a")
        n = "" if self.commitment_number is None else f" {self.commitment_number}"
        if not self.spends_channel:
            return f"a commitment transaction, of no channel of ours (obscured number {self.obscured_commitment_number})"
        if self.revoked and self.owner == REMOTE:
            return f"the peer's revoked commitment{n}: we can take its to_local and HTLC outputs now"
        if self.revoked and self.owner == LOCAL:
            return f"our revoked commitment{n}: the peer can take our to_local and HTLC outputs"
        return f"{whose} commitment{n}, not revoked: nothing to punish"

    def to_json(self) -> dict:
        return {
            "txid": self.tx.txid_hex(),
            "summary": self.summary,
            "spends_channel": self.spends_channel,
            "channel_id": None if self.channel_id is None else self.channel_id.hex(),
            "kind": self.kind,
            "owner": self.owner,
            "commitment_number": self.commitment_number,
            "obscured_commitment_number": self.obscured_commitment_number,
            "revoked": self.revoked,
            "per_commitment_secret": None if self.per_commitment_secret is None else self.per_commitment_secret.hex(),
            "outputs": [o.to_json() for o in self.outputs],
            "notes": list(self.notes),
        }


def obscured_number(tx: Transaction) -> int | None:
    """The obscured commitment number if ``tx`` has the shape of a BOLT 3 commitment (version 2,
    one input, locktime upper byte 0x20, sequence upper byte 0x80), else None."""
    if tx.version != 2 or len(tx.inputs) != 1:
        return None
    try:
        return obscured_from_locktime_sequence(tx.locktime, tx.inputs[0].sequence)
    except DecodeError:
        return None


def _script_type(spk: bytes) -> str:
    return classify(spk)[0]


def _parties(owner: str) -> tuple[str, str]:
    return ("us", "them") if owner == LOCAL else ("them", "us")


def _revocation_claim(counter: str) -> Claim:
    return Claim(counter, "with the revocation key (justice)", "now")


def _outputs_by_script(view: CommitmentView) -> dict[bytes, tuple[str, bytes | None, Htlc | None, str | None]]:
    """scriptPubKey -> (type, witness script, htlc, whose anchor)."""
    k = view.keys
    wanted: dict = {}
    if k is not None and k.revocation_pubkey is not None and k.local_delayed_pubkey is not None:
        ws = to_local_script(k.revocation_pubkey, view.to_self_delay, k.local_delayed_pubkey)
        wanted[p2wsh_script(ws)] = (TO_LOCAL, ws, None, None)
    if view.to_remote_script is not None:
        wanted[view.to_remote_script] = (TO_REMOTE, None, None, None)
    if view.anchors:
        holder, counter = _parties(view.owner)
        for pub, who in zip(view.funding_pubkeys, (holder, counter)):
            if pub is not None:
                ws = anchor_script(pub)
                wanted[p2wsh_script(ws)] = (ANCHOR, ws, None, who)
    if k is not None and None not in (k.revocation_pubkey, k.local_htlc_pubkey, k.remote_htlc_pubkey):
        for h in view.htlcs:
            ws = htlc_witness_script(h, k, view.anchors)
            wanted[p2wsh_script(ws)] = (OFFERED_HTLC if h.offered else RECEIVED_HTLC, ws, h, None)
    return wanted


def _claims(view: CommitmentView, kind: str, htlc: Htlc | None, anchor_of: str | None) -> tuple[Claim, ...]:
    holder, counter = _parties(view.owner)
    delay = view.to_self_delay
    rev = (_revocation_claim(counter),) if view.revoked else ()
    if kind == TO_LOCAL:
        return rev + (Claim(holder, "with the delayed payment key (to_local)", f"after to_self_delay {delay} blocks from confirmation"),)
    if kind == TO_REMOTE:
        when = "1 block after confirmation" if view.anchors else "now"
        return (Claim(counter, "with the payment key (to_remote)", when),)
    if kind == ANCHOR:
        return (
            Claim(anchor_of, "with the funding key (anchor, to bump the fee)", "now"),
            Claim("anyone", "with the anchor script alone", f"after {ANCHOR_CSV} blocks from confirmation"),
        )
    then = f", then to_self_delay {delay} blocks"
    if kind == OFFERED_HTLC:
        return rev + (
            Claim(counter, "with the payment preimage", "now"),
            Claim(holder, f"with an HTLC-timeout transaction{then}", f"after cltv_expiry {htlc.cltv_expiry}"),
        )
    return rev + (
        Claim(holder, f"with the payment preimage, in an HTLC-success transaction{then}", "now"),
        Claim(counter, "by timing it out", f"after cltv_expiry {htlc.cltv_expiry}"),
    )


def explain_commitment(tx: Transaction, view: CommitmentView) -> tuple[ExplainedOutput, ...]:
    """Each output of ``tx`` read with ``view``: its type and claims (type ``unknown``, no claims,
    when the view does not recognise it)."""
    wanted = _outputs_by_script(view)
    out = []
    for vout, o in enumerate(tx.outputs):
        hit = wanted.get(o.script_pubkey)
        st = _script_type(o.script_pubkey)
        if hit is None:
            out.append(ExplainedOutput(vout, UNKNOWN, o.value_sat, st))
            continue
        kind, ws, htlc, anchor_of = hit
        out.append(ExplainedOutput(vout, kind, o.value_sat, st, _claims(view, kind, htlc, anchor_of), htlc, ws))
    return tuple(out)


def recognised(outputs: Sequence[ExplainedOutput]) -> int:
    """How many outputs a view recognised, anchors aside (both sides' views know them)."""
    return sum(1 for o in outputs if o.type not in (UNKNOWN, ANCHOR))


def mutual_close_outputs(tx: Transaction) -> tuple[ExplainedOutput, ...]:
    claim = (Claim("the script's owner", "a plain output of the closing transaction", "now"),)
    return tuple(
        ExplainedOutput(v, CLOSE_OUTPUT, o.value_sat, _script_type(o.script_pubkey), claim) for v, o in enumerate(tx.outputs)
    )


def explain_transaction(
    tx: Transaction,
    *,
    funding_outpoint: OutPoint | None = None,
    channel_id: bytes | None = None,
    obscure_factor: int | None = None,
    views: Sequence[CommitmentView] = (),
    prefer: str | None = None,
    secret_of=None,
) -> Explanation:
    """Explain ``tx``. ``funding_outpoint``: the channel's (None: no channel of ours is
    known to be spent). ``views``: candidate readings as a commitment (ours, theirs); the one
    that recognises most outputs wins, ``prefer`` breaking ties. ``secret_of(view)`` gives the
    per_commitment_secret of a revoked view (or None)."""
    number = obscured_number(tx)
    spends = funding_outpoint is not None and any(i.prevout == funding_outpoint for i in tx.inputs)
    if not spends:
        kind = COMMITMENT if number is not None else UNKNOWN
        outs = tuple(ExplainedOutput(v, UNKNOWN, o.value_sat, _script_type(o.script_pubkey)) for v, o in enumerate(tx.outputs))
        return Explanation(tx, kind, False, obscured_commitment_number=number, outputs=outs)
    if number is None:
        return Explanation(tx, MUTUAL_CLOSE, True, channel_id, outputs=mutual_close_outputs(tx))
    n = None if obscure_factor is None else number ^ obscure_factor
    best = None
    for view in views:
        outs = explain_commitment(tx, view)
        score = (recognised(outs), view.owner == prefer)
        if best is None or score > best[0]:
            best = (score, view, outs)
    if best is None or best[0][0] == 0:
        outs = tuple(ExplainedOutput(v, UNKNOWN, o.value_sat, _script_type(o.script_pubkey)) for v, o in enumerate(tx.outputs))
        return Explanation(
            tx, COMMITMENT, True, channel_id, None, n, number, outputs=outs,
            notes=("no output matches the keys of this commitment number on either side",),
        )
    _, view, outs = best
    secret = secret_of(view) if (view.revoked and secret_of is not None) else None
    return Explanation(tx, COMMITMENT, True, channel_id, view.owner, n, number, view.revoked, secret, outs)


# ---------------------------------------------------------------------------------------------
# Offline: the keys by hand


def _bytes(value: bytes | None, name: str, size: int) -> bytes | None:
    if value is None:
        return None
    if len(value) != size:
        raise InputError(f"{name} must be {size} bytes, got {len(value)}")
    return bytes(value)


def parse_htlc_spec(text: str) -> Htlc:
    """``offered|received:PAYMENT_HASH:CLTV_EXPIRY`` (direction from the commitment holder's
    side, as in BOLT 3: ``offered`` = offered by the cheater) -> Htlc (amount unknown: 0)."""
    parts = text.strip().split(":")
    if len(parts) != 3 or parts[0] not in ("offered", "received"):
        raise InputError(f"--htlc {text[:24]!r}: expected offered|received:PAYMENT_HASH:CLTV_EXPIRY")
    try:
        payment_hash = bytes.fromhex(parts[1])
    except ValueError:
        raise InputError(f"--htlc {text[:24]!r}: the payment hash is not hex") from None
    if len(payment_hash) != 32 or not parts[2].isdigit() or int(parts[2]) >= 1 << 32:
        raise InputError(f"--htlc {text[:24]!r}: a 32-byte payment hash and a 32-bit cltv_expiry, please")
    return Htlc(0, 0, payment_hash, int(parts[2]), parts[0] == "offered")


def offline_view(
    *,
    per_commitment_secret: bytes,
    revocation_basepoint_secret: bytes,
    remote_delayed_payment_basepoint: bytes,
    to_self_delay: int,
    remote_htlc_basepoint: bytes | None = None,
    local_htlc_basepoint: bytes | None = None,
    local_payment_basepoint: bytes | None = None,
    htlcs: Sequence[Htlc] = (),
    anchors: bool = False,
) -> tuple[CommitmentView, bytes]:
    """The view of the peer's revoked commitment from the minimal keys BOLT 3 needs, and the
    revocation private key. "remote" is the cheater (the holder), "local" is us:

    - to_local: revocationpubkey (our revocation basepoint, from its secret, and the
      per_commitment_point, from the revealed secret), the cheater's delayed_payment_basepoint,
      to_self_delay;
    - HTLC outputs: both htlc basepoints and each HTLC's direction, payment hash, cltv_expiry;
    - to_remote (optional, recognition only): our payment_basepoint.

    InputError on keys of the wrong size or that are not valid secp256k1 keys."""
    secret = _bytes(per_commitment_secret, "the per-commitment secret", 32)
    rb_secret = _bytes(revocation_basepoint_secret, "the revocation basepoint secret", 32)
    delayed_bp = _bytes(remote_delayed_payment_basepoint, "the remote delayed payment basepoint", 33)
    r_htlc = _bytes(remote_htlc_basepoint, "the remote htlc basepoint", 33)
    l_htlc = _bytes(local_htlc_basepoint, "the local htlc basepoint", 33)
    l_pay = _bytes(local_payment_basepoint, "the local payment basepoint", 33)
    if not isinstance(to_self_delay, int) or not 0 <= to_self_delay <= 0xFFFF:
        raise InputError(f"to_self_delay must be between 0 and 65535, got {to_self_delay}")
    if htlcs and (r_htlc is None or l_htlc is None):
        raise InputError("HTLC outputs need both htlc basepoints (--remote-htlc-basepoint, --local-htlc-basepoint)")
    try:
        pcp = per_commitment_point(secret)
        priv = revocation_privkey(secret, rb_secret)
        revocation_pub = derive_revocation_pubkey(pubkey_from_privkey(rb_secret), pcp)
        keys = CommitmentKeys(
            per_commitment_point=pcp,
            revocation_pubkey=revocation_pub,
            local_delayed_pubkey=derive_pubkey(delayed_bp, pcp),
            local_htlc_pubkey=None if r_htlc is None else derive_pubkey(r_htlc, pcp),
            remote_htlc_pubkey=None if l_htlc is None else derive_pubkey(l_htlc, pcp),
            remote_payment_pubkey=l_pay,
            local_funding_pubkey=None,
            remote_funding_pubkey=None,
        )
        to_remote = None
        if l_pay is not None:
            to_remote = p2wsh_script(to_remote_anchor_script(l_pay)) if anchors else to_remote_script_pubkey(l_pay, False)
    except (ValueError, DecodeError) as e:
        raise InputError(f"bad key: {e}") from None
    view = CommitmentView(REMOTE, keys, to_self_delay, anchors, to_remote, (None, None), tuple(htlcs), revoked=True)
    return view, priv

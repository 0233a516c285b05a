"""The node's invoices: BOLT 11 invoices it issued, their preimages, and whether they were paid.

Stored in the node's database (``DATADIR/NETWORK/node.sqlite3``, component ``invoices``). The
preimage and the payment_secret are drawn here, at the edge, from ``os.urandom``; the invoice is
signed with the node key. Statuses: ``unpaid``, ``paid`` (with ``paid_at`` and
``amount_received_msat``) and ``expired`` (unpaid past ``created_at + expiry``; computed when
read, never stored).

:meth:`InvoiceStore.check_htlc` implements the final node's checks of BOLT 4 for an incoming
HTLC; the payment code calls it, and :meth:`InvoiceStore.mark_paid` once it settles.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lncli.errors import InputError
from lncli.store.db import migrate, transaction


def payment_hash_param(payment_hash: str | None) -> bytes | None:
    """An optional RPC ``payment_hash`` filter: None, or 32 bytes from 64 hex characters."""
    if payment_hash is None:
        return None
    try:
        ph = bytes.fromhex(payment_hash)
    except (ValueError, TypeError):
        raise InputError("payment_hash must be 64 hex characters") from None
    if len(ph) != 32:
        raise InputError("payment_hash must be 64 hex characters")
    return ph


COMPONENT = "invoices"
MIGRATIONS = [
    """
CREATE TABLE invoices (
    id INTEGER PRIMARY KEY,
    payment_hash BLOB NOT NULL UNIQUE,
    preimage BLOB NOT NULL,
    payment_secret BLOB NOT NULL,
    amount_msat INTEGER,
    description TEXT,
    description_hash BLOB,
    created_at INTEGER NOT NULL,
    expiry INTEGER NOT NULL,
    min_final_cltv_expiry_delta INTEGER NOT NULL,
    bolt11 TEXT NOT NULL,
    paid_at INTEGER,
    amount_received_msat INTEGER
)"""
]

DEFAULT_EXPIRY = 3600
# BOLT 11's default when the c field is absent; we always write c.
DEFAULT_MIN_FINAL_CLTV_EXPIRY_DELTA = 18
MAX_EXPIRY = 10 * 365 * 24 * 3600
# var_onion_optin and payment_secret, both required (bits 8 and 14, as in BOLT 11's examples), and
# basic_mpp optional (bit 17): the payee holds the parts of a payment until total_msat arrives
INVOICE_FEATURES = frozenset({8, 14, 17})

UNPAID, PAID, EXPIRED = "unpaid", "paid", "expired"
STATUSES = (UNPAID, PAID, EXPIRED)

OK = "ok"
INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS = "incorrect_or_unknown_payment_details"
FINAL_INCORRECT_CLTV_EXPIRY = "final_incorrect_cltv_expiry"
FINAL_INCORRECT_HTLC_AMOUNT = "final_incorrect_htlc_amount"

_NETWORKS = {"regtest": "regtest", "testnet": "testnet", "signet": "signet", "mainnet": "bitcoin", "bitcoin": "bitcoin"}


@dataclass(frozen=True)
class InvoiceRecord:
    payment_hash: bytes
    preimage: bytes
    payment_secret: bytes
    amount_msat: int | None
    description: str | None
    description_hash: bytes | None
    created_at: int
    expiry: int
    min_final_cltv_expiry_delta: int
    bolt11: str
    paid_at: int | None
    amount_received_msat: int | None

    @property
    def expires_at(self) -> int:
        return self.created_at + self.expiry

    def status(self, now: float) -> str:
        if self.paid_at is not None:
            return PAID
        return EXPIRED if now >= self.expires_at else UNPAID

    def to_json(self, now: float) -> dict:
        status = self.status(now)
        return {
            "payment_hash": self.payment_hash.hex(),
            "status": status,
            "bolt11": self.bolt11,
            "amount_msat": self.amount_msat,
            "description": self.description,
            "description_hash": None if self.description_hash is None else self.description_hash.hex(),
            "payment_secret": self.payment_secret.hex(),
            "created_at": self.created_at,
            "expiry": self.expiry,
            "expires_at": self.expires_at,
            "min_final_cltv_expiry_delta": self.min_final_cltv_expiry_delta,
            "paid_at": self.paid_at,
            "amount_received_msat": self.amount_received_msat,
            # the preimage is only shown once it is no longer a secret
            "payment_preimage": self.preimage.hex() if status == PAID else None,
        }


_COLUMNS = ("payment_hash, preimage, payment_secret, amount_msat, description, description_hash, created_at, "
            "expiry, min_final_cltv_expiry_delta, bolt11, paid_at, amount_received_msat")


def _record(row) -> InvoiceRecord:
    return InvoiceRecord(
        bytes(row[0]), bytes(row[1]), bytes(row[2]), row[3], row[4],
        None if row[5] is None else bytes(row[5]), row[6], row[7], row[8], row[9], row[10], row[11],
    )


class InvoiceStore:
    """Invoices in ``db`` (an open node database), signed with ``node_key`` for ``network``.

    ``clock`` gives the Unix time (default ``time.time``); ``random`` gives n random bytes
    (default ``os.urandom``)."""

    def __init__(
        self,
        db,
        node_key: bytes,
        network: str,
        *,
        clock: Callable[[], float] = time.time,
        random: Callable[[int], bytes] = os.urandom,
        min_final_cltv_expiry_delta: int = DEFAULT_MIN_FINAL_CLTV_EXPIRY_DELTA,
    ):
        if network not in _NETWORKS:
            raise InputError(f"unknown network {network!r}")
        self.db = db
        self.node_key = node_key
        self.network = network
        self.clock = clock
        self.random = random
        self.min_final_cltv_expiry_delta = min_final_cltv_expiry_delta
        #: bumped by every change to an invoice (made or paid): a record read before is stale
        self.version = 0
        migrate(db, COMPONENT, MIGRATIONS)

    # -- creating ---------------------------------------------------------------------------------

    def create(
        self,
        amount_msat: int | None = None,
        description: str | None = None,
        description_hash: bytes | None = None,
        expiry: int | None = None,
        route_hints: Sequence = (),
    ) -> InvoiceRecord:
        """A new signed invoice. ``amount_msat`` None: any amount. With neither a description nor
        a description_hash, the description is empty. ``route_hints``: sequences of
        :class:`lncli.proto.invoice.RouteHintHop` (private channels)."""
        from lncli.proto import invoice as bolt11

        if amount_msat is not None:
            if isinstance(amount_msat, bool) or not isinstance(amount_msat, int) or amount_msat <= 0:
                raise InputError("amount_msat must be a positive whole number (or none for any amount)")
            if amount_msat > 21_000_000 * 100_000_000_000:
                raise InputError("amount_msat is more than 21 million bitcoin")
        if description is not None and description_hash is not None:
            raise InputError("give a description or a description hash, not both")
        if description_hash is not None and len(description_hash) != 32:
            raise InputError("the description hash must be 32 bytes (64 hex characters)")
        if description is None and description_hash is None:
            description = ""
        expiry = DEFAULT_EXPIRY if expiry is None else expiry
        if isinstance(expiry, bool) or not isinstance(expiry, int) or not 0 < expiry <= MAX_EXPIRY:
            raise InputError(f"expiry must be 1 to {MAX_EXPIRY} seconds")
        now = int(self.clock())
        preimage = self.random(32)
        payment_secret = self.random(32)
        payment_hash = hashlib.sha256(preimage).digest()
        text = bolt11.encode(
            privkey=self.node_key,
            timestamp=now,
            payment_hash=payment_hash,
            payment_secret=payment_secret,
            network=_NETWORKS[self.network],
            amount_msat=amount_msat,
            description=description,
            description_hash=description_hash,
            expiry=expiry,
            min_final_cltv_expiry_delta=self.min_final_cltv_expiry_delta,
            route_hints=tuple(tuple(r) for r in route_hints),
            features=INVOICE_FEATURES,
        )
        self.version += 1
        with transaction(self.db):
            self.db.execute(
                f"INSERT INTO invoices({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,NULL,NULL)",
                (payment_hash, preimage, payment_secret, amount_msat, description, description_hash, now, expiry,
                 self.min_final_cltv_expiry_delta, text),
            )
        return InvoiceRecord(payment_hash, preimage, payment_secret, amount_msat, description, description_hash,
                             now, expiry, self.min_final_cltv_expiry_delta, text, None, None)

    # -- reading ----------------------------------------------------------------------------------

    def lookup(self, payment_hash: bytes) -> InvoiceRecord | None:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM invoices WHERE payment_hash=?", (bytes(payment_hash),)).fetchone()
        return None if row is None else _record(row)

    def list(self, status: str | None = None, payment_hash: bytes | None = None) -> list[InvoiceRecord]:
        """Invoices in creation order, optionally only one status or one payment_hash."""
        if status is not None and status not in STATUSES:
            raise InputError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        sql = f"SELECT {_COLUMNS} FROM invoices"
        where, args = [], []
        if payment_hash is not None:
            where.append("payment_hash=?")
            args.append(bytes(payment_hash))
        now = self.clock()
        if status == PAID:
            where.append("paid_at IS NOT NULL")
        elif status == UNPAID:
            where.append("paid_at IS NULL AND created_at + expiry > ?")
            args.append(now)
        elif status == EXPIRED:
            where.append("paid_at IS NULL AND created_at + expiry <= ?")
            args.append(now)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_record(r) for r in self.db.execute(sql + " ORDER BY id", args)]

    def status(self, record: InvoiceRecord) -> str:
        return record.status(self.clock())

    def to_json(self, record: InvoiceRecord) -> dict:
        return record.to_json(self.clock())

    # -- paying -----------------------------------------------------------------------------------

    def mark_paid(self, payment_hash: bytes, amount_msat: int) -> InvoiceRecord:
        """Record that ``payment_hash`` was paid ``amount_msat`` (now). Paying twice keeps the
        first record. InputError for an unknown payment_hash."""
        with transaction(self.db):
            if self.mark_paid_in(self.db, [(payment_hash, amount_msat)]) == 0 and self.lookup(payment_hash) is None:
                raise InputError(f"no invoice with payment_hash {bytes(payment_hash).hex()}")
        return self.lookup(payment_hash)

    def mark_paid_in(self, conn, paid: Sequence[tuple[bytes, int]]) -> int:
        """:meth:`mark_paid` for each (payment_hash, amount_msat) of ``paid``, in the caller's open
        transaction on ``conn`` (a channel's: the fulfill and its invoice in one write); returns
        how many invoices were newly marked."""
        now = int(self.clock())
        self.version += 1
        marked = 0
        for payment_hash, amount_msat in paid:
            marked += conn.execute(
                "UPDATE invoices SET paid_at=?, amount_received_msat=? WHERE payment_hash=? AND paid_at IS NULL",
                (now, amount_msat, bytes(payment_hash)),
            ).rowcount
        return marked

    def check_htlc(
        self,
        payment_hash: bytes,
        payment_secret: bytes | None,
        amount_msat: int,
        total_msat: int | None,
        cltv_expiry: int,
        current_height: int,
        *,
        amt_to_forward: int | None = None,
        outgoing_cltv_value: int | None = None,
        invoice: InvoiceRecord | None = None,
    ) -> str:
        """The BOLT 4 final-node checks for an incoming HTLC: ``"ok"`` or the failure's name.

        ``amount_msat`` and ``cltv_expiry`` are the HTLC's (update_add_htlc); ``payment_secret``,
        ``total_msat``, ``amt_to_forward`` and ``outgoing_cltv_value`` come from the onion's final
        hop payload (``total_msat`` None: equal to ``amt_to_forward``; ``amt_to_forward`` None: the
        HTLC amount). For a part of a multi-part payment (basic_mpp: ``total_msat`` more than
        ``amt_to_forward``) the checks are of ``total_msat`` (BOLT 4: "amount paid" is
        ``total_msat``); the caller holds the part until its HTLC set reaches ``total_msat``.
        An invoice already paid is treated as unknown. ``invoice``: the
        record of ``payment_hash`` if the caller just looked it up (saves a query).
        """
        if amt_to_forward is not None and amount_msat < amt_to_forward:
            return FINAL_INCORRECT_HTLC_AMOUNT
        if outgoing_cltv_value is not None and cltv_expiry < outgoing_cltv_value:
            return FINAL_INCORRECT_CLTV_EXPIRY
        fail = INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS
        inv = invoice if invoice is not None and invoice.payment_hash == bytes(payment_hash) else self.lookup(payment_hash)
        if inv is None or inv.paid_at is not None:
            return fail
        if payment_secret is None or bytes(payment_secret) != inv.payment_secret:
            return fail
        if self.clock() >= inv.expires_at:
            return fail
        forwarded = amount_msat if amt_to_forward is None else amt_to_forward
        paid = forwarded if total_msat is None else total_msat
        if paid < forwarded:  # total_msat below this part alone: inconsistent
            return fail
        if inv.amount_msat is not None and not inv.amount_msat <= paid <= 2 * inv.amount_msat:
            return fail
        if cltv_expiry < current_height + inv.min_final_cltv_expiry_delta:
            return fail
        return OK


# -- wiring into the node ---------------------------------------------------------------------


def register(registry, store: InvoiceStore, hints: Callable[[], Sequence] | None = None) -> None:
    """``hints`` gives the route hints of the node's private channels
    (:meth:`lncli.node.channels.ChannelManager.route_hints`); the ``invoice`` method adds them
    unless ``route_hints`` is false."""

    async def invoice(
        amount_msat: int | None = None,
        description: str | None = None,
        description_hash: str | None = None,
        expiry: int | None = None,
        route_hints: bool = True,
    ) -> dict:
        dh = None
        if description_hash is not None:
            try:
                dh = bytes.fromhex(description_hash)
            except (ValueError, TypeError):
                raise InputError("description_hash must be 64 hex characters") from None
        if description is not None and not isinstance(description, str):
            raise InputError("description must be a string")
        if not isinstance(route_hints, bool):
            raise InputError("route_hints must be true or false")
        r = hints() if (route_hints and hints is not None) else ()
        return store.to_json(store.create(amount_msat, description, dh, expiry, route_hints=r))

    async def listinvoices(payment_hash: str | None = None, status: str | None = None) -> list:
        ph = payment_hash_param(payment_hash)
        now = store.clock()
        return [r.to_json(now) for r in store.list(status, ph)]

    registry.add("invoice", invoice)
    registry.add("listinvoices", listinvoices)


__all__ = [
    "InvoiceStore",
    "InvoiceRecord",
    "register",
    "OK",
    "INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS",
    "FINAL_INCORRECT_CLTV_EXPIRY",
    "FINAL_INCORRECT_HTLC_AMOUNT",
    "STATUSES",
]

"""``lncli penalty`` from a datadir, with no node running: what a transaction spending a channel
is (:mod:`lncli.monitor.explain`), and the justice transaction for a revoked commitment the peer
published (BOLT 5); or, ``--offline``, the same from keys given by hand, with no datadir.

The monitor computes it (:mod:`lncli.monitor.penalty`); this module gives it what only the node's
side knows: the channel records in ``DATADIR/NETWORK/node.sqlite3``
(:func:`lncli.node.channels.stored_channels`), the chain backend (to fetch a transaction by txid,
and to broadcast) and the wallet (a destination when the monitor has none).

``env`` is anything with ``datadir``, ``network``, ``netdir``, ``config`` and ``ensure_netdir()``
(the CLI's ``Env``), as :func:`lncli.chain.backend.open_backend` and
:func:`lncli.wallet.wallet.open_wallet` take it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lncli.bitcoin.tx import Transaction
from lncli.errors import InputError
from lncli.monitor.explain import Explained, explain_for_channels, explain_offline
from lncli.monitor.monitor import DEFAULT_FEERATE_PER_KW
from lncli.monitor.penalty import Penalty, feerate_per_kw_from_sat_per_vb, parse_revoked_tx, penalty_for_channels
from lncli.proto.commitment_explain import explain_transaction

__all__ = ["OfflineKeys", "PenaltyResult", "penalty_for_datadir", "explain_for_datadir", "explain_penalty"]


def penalty_for_datadir(datadir: Path | str, network: str, channel: str, revoked_tx: Transaction, **options) -> Penalty:
    """:func:`lncli.monitor.penalty.penalty_for_channels` for the channel ``channel`` names in
    ``datadir``'s node database; ``options`` as that function takes them (destination_script,
    destination_fn, feerate_per_kw)."""
    from lncli.monitor.store import MonitorStore, monitor_db_path
    from lncli.node.channels import stored_channels
    from lncli.store.db import OperationalError, open_db

    path = monitor_db_path(datadir, network)
    if not path.exists():
        raise InputError(f"no node database at {path}: this datadir has no channels")
    db = open_db(path, {})
    try:
        try:
            channels = stored_channels(db)
        except OperationalError:
            channels = []
        if not channels:
            raise InputError(f"no channels in {path}")
        return penalty_for_channels(MonitorStore(db), channels, channel, revoked_tx, **options)
    finally:
        db.close()


@dataclass(frozen=True)
class OfflineKeys:
    """The keys ``lncli penalty --offline`` takes by hand (see
    :func:`lncli.monitor.explain.explain_offline`)."""

    per_commitment_secret: bytes
    revocation_basepoint_secret: bytes
    remote_delayed_payment_basepoint: bytes
    to_self_delay: int
    remote_htlc_basepoint: bytes | None = None
    local_htlc_basepoint: bytes | None = None
    local_payment_basepoint: bytes | None = None
    obscure_factor: int | None = None
    htlcs: tuple = ()
    anchors: bool = False


@dataclass(frozen=True)
class PenaltyResult:
    """What ``lncli penalty`` prints: the explanation, its justice tx, whether it was broadcast."""

    explained: Explained
    network: str
    broadcast: bool

    def to_json(self) -> dict:
        data = self.explained.to_json(self.network)
        data["broadcast"] = self.broadcast
        return data


def explain_for_datadir(datadir: Path | str, network: str, tx: Transaction, channel: str | None = None, **options) -> Explained:
    """:func:`lncli.monitor.explain.explain_for_channels` with the channels of ``datadir``'s node
    database (none, or no database: the transaction spends no channel of ours, unless a
    ``channel`` was named, which is then an error)."""
    from lncli.monitor.store import MonitorStore, monitor_db_path
    from lncli.node.channels import stored_channels
    from lncli.store.db import OperationalError, open_db

    path = monitor_db_path(datadir, network)
    if not path.exists():
        if channel is not None:
            raise InputError(f"no node database at {path}: this datadir has no channels")
        return Explained(explain_transaction(tx))
    db = open_db(path, {})
    try:
        try:
            channels = stored_channels(db)
        except OperationalError:
            channels = []
        if not channels and channel is not None:
            raise InputError(f"no channels in {path}")
        return explain_for_channels(MonitorStore(db), channels, tx, channel, **options)
    finally:
        db.close()


def explain_penalty(
    env,
    tx_text: str,
    channel: str | None = None,
    *,
    destination: str | None = None,
    feerate_sat_per_vb: float | None = None,
    broadcast: bool = False,
    offline: OfflineKeys | None = None,
) -> PenaltyResult:
    """``lncli penalty``: explain the transaction ``tx_text`` (its hex, or its txid, fetched
    through the chain backend; hex only ``offline``) against ``env``'s datadir (the channel
    ``channel`` names, else the channel whose funding it spends), or against the keys of
    ``offline`` with no datadir; with the justice tx of a revoked commitment of the peer, sent
    through the chain backend if ``broadcast`` (RefusedError when there is none). The swept
    funds go to ``destination`` (an address), else the monitor's sweep address, else a new
    wallet address. The backend is opened only when needed."""
    feerate_per_kw = None if feerate_sat_per_vb is None else feerate_per_kw_from_sat_per_vb(feerate_sat_per_vb)
    dest_script = None
    if destination is not None:
        from lncli.bitcoin.address import address_to_script

        dest_script = address_to_script(destination, env.network)
    backend = None

    def get_backend():
        nonlocal backend
        if backend is None:
            from lncli.chain.backend import open_backend

            backend = open_backend(env)
        return backend

    def fetch(txid: bytes):
        status = get_backend().get_transaction(txid)
        return None if status is None else status.tx

    def new_address() -> bytes:
        from lncli.bitcoin.address import address_to_script
        from lncli.wallet.wallet import open_wallet

        w = open_wallet(env, None)
        try:
            return address_to_script(w.new_address(False), env.network)
        finally:
            w.close()

    try:
        if offline is not None:
            if dest_script is None:
                raise InputError("--offline needs --destination ADDRESS (there is no wallet to pay)")
            tx = parse_revoked_tx(tx_text, None)
            result = explain_offline(
                tx,
                destination_script=dest_script,
                feerate_per_kw=DEFAULT_FEERATE_PER_KW if feerate_per_kw is None else feerate_per_kw,
                **{k: getattr(offline, k) for k in OfflineKeys.__dataclass_fields__},
            )
        else:
            tx = parse_revoked_tx(tx_text, fetch)
            result = explain_for_datadir(
                env.datadir, env.network, tx, channel,
                destination_script=dest_script, destination_fn=new_address, feerate_per_kw=feerate_per_kw,
            )
        if broadcast:
            get_backend().broadcast(result.require_justice().tx)
        return PenaltyResult(result, env.network, broadcast)
    finally:
        if backend is not None:
            backend.close()

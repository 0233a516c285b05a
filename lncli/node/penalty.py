"""``lncli penalty`` from a datadir, with no node running: the justice transaction for a revoked
commitment the peer published (BOLT 5).

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
from lncli.monitor.penalty import Penalty, feerate_per_kw_from_sat_per_vb, parse_revoked_tx, penalty_for_channels

__all__ = ["PenaltyResult", "penalty_for_datadir", "punish"]


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
class PenaltyResult:
    """What ``lncli penalty`` prints: the :class:`Penalty` and whether it was broadcast."""

    penalty: Penalty
    network: str
    broadcast: bool

    def to_json(self) -> dict:
        data = self.penalty.to_json(self.network)
        data["broadcast"] = self.broadcast
        return data


def punish(
    env,
    channel: str,
    revoked_tx: str,
    *,
    destination: str | None = None,
    feerate_sat_per_vb: float | None = None,
    broadcast: bool = False,
) -> PenaltyResult:
    """The justice tx for ``revoked_tx`` (its hex, or its txid, fetched through the chain backend)
    on the channel ``channel`` names in ``env``'s datadir; sent through the chain backend if
    ``broadcast``. The swept funds go to ``destination`` (an address), else the monitor's sweep
    address, else a new wallet address. The backend is opened only when needed."""
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
        tx = parse_revoked_tx(revoked_tx, fetch)
        p = penalty_for_datadir(
            env.datadir, env.network, channel, tx,
            destination_script=dest_script, destination_fn=new_address, feerate_per_kw=feerate_per_kw,
        )
        if broadcast:
            get_backend().broadcast(p.tx)
        return PenaltyResult(p, env.network, broadcast)
    finally:
        if backend is not None:
            backend.close()

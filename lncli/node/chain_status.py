"""``lncli chain-status``: the chain backend's state and, if the datadir has a wallet, its
balance. Offline (no node needed): it opens the backend and the wallet the datadir's config
names, like ``bitcoin-cli -getinfo``.

``env`` is anything with ``datadir``, ``network``, ``netdir``, ``config`` and ``ensure_netdir()``
(the CLI's ``Env``), as :func:`lncli.chain.backend.open_backend` takes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lncli.chain.interface import ChainInfo

__all__ = ["ChainStatus", "chain_status"]


@dataclass(frozen=True)
class ChainStatus:
    info: ChainInfo
    wallet_balance: object | None = None  # lncli.wallet.wallet.Balance, if the datadir has a wallet

    def to_json(self) -> dict:
        info = self.info
        data = {
            "chain": info.chain,
            "blocks": info.blocks,
            "headers": info.headers,
            "verification_progress": info.verification_progress,
            "difficulty": info.difficulty,
            "best_block_hash": info.best_block_hash,
            "mempool_size": info.mempool_size,
            "backend": info.backend,
            "version": info.version,
            "location": info.location,
        }
        if self.wallet_balance is not None:
            data["wallet_balance"] = self.wallet_balance.to_json()
        return data


def chain_status(env) -> ChainStatus:
    """The backend's info, and the wallet's balance after a sync (never creates a wallet)."""
    from lncli.chain.backend import open_backend
    from lncli.wallet.wallet import open_wallet

    backend = open_backend(env)
    try:
        info = backend.info()
        balance = None
        wallet = open_wallet(env, backend, create=False)
        if wallet is not None:
            try:
                wallet.sync()
                balance = wallet.balance()
            finally:
                wallet.close()
        return ChainStatus(info, balance)
    finally:
        backend.close()

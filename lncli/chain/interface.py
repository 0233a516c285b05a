"""The one chain interface the node, the wallet and the commands use, whatever the backend.

Backends: ``lncli.chain.bitcoind`` (Bitcoin Core over JSON-RPC) and ``lncli.chain.embedded`` (a
regtest chain in SQLite, the default on regtest when no bitcoind is configured). Both pass the
same contract tests (tests/chain/test_contract.py).

Confirmation and spend notices are found by scanning blocks (``lncli.chain.scan``); a backend only
has to serve blocks by height and hash. Reorgs: none yet on the embedded chain; consumers must
still compare ``Block.prev_hash`` with what they saw and rescan when it differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from lncli.bitcoin.tx import Transaction
from lncli.errors import LncliError, RefusedError, UnreachableError


class ChainError(LncliError):
    """A chain-level failure that is not the user's input."""


class TxRejected(RefusedError):
    """``broadcast`` refused a transaction. ``reason`` is bitcoind's (v29) full reject string, e.g.
    ``bad-txns-inputs-missingorspent``, ``non-BIP68-final``, ``non-final``, ``bad-txns-in-belowout,
    value in (0.0001) < value out (0.00010001)``, ``mempool-script-verify-flag-failed (...), input 0
    of TXID (wtxid WTXID), spending TXID:N``, ``insufficient fee, rejecting replacement TXID; ...``;
    ``lncli.chain.validation.reject_code(reason)`` is its code alone."""

    def __init__(self, reason: str, txid: str | None = None):
        self.reason = reason
        self.txid = txid
        super().__init__(f"transaction {txid + ' ' if txid else ''}rejected: {reason}")


class BackendUnreachable(UnreachableError):
    """Exit 3: ``cannot reach bitcoind at HOST:PORT (<reason>)`` and the like."""


@dataclass(frozen=True)
class Block:
    height: int
    hash: bytes  # internal byte order
    prev_hash: bytes  # internal byte order
    time: int
    txs: tuple[Transaction, ...]

    @property
    def hash_hex(self) -> str:
        return self.hash[::-1].hex()


@dataclass(frozen=True)
class TxStatus:
    tx: Transaction
    confirmations: int  # 0 = in the mempool
    block_height: int | None = None
    block_hash: bytes | None = None


@dataclass(frozen=True)
class ChainInfo:
    """What ``lncli chain-status`` shows, like ``bitcoin-cli -getinfo``."""

    chain: str  # "regtest", "test", "signet", "main" (bitcoind's names)
    blocks: int
    headers: int
    best_block_hash: str  # display hex
    difficulty: float
    verification_progress: float
    mempool_size: int
    backend: str  # "embedded" or "bitcoind"
    version: str  # backend version string
    location: str  # chain directory, or host:port
    extra: dict = field(default_factory=dict)


@runtime_checkable
class ChainBackend(Protocol):
    kind: str
    network: str  # lncli's network name: regtest, testnet, signet, mainnet

    def info(self) -> ChainInfo: ...

    def tip(self) -> tuple[int, bytes]:
        """(height, block hash in internal order) of the best block."""

    def block_hash(self, height: int) -> bytes:
        """Internal-order hash of the block at ``height``; ChainError if above the tip."""

    def block(self, block_hash: bytes) -> Block: ...

    def block_at(self, height: int) -> Block: ...

    def get_transaction(self, txid: bytes) -> TxStatus | None:
        """A confirmed or mempool transaction by internal-order txid, or None if unknown.

        (bitcoind needs ``txindex=1`` for arbitrary confirmed txs; without it only mempool and
        wallet txs are found.)"""

    def broadcast(self, tx: Transaction) -> bytes:
        """Validate and accept into the mempool; return the txid. Raises TxRejected(reason)."""

    def mempool_txids(self) -> list[bytes]: ...

    def estimate_feerate_per_kw(self, target_blocks: int = 6) -> int:
        """Fee rate in sat per 1000 weight units; never below 253."""

    def mine(self, n: int, script_pubkey: bytes | None = None) -> list[bytes]:
        """Regtest only: mine ``n`` blocks (coinbase to ``script_pubkey``, or an anyone-can-spend
        burn if None); return their hashes. RefusedError off regtest."""

    def close(self) -> None: ...

"""The embedded regtest chain: blocks, transactions, the UTXO set and a mempool in one SQLite file.

``EmbeddedChain(chaindir)`` implements ``ChainBackend`` (kind ``"embedded"``). It validates
transactions like bitcoind (``lncli.chain.validation`` and ``lncli.chain.interpreter``) and mines
blocks on request (``mine``) or on a timer (``auto_mine``).

Several processes may share one chain directory (by default every datadir uses the same one, see
:func:`default_chaindir`): every write is a single ``BEGIN IMMEDIATE`` transaction that re-reads
the state it depends on, so concurrent ``broadcast``/``mine`` calls serialize cleanly, and a
crash (even SIGKILL) leaves either the whole block / mempool entry or nothing. The only
in-memory caches are keyed by content hashes (txid, block hash), which never change meaning.

Block 0 is the real regtest genesis block (hash ``0f9188f1...``); its coinbase is not spendable,
as in bitcoind. Blocks have real headers (sha256d of the 80 bytes is the block hash, bits
0x207fffff) but no proof of work. Coinbases carry the BIP 34 height and pay 50 BTC halving every
150 blocks plus fees; blocks with witness transactions carry the BIP 141 witness commitment.
"""

from __future__ import annotations

import os
import threading
import time as _time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from lncli.bitcoin.script import push_int
from lncli.bitcoin.tx import (
    OutPoint,
    Transaction,
    TxIn,
    TxOut,
    sha256d,
)
from lncli.chain.interface import Block, ChainError, ChainInfo, TxRejected, TxStatus
from lncli.chain.validation import (
    COINBASE_MATURITY,
    ChainContext,
    Coin,
    MempoolEntry,
    accept_to_mempool,
    block_header,
    block_subsidy,
    coinbase_height,
    merkle_root,
    parse_header,
    validate_block_tx,
)
from lncli.errors import RefusedError
from lncli.store.db import open_db, transaction

__all__ = ["EmbeddedChain", "AutoMiner", "default_chaindir", "REGTEST_GENESIS_HASH", "ANYONE_CAN_SPEND"]

#: regtest genesis block hash, display order
REGTEST_GENESIS_HASH = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
_GENESIS_HEX = (
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e"
    "67768f617fc81bc3888a51323a9fb8aa4b1e5e4adae5494dffff7f2002000000010100000001000000000000000000000000"
    "0000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d65732030332f4a61"
    "6e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f72"
    "2062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962"
    "e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000"
)
REGTEST_BITS = 0x207FFFFF
REGTEST_DIFFICULTY = 4.656542373906925e-10
BLOCK_VERSION = 0x20000000
#: what ``mine(n, None)`` pays to: OP_TRUE, spendable by anyone (a burn for practical purposes)
ANYONE_CAN_SPEND = b"\x51"
WITNESS_COMMITMENT_HEADER = b"\x6a\x24\xaa\x21\xa9\xed"
VERSION = "lncli-embedded-regtest 1"

MIGRATIONS = [
    """CREATE TABLE chain_blocks (
        height INTEGER PRIMARY KEY,
        hash BLOB NOT NULL UNIQUE,
        header BLOB NOT NULL,
        time INTEGER NOT NULL,
        mtp INTEGER NOT NULL,
        n_tx INTEGER NOT NULL
    );
    CREATE TABLE chain_txs (
        txid BLOB PRIMARY KEY,
        height INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        raw BLOB NOT NULL
    );
    CREATE UNIQUE INDEX chain_txs_pos ON chain_txs(height, idx);
    CREATE TABLE chain_utxos (
        txid BLOB NOT NULL,
        vout INTEGER NOT NULL,
        value INTEGER NOT NULL,
        script BLOB NOT NULL,
        height INTEGER NOT NULL,
        coinbase INTEGER NOT NULL,
        PRIMARY KEY (txid, vout)
    ) WITHOUT ROWID;
    CREATE TABLE chain_mempool (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        txid BLOB NOT NULL UNIQUE,
        raw BLOB NOT NULL,
        fee INTEGER NOT NULL,
        vsize INTEGER NOT NULL,
        time INTEGER NOT NULL
    );
    CREATE TABLE chain_mempool_spends (
        txid BLOB NOT NULL,
        vout INTEGER NOT NULL,
        spender BLOB NOT NULL,
        PRIMARY KEY (txid, vout)
    ) WITHOUT ROWID"""
]


def default_chaindir() -> Path:
    """The embedded chain's directory: ``$LNCLI_CHAINDIR`` (or ``~/.lncli/chain``) + ``/regtest``.

    It is shared by all datadirs by default, so several nodes on one machine (each with its own
    datadir) see one regtest chain and can pay each other."""
    return Path(os.environ.get("LNCLI_CHAINDIR") or "~/.lncli/chain").expanduser() / "regtest"


def _parse_genesis(raw: bytes) -> tuple[bytes, Transaction]:
    """The genesis block: an 80-byte header, a tx count of 1 and the coinbase."""
    return raw[:80], Transaction.from_bytes(raw[81:])


class _LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key, value):
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)


class EmbeddedChain:
    """A regtest chain in ``chaindir/chain.sqlite``. ``clock`` returns the Unix time used for new
    blocks (default: the wall clock); block times are max(previous + 1, clock())."""

    kind = "embedded"

    def __init__(
        self,
        chaindir: Path | str,
        network: str = "regtest",
        *,
        clock: Callable[[], int] | None = None,
        feerate_per_kw: int = 1000,
    ):
        if network != "regtest":
            raise ChainError(f"the embedded chain only runs regtest, not {network}")
        self.network = network
        self.chaindir = Path(chaindir)
        self.chaindir.mkdir(parents=True, exist_ok=True)
        self.path = self.chaindir / "chain.sqlite"
        self.clock = clock or (lambda: int(_time.time()))
        self.feerate_per_kw = max(253, feerate_per_kw)
        self._lock = threading.RLock()
        self._tx_cache: _LRU = _LRU(20_000)
        self._block_cache: _LRU = _LRU(512)
        self.conn = open_db(self.path, {"chain": MIGRATIONS})
        # Mempool writes use synchronous=NORMAL (in WAL mode: still atomic and durable across a
        # process crash such as SIGKILL; only an OS crash or power loss may forget the last few
        # mempool entries, as bitcoind forgets its mempool). Blocks are written with FULL.
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self._ensure_genesis()

    # -- setup -----------------------------------------------------------------------------

    def _ensure_genesis(self) -> None:
        with self._lock:
            if self.conn.execute("SELECT 1 FROM chain_blocks WHERE height=0").fetchone():
                return
            header, genesis_tx = _parse_genesis(bytes.fromhex(_GENESIS_HEX))
            block_hash = sha256d(header)
            assert block_hash[::-1].hex() == REGTEST_GENESIS_HASH
            t = parse_header(header)[3]
            with transaction(self.conn):
                if self.conn.execute("SELECT 1 FROM chain_blocks WHERE height=0").fetchone():
                    return
                self.conn.execute(
                    "INSERT INTO chain_blocks(height, hash, header, time, mtp, n_tx) VALUES (0, ?, ?, ?, ?, 1)",
                    (block_hash, header, t, t),
                )
                self.conn.execute(
                    "INSERT INTO chain_txs(txid, height, idx, raw) VALUES (?, 0, 0, ?)",
                    (genesis_tx.txid(), genesis_tx.to_bytes()),
                )
                # the genesis coinbase is not added to the UTXO set (as in bitcoind)

    def close(self) -> None:
        with self._lock:
            try:
                self.conn.close()
            except Exception:
                pass

    def __enter__(self) -> EmbeddedChain:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- helpers ---------------------------------------------------------------------------

    def _tx_from_raw(self, txid: bytes, raw: bytes) -> Transaction:
        tx = self._tx_cache.get(txid)
        if tx is None:
            tx = Transaction.from_bytes(raw)
            self._tx_cache.put(txid, tx)
        return tx

    def _tip(self) -> tuple[int, bytes, int, int]:
        row = self.conn.execute("SELECT height, hash, time, mtp FROM chain_blocks ORDER BY height DESC LIMIT 1").fetchone()
        return row[0], row[1], row[2], row[3]

    def _mtp_at(self, height: int) -> int:
        row = self.conn.execute("SELECT mtp FROM chain_blocks WHERE height=?", (height,)).fetchone()
        if row is None:
            raise ChainError(f"no block at height {height}")
        return row[0]

    def _context(self) -> ChainContext:
        height, _h, _t, mtp = self._tip()
        return ChainContext(next_height=height + 1, tip_mtp=mtp, mtp_at=self._mtp_at)

    def _chain_coin(self, op: OutPoint) -> Coin | None:
        row = self.conn.execute(
            "SELECT value, script, height, coinbase FROM chain_utxos WHERE txid=? AND vout=?", (op.txid, op.vout)
        ).fetchone()
        if row is None:
            return None
        return Coin(row[0], row[1], row[2], bool(row[3]))

    def _mempool_tx(self, txid: bytes) -> Transaction | None:
        cached = self._tx_cache.get(txid)
        row = self.conn.execute("SELECT raw FROM chain_mempool WHERE txid=?", (txid,)).fetchone()
        if row is None:
            return None
        return cached if cached is not None else self._tx_from_raw(txid, row[0])

    # -- ChainBackend: reads ---------------------------------------------------------------

    def info(self) -> ChainInfo:
        with self._lock, transaction(self.conn, immediate=False):
            height, block_hash, _t, mtp = self._tip()
            mempool = self.conn.execute("SELECT COUNT(*) FROM chain_mempool").fetchone()[0]
        return ChainInfo(
            chain="regtest",
            blocks=height,
            headers=height,
            best_block_hash=block_hash[::-1].hex(),
            difficulty=REGTEST_DIFFICULTY,
            verification_progress=1.0,
            mempool_size=mempool,
            backend="embedded",
            version=VERSION,
            location=str(self.chaindir),
            extra={"mediantime": mtp},
        )

    def tip(self) -> tuple[int, bytes]:
        with self._lock:
            height, block_hash, _t, _m = self._tip()
        return height, block_hash

    def block_hash(self, height: int) -> bytes:
        with self._lock:
            row = self.conn.execute("SELECT hash FROM chain_blocks WHERE height=?", (height,)).fetchone()
        if row is None:
            raise ChainError(f"no block at height {height} (the tip is lower)")
        return row[0]

    def block(self, block_hash: bytes) -> Block:
        cached = self._block_cache.get(block_hash)
        if cached is not None:
            return cached
        with self._lock:
            row = self.conn.execute("SELECT height FROM chain_blocks WHERE hash=?", (block_hash,)).fetchone()
        if row is None:
            raise ChainError(f"unknown block {block_hash[::-1].hex()}")
        return self.block_at(row[0])

    def block_at(self, height: int) -> Block:
        with self._lock, transaction(self.conn, immediate=False):
            row = self.conn.execute("SELECT hash, header, time FROM chain_blocks WHERE height=?", (height,)).fetchone()
            if row is None:
                raise ChainError(f"no block at height {height} (the tip is lower)")
            block_hash, header, t = row[0], row[1], row[2]
            cached = self._block_cache.get(block_hash)
            if cached is not None:
                return cached
            rows = self.conn.execute("SELECT txid, raw FROM chain_txs WHERE height=? ORDER BY idx", (height,)).fetchall()
        txs = tuple(self._tx_from_raw(r[0], r[1]) for r in rows)
        block = Block(height=height, hash=block_hash, prev_hash=parse_header(header)[1], time=t, txs=txs)
        self._block_cache.put(block_hash, block)
        return block

    def get_transaction(self, txid: bytes) -> TxStatus | None:
        with self._lock, transaction(self.conn, immediate=False):
            row = self.conn.execute("SELECT height, raw FROM chain_txs WHERE txid=?", (txid,)).fetchone()
            if row is not None:
                tip_height = self._tip()[0]
                bh = self.conn.execute("SELECT hash FROM chain_blocks WHERE height=?", (row[0],)).fetchone()[0]
                return TxStatus(self._tx_from_raw(txid, row[1]), tip_height - row[0] + 1, row[0], bh)
            row = self.conn.execute("SELECT raw FROM chain_mempool WHERE txid=?", (txid,)).fetchone()
            if row is not None:
                return TxStatus(self._tx_from_raw(txid, row[0]), 0)
        return None

    def get_utxo(self, outpoint: OutPoint) -> Coin | None:
        """The confirmed unspent output at ``outpoint``, or None (spent, unknown or unconfirmed)."""
        with self._lock:
            return self._chain_coin(outpoint)

    def coins_paying(self, scripts: list[bytes], limit: int = 500) -> list[tuple[OutPoint, Coin]]:
        """Confirmed unspent outputs paying one of ``scripts`` that the next block may spend
        (coinbases mature) and no mempool transaction spends, oldest first, at most ``limit``."""
        with self._lock, transaction(self.conn, immediate=False):
            next_height = self._tip()[0] + 1
            marks = ",".join("?" * len(scripts))
            rows = self.conn.execute(
                f"SELECT u.txid, u.vout, u.value, u.script, u.height, u.coinbase FROM chain_utxos u "
                f"WHERE u.script IN ({marks}) AND (u.coinbase = 0 OR ? - u.height >= {COINBASE_MATURITY}) "
                "AND NOT EXISTS (SELECT 1 FROM chain_mempool_spends s WHERE s.txid = u.txid AND s.vout = u.vout) "
                "ORDER BY u.height, u.txid, u.vout LIMIT ?",
                (*[bytes(x) for x in scripts], next_height, limit),
            ).fetchall()
        return [(OutPoint(r[0], r[1]), Coin(r[2], r[3], r[4], bool(r[5]))) for r in rows]

    def mempool_txids(self) -> list[bytes]:
        with self._lock:
            return [r[0] for r in self.conn.execute("SELECT txid FROM chain_mempool ORDER BY seq")]

    def estimate_feerate_per_kw(self, target_blocks: int = 6) -> int:
        return self.feerate_per_kw

    # -- ChainBackend: writes --------------------------------------------------------------

    def broadcast(self, tx: Transaction) -> bytes:
        txid = tx.txid()
        with self._lock, transaction(self.conn):
            conn = self.conn
            if conn.execute("SELECT 1 FROM chain_mempool WHERE txid=?", (txid,)).fetchone():
                return txid  # already accepted: bitcoind returns the txid too
            if conn.execute("SELECT 1 FROM chain_utxos WHERE txid=? LIMIT 1", (txid,)).fetchone():
                # bitcoind's sendrawtransaction, for a confirmed tx with an unspent output (one
                # whose outputs are all spent gets bad-txns-inputs-missingorspent, as there)
                raise TxRejected("Transaction outputs already in utxo set", tx.txid_hex())
            ctx = self._context()
            next_height = ctx.next_height

            def get_coin(op: OutPoint) -> Coin | None:
                coin = self._chain_coin(op)
                if coin is not None:
                    return coin
                parent = self._mempool_tx(op.txid)
                if parent is None or op.vout >= len(parent.outputs):
                    return None
                out = parent.outputs[op.vout]
                return Coin(out.value_sat, out.script_pubkey, next_height, False)

            def mempool_spender(op: OutPoint) -> bytes | None:
                row = conn.execute(
                    "SELECT spender FROM chain_mempool_spends WHERE txid=? AND vout=?", (op.txid, op.vout)
                ).fetchone()
                return row[0] if row else None

            def mempool_entry(t: bytes) -> MempoolEntry | None:
                row = conn.execute("SELECT raw, fee, vsize FROM chain_mempool WHERE txid=?", (t,)).fetchone()
                if row is None:
                    return None
                mtx = self._tx_from_raw(t, row[0])
                return MempoolEntry(t, row[1], row[2], frozenset(i.prevout.txid for i in mtx.inputs))

            def mempool_descendants(t: bytes) -> set[bytes]:
                found: set[bytes] = set()
                todo = [t]
                while todo:
                    for (child,) in conn.execute(
                        "SELECT DISTINCT spender FROM chain_mempool_spends WHERE txid=?", (todo.pop(),)
                    ).fetchall():
                        if child not in found:
                            found.add(child)
                            todo.append(child)
                return found

            replaced: list[bytes] = []
            fee, _coins = accept_to_mempool(
                tx, get_coin, mempool_spender, ctx,
                mempool_entry=mempool_entry, mempool_descendants=mempool_descendants, replaced=replaced,
            )
            if replaced:  # full RBF: the replacement evicts its conflicts and their descendants
                gone = [(t,) for t in replaced]
                conn.executemany("DELETE FROM chain_mempool WHERE txid=?", gone)
                conn.executemany("DELETE FROM chain_mempool_spends WHERE spender=?", gone)
            conn.execute(
                "INSERT INTO chain_mempool(txid, raw, fee, vsize, time) VALUES (?, ?, ?, ?, ?)",
                (txid, tx.to_bytes(), fee, tx.vsize(), int(_time.time())),
            )
            conn.executemany(
                "INSERT INTO chain_mempool_spends(txid, vout, spender) VALUES (?, ?, ?)",
                [(i.prevout.txid, i.prevout.vout, txid) for i in tx.inputs],
            )
        self._tx_cache.put(txid, tx)
        return txid

    def mine(self, n: int, script_pubkey: bytes | None = None) -> list[bytes]:
        """Mine ``n`` blocks paying ``script_pubkey`` (or OP_TRUE). The first block takes every
        mempool transaction still valid, in arrival (hence dependency) order."""
        if n < 0:
            raise RefusedError("cannot mine a negative number of blocks")
        spk = ANYONE_CAN_SPEND if script_pubkey is None else bytes(script_pubkey)
        hashes = []
        with self._lock:
            self.conn.execute("PRAGMA synchronous=FULL")
            try:
                with transaction(self.conn):
                    for _ in range(n):
                        hashes.append(self._mine_one(spk))
            finally:
                self.conn.execute("PRAGMA synchronous=NORMAL")
        return hashes

    def _mine_one(self, spk: bytes) -> bytes:
        conn = self.conn
        height, prev_hash, prev_time, prev_mtp = self._tip()
        new_height = height + 1
        ctx = ChainContext(next_height=new_height, tip_mtp=prev_mtp, mtp_at=self._mtp_at)

        # -- choose the transactions
        rows = conn.execute("SELECT txid, raw, fee FROM chain_mempool ORDER BY seq").fetchall()
        block_txs: list[Transaction] = []
        created: dict[tuple[bytes, int], Coin] = {}
        spent: list[tuple[bytes, int]] = []
        spent_set: set[tuple[bytes, int]] = set()
        evicted: list[bytes] = []
        deferred: set[bytes] = set()
        fees = 0
        weight = 0
        for txid, raw, fee in rows:
            tx = self._tx_from_raw(txid, raw)
            coins = []
            ok = True
            if any(txin.prevout.txid in deferred for txin in tx.inputs):
                deferred.add(txid)  # its parent waits for the next block: so does it
                continue
            for txin in tx.inputs:
                key = (txin.prevout.txid, txin.prevout.vout)
                if key in spent_set:
                    ok = False
                    break
                coin = created.get(key) or self._chain_coin(txin.prevout)
                if coin is None:
                    ok = False
                    break
                coins.append(coin)
            if ok:
                try:
                    # scripts were verified on entry (they depend only on the tx and its coins)
                    fee = validate_block_tx(tx, coins, ctx, scripts=False)
                except TxRejected:
                    ok = False
            if ok and weight + tx.weight() > 3_990_000:
                deferred.add(txid)  # leave it for the next block
                continue
            if not ok:
                evicted.append(txid)
                continue
            weight += tx.weight()
            block_txs.append(tx)
            fees += fee
            for txin in tx.inputs:
                key = (txin.prevout.txid, txin.prevout.vout)
                spent.append(key)
                spent_set.add(key)
            for vout, out in enumerate(tx.outputs):
                created[(txid, vout)] = Coin(out.value_sat, out.script_pubkey, new_height, False)

        # -- coinbase
        outputs = [TxOut(block_subsidy(new_height) + fees, spk)]
        witness: tuple[bytes, ...] = ()
        if any(tx.has_witness() for tx in block_txs):
            wroot = merkle_root([bytes(32)] + [tx.wtxid() for tx in block_txs])
            reserved = bytes(32)
            outputs.append(TxOut(0, WITNESS_COMMITMENT_HEADER + sha256d(wroot + reserved)))
            witness = (reserved,)
        coinbase = Transaction(
            version=2,
            inputs=(TxIn(OutPoint(bytes(32), 0xFFFFFFFF), push_int(new_height) + b"\x00", 0xFFFFFFFF, witness),),
            outputs=tuple(outputs),
            locktime=0,
        )
        txs = [coinbase] + block_txs
        txids = [tx.txid() for tx in txs]
        t = max(prev_time + 1, int(self.clock()))
        header = block_header(BLOCK_VERSION, prev_hash, merkle_root(txids), t, REGTEST_BITS, 0)
        block_hash = sha256d(header)
        times = [r[0] for r in conn.execute(
            "SELECT time FROM chain_blocks WHERE height>? ORDER BY height", (new_height - 11,)
        )] + [t]
        mtp = sorted(times)[len(times) // 2]

        # -- write
        conn.execute(
            "INSERT INTO chain_blocks(height, hash, header, time, mtp, n_tx) VALUES (?, ?, ?, ?, ?, ?)",
            (new_height, block_hash, header, t, mtp, len(txs)),
        )
        conn.executemany(
            "INSERT INTO chain_txs(txid, height, idx, raw) VALUES (?, ?, ?, ?)",
            [(txid, new_height, i, tx.to_bytes()) for i, (txid, tx) in enumerate(zip(txids, txs))],
        )
        conn.executemany("DELETE FROM chain_utxos WHERE txid=? AND vout=?", spent)
        new_utxos = [
            (k[0], k[1], c.value, c.script_pubkey, new_height, 0)
            for k, c in created.items()
            if k not in spent_set and c.script_pubkey[:1] != b"\x6a"
        ]
        cb_txid = txids[0]
        new_utxos += [
            (cb_txid, vout, out.value_sat, out.script_pubkey, new_height, 1)
            for vout, out in enumerate(coinbase.outputs)
            if out.script_pubkey[:1] != b"\x6a"
        ]
        conn.executemany(
            "INSERT INTO chain_utxos(txid, vout, value, script, height, coinbase) VALUES (?, ?, ?, ?, ?, ?)",
            new_utxos,
        )
        gone = [(txid,) for txid in txids[1:]] + [(txid,) for txid in evicted]
        conn.executemany("DELETE FROM chain_mempool WHERE txid=?", gone)
        conn.executemany("DELETE FROM chain_mempool_spends WHERE spender=?", gone)
        if evicted:
            self._evict_orphans()
        self._tx_cache.put(cb_txid, coinbase)
        return block_hash

    def _evict_orphans(self) -> None:
        """Drop mempool transactions whose inputs no longer exist (children of evicted ones)."""
        conn = self.conn
        while True:
            bad = []
            for txid, raw in conn.execute("SELECT txid, raw FROM chain_mempool ORDER BY seq").fetchall():
                tx = self._tx_from_raw(txid, raw)
                for txin in tx.inputs:
                    op = txin.prevout
                    if self._chain_coin(op) is None and not conn.execute(
                        "SELECT 1 FROM chain_mempool WHERE txid=?", (op.txid,)
                    ).fetchone():
                        bad.append((txid,))
                        break
            if not bad:
                return
            conn.executemany("DELETE FROM chain_mempool WHERE txid=?", bad)
            conn.executemany("DELETE FROM chain_mempool_spends WHERE spender=?", bad)

    def auto_mine(self, interval_seconds: float, script_pubkey: bytes | None = None) -> AutoMiner:
        """Start a daemon thread that mines one block every ``interval_seconds``; ``.stop()`` it."""
        return AutoMiner(self, interval_seconds, script_pubkey)

    # -- integrity -------------------------------------------------------------------------

    def verify_integrity(self, scripts: bool = True) -> int:
        """Re-validate the whole chain from genesis: headers link, hashes and merkle roots
        match, BIP 34 heights, coinbase values, every transaction against a UTXO set rebuilt
        from scratch, and the stored UTXO set equal to the rebuilt one. Also checks that every
        mempool transaction spends existing outputs. Returns the height; raises ChainError."""
        with self._lock, transaction(self.conn, immediate=False):
            return self._verify_integrity(scripts)

    def _verify_integrity(self, scripts: bool) -> int:
        conn = self.conn
        utxos: dict[tuple[bytes, int], Coin] = {}
        prev_hash = bytes(32)
        times: list[int] = []
        mtps: list[int] = []
        rows = conn.execute("SELECT height, hash, header, time, mtp, n_tx FROM chain_blocks ORDER BY height").fetchall()
        for expected, (height, block_hash, header, t, mtp, n_tx) in enumerate(rows):
            if height != expected:
                raise ChainError(f"block heights jump from {expected - 1} to {height}")
            if sha256d(header) != block_hash:
                raise ChainError(f"block {height}: hash does not match its header")
            version, hprev, hmerkle, htime, bits, _nonce = parse_header(header)
            if hprev != prev_hash:
                raise ChainError(f"block {height} does not link to block {height - 1}")
            if htime != t or bits != REGTEST_BITS:
                raise ChainError(f"block {height}: header time/bits mismatch")
            if height and t <= mtps[-1]:
                raise ChainError(f"block {height}: time not above the median time past")
            times.append(t)
            window = sorted(times[-11:])
            if window[len(window) // 2] != mtp:
                raise ChainError(f"block {height}: stored median time past is wrong")
            txrows = conn.execute("SELECT txid, idx, raw FROM chain_txs WHERE height=? ORDER BY idx", (height,)).fetchall()
            if len(txrows) != n_tx or [r[1] for r in txrows] != list(range(n_tx)):
                raise ChainError(f"block {height}: transactions missing")
            txs = [Transaction.from_bytes(r[2]) for r in txrows]
            if any(tx.txid() != r[0] for tx, r in zip(txs, txrows)):
                raise ChainError(f"block {height}: stored txid does not match its transaction")
            if merkle_root([tx.txid() for tx in txs]) != hmerkle:
                raise ChainError(f"block {height}: merkle root mismatch")
            if height == 0:
                prev_hash = block_hash
                mtps.append(mtp)
                continue
            ctx = ChainContext(next_height=height, tip_mtp=mtps[-1], mtp_at=lambda h: mtps[h])
            cb = txs[0]
            if not cb.is_coinbase() or coinbase_height(cb) != height:
                raise ChainError(f"block {height}: bad coinbase (BIP 34 height)")
            fees = 0
            for tx in txs[1:]:
                coins = []
                for txin in tx.inputs:
                    coin = utxos.pop((txin.prevout.txid, txin.prevout.vout), None)
                    if coin is None:
                        raise ChainError(f"block {height}: tx {tx.txid_hex()} spends a missing output")
                    coins.append(coin)
                try:
                    fees += validate_block_tx(tx, coins, ctx, scripts=scripts)
                except TxRejected as err:
                    raise ChainError(f"block {height}: tx {tx.txid_hex()} invalid: {err.reason}") from None
                self._add_outputs(utxos, tx, height, False)
            if cb.output_value() > block_subsidy(height) + fees:
                raise ChainError(f"block {height}: coinbase pays too much")
            self._add_outputs(utxos, cb, height, True)
            prev_hash = block_hash
            mtps.append(mtp)
        stored = {
            (r[0], r[1]): Coin(r[2], r[3], r[4], bool(r[5]))
            for r in conn.execute("SELECT txid, vout, value, script, height, coinbase FROM chain_utxos")
        }
        if stored != utxos:
            raise ChainError(
                f"stored UTXO set differs from the rebuilt one ({len(stored)} vs {len(utxos)} entries)"
            )
        # mempool consistency: spends table matches, inputs exist
        mem = {r[0]: r[1] for r in conn.execute("SELECT txid, raw FROM chain_mempool")}
        spends = {(r[0], r[1]): r[2] for r in conn.execute("SELECT txid, vout, spender FROM chain_mempool_spends")}
        expect = {}
        for txid, raw in mem.items():
            tx = Transaction.from_bytes(raw)
            for txin in tx.inputs:
                key = (txin.prevout.txid, txin.prevout.vout)
                if key not in utxos and key[0] not in mem:
                    raise ChainError(f"mempool tx {tx.txid_hex()} spends a missing output")
                expect[key] = txid
        if expect != spends:
            raise ChainError("mempool spend index is inconsistent")
        return len(rows) - 1

    @staticmethod
    def _add_outputs(utxos: dict, tx: Transaction, height: int, coinbase: bool) -> None:
        txid = tx.txid()
        for vout, out in enumerate(tx.outputs):
            if out.script_pubkey[:1] != b"\x6a":
                utxos[(txid, vout)] = Coin(out.value_sat, out.script_pubkey, height, coinbase)


class AutoMiner:
    """A background thread mining one block every ``interval`` seconds until ``stop()``."""

    def __init__(self, chain: EmbeddedChain, interval: float, script_pubkey: bytes | None = None):
        if interval <= 0:
            raise ValueError("auto-mine interval must be positive")
        self.chain = chain
        self.interval = interval
        self.script_pubkey = script_pubkey
        self._stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="lncli-automine", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.chain.mine(1, self.script_pubkey)
            except BaseException as err:  # keep going; the owner can inspect .errors
                self.errors.append(err)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=max(5.0, self.interval * 2))

"""The node wallet: BIP 32 / BIP 84-style P2WPKH keys, UTXOs found by scanning the chain, coin
selection, fees, signing, and the spend function the channel code uses for funding.

Keys: the BIP 32 master seed is ``derive(seed, "wallet")`` (the 32-byte datadir seed through the
labelled HMAC of :mod:`lncli.wallet.seed`), so the wallet root is separated from the node key and
channel secrets. Paths are ``m/84'/COIN'/0'/CHAIN/i`` with COIN 0 on mainnet and 1 elsewhere,
CHAIN 0 for receive and 1 for change addresses. Private keys never leave this module.

State (``DATADIR/NETWORK/wallet.sqlite3``): addresses derived (issued or within the gap limit
lookahead), UTXOs with the height that confirmed them (NULL: in the mempool), spent and reserved
markers, and the last scanned block. Every block is applied in one SQLite transaction together
with the scanned height (in batches of blocks), so a killed process leaves each batch fully applied or not at all.

Locks: ``create_funding`` reserves the coins it spends (``reserved_txid``) so a second spend never
picks them, until they are seen spent on chain or in the mempool, or :meth:`Wallet.release` is
called for a funding transaction that will not be broadcast.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from lncli.bitcoin.address import address_to_script, script_to_address
from lncli.bitcoin.ecdsa import sign, witness_signature
from lncli.bitcoin.script import hash160, p2wpkh_script
from lncli.bitcoin.sighash import SighashCache, p2wpkh_script_code
from lncli.bitcoin.tx import (
    FEERATE_FLOOR_PER_KW,
    OutPoint,
    Transaction,
    TxIn,
    TxOut,
    fee_for_weight,
)
from lncli.errors import InputError, LncliError, RefusedError
from lncli.store.db import open_db, transaction
from lncli.wallet.bip32 import HARDENED, ExtendedKey, master_key
from lncli.wallet.seed import derive

WALLET_DB = "wallet.sqlite3"
GAP_LIMIT = 20
COINBASE_MATURITY = 100
DUST_LIMIT_SAT = 546
RECEIVE, CHANGE = 0, 1
SEQUENCE_RBF = 0xFFFFFFFD

# weight of the parts of a P2WPKH-spending transaction (signature at its 72-byte maximum)
_TX_OVERHEAD_WEIGHT = 4 * 10 + 2  # version, locktime, counts; segwit marker and flag
_P2WPKH_INPUT_WEIGHT = 4 * 41 + (1 + 1 + 72 + 1 + 33)
_P2WPKH_SCRIPT_LEN = 22

MIGRATIONS = [
    """
CREATE TABLE wallet_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE wallet_addresses (
    chain INTEGER NOT NULL, idx INTEGER NOT NULL, script BLOB NOT NULL UNIQUE,
    issued INTEGER NOT NULL DEFAULT 0, used INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chain, idx));
CREATE TABLE wallet_utxos (
    txid BLOB NOT NULL, vout INTEGER NOT NULL, value_sat INTEGER NOT NULL, script BLOB NOT NULL,
    height INTEGER, coinbase INTEGER NOT NULL DEFAULT 0,
    spent_txid BLOB, spent_height INTEGER,
    reserved_txid BLOB, reserved_at INTEGER,
    PRIMARY KEY (txid, vout));
CREATE INDEX wallet_utxos_unspent ON wallet_utxos(spent_txid)
""",
]


class InsufficientFunds(RefusedError):
    def __init__(self, have_sat: int, need_sat: int):
        self.have_sat, self.need_sat = have_sat, need_sat
        super().__init__(
            f"insufficient funds: have {have_sat} sat, need {need_sat} sat (fund this wallet with: lncli fund)"
        )


@dataclass(frozen=True)
class Utxo:
    outpoint: OutPoint
    value_sat: int
    script_pubkey: bytes
    height: int | None
    coinbase: bool
    reserved: bool

    def to_json(self) -> dict:
        return {
            "outpoint": str(self.outpoint),
            "value_sat": self.value_sat,
            "height": self.height,
            "coinbase": self.coinbase,
            "reserved": self.reserved,
        }


@dataclass(frozen=True)
class Balance:
    confirmed_sat: int  # mature and confirmed, not spent (reserved coins included)
    unconfirmed_sat: int  # in the mempool
    immature_sat: int  # coinbase outputs with fewer than 100 confirmations
    reserved_sat: int  # part of confirmed locked by a funding transaction not yet broadcast

    @property
    def total_sat(self) -> int:
        return self.confirmed_sat + self.unconfirmed_sat + self.immature_sat

    @property
    def spendable_sat(self) -> int:
        return self.confirmed_sat - self.reserved_sat

    def to_json(self) -> dict:
        return {
            "confirmed_sat": self.confirmed_sat,
            "unconfirmed_sat": self.unconfirmed_sat,
            "immature_sat": self.immature_sat,
            "reserved_sat": self.reserved_sat,
            "spendable_sat": self.spendable_sat,
            "total_sat": self.total_sat,
        }


@dataclass(frozen=True)
class ChangeInfo:
    vout: int
    value_sat: int
    address: str


@dataclass(frozen=True)
class SendResult:
    tx: Transaction
    fee_sat: int
    change: ChangeInfo | None


def estimate_weight(n_inputs: int, output_scripts: list[bytes]) -> int:
    """Upper bound of the weight of a transaction spending ``n_inputs`` P2WPKH outputs."""
    return (
        _TX_OVERHEAD_WEIGHT
        + n_inputs * _P2WPKH_INPUT_WEIGHT
        + sum(4 * (8 + 1 + len(s)) for s in output_scripts)
    )


class Wallet:
    def __init__(self, path: Path | str, network: str, seed: bytes, backend=None):
        self.network = network
        self.backend = backend
        self.path = Path(path)
        self._root = master_key(derive(seed, "wallet"))
        coin = 0 if network == "mainnet" else 1
        account = self._root.child(84 + HARDENED).child(coin + HARDENED).child(HARDENED)
        self._chains: dict[int, ExtendedKey] = {RECEIVE: account.child(RECEIVE), CHANGE: account.child(CHANGE)}
        self._keys: dict[bytes, tuple[bytes, bytes]] = {}  # script -> (privkey, pubkey)
        self._mempool_seen: dict[bytes, Transaction | None] = {}  # txid -> tx if it concerns us
        self.db = open_db(self.path, {"wallet": MIGRATIONS})
        fpr = self._root.fingerprint.hex()
        row = self.db.execute("SELECT value FROM wallet_meta WHERE key='fingerprint'").fetchone()
        if row is None:
            with transaction(self.db):
                self.db.execute("INSERT OR IGNORE INTO wallet_meta VALUES('fingerprint', ?)", (fpr,))
                self.db.execute("INSERT OR IGNORE INTO wallet_meta VALUES('network', ?)", (network,))
        elif row[0] != fpr:
            raise LncliError(f"{self.path} belongs to another seed (fingerprint {row[0]}, seed gives {fpr})")
        self._ensure_lookahead()

    # -- keys and addresses ---------------------------------------------------------------------

    def _key(self, chain: int, idx: int) -> tuple[bytes, bytes, bytes]:
        k = self._chains[chain].child(idx)
        script = p2wpkh_script(hash160(k.pubkey))
        self._keys[script] = (k.privkey, k.pubkey)
        return script, k.privkey, k.pubkey

    def _keys_for(self, script: bytes) -> tuple[bytes, bytes]:
        if script not in self._keys:
            row = self.db.execute("SELECT chain, idx FROM wallet_addresses WHERE script=?", (script,)).fetchone()
            if row is None:
                raise LncliError("internal error: a wallet UTXO has no known key")
            self._key(row[0], row[1])
        return self._keys[script]

    def _lookahead_rows(self) -> list[tuple[int, int, bytes]]:
        """Addresses to derive so that each chain has GAP_LIMIT beyond the last issued or used one."""
        rows = []
        for chain in (RECEIVE, CHANGE):
            top, have = self.db.execute(
                "SELECT COALESCE(MAX(CASE WHEN issued OR used THEN idx END), -1), COALESCE(MAX(idx), -1) "
                "FROM wallet_addresses WHERE chain=?",
                (chain,),
            ).fetchone()
            rows += [(chain, i, self._key(chain, i)[0]) for i in range(have + 1, top + GAP_LIMIT + 1)]
        return rows

    def _ensure_lookahead(self) -> None:
        if self._lookahead_rows():
            with transaction(self.db):
                rows = self._lookahead_rows()
                self.db.executemany("INSERT OR IGNORE INTO wallet_addresses(chain, idx, script) VALUES(?,?,?)", rows)

    def _watch_scripts(self) -> set[bytes]:
        return {r[0] for r in self.db.execute("SELECT script FROM wallet_addresses")}

    def new_address(self, change: bool = False) -> str:
        """A fresh (never issued) P2WPKH address on the receive or change chain."""
        chain = CHANGE if change else RECEIVE
        with transaction(self.db):
            row = self.db.execute(
                "SELECT idx, script FROM wallet_addresses WHERE chain=? AND NOT issued AND NOT used ORDER BY idx LIMIT 1",
                (chain,),
            ).fetchone()
            if row is None:
                idx = self.db.execute("SELECT COALESCE(MAX(idx), -1) + 1 FROM wallet_addresses WHERE chain=?", (chain,)).fetchone()[0]
                script = self._key(chain, idx)[0]
                self.db.execute("INSERT INTO wallet_addresses(chain, idx, script, issued) VALUES(?,?,?,1)", (chain, idx, script))
            else:
                idx, script = row
                self.db.execute("UPDATE wallet_addresses SET issued=1 WHERE chain=? AND idx=?", (chain, idx))
        self._ensure_lookahead()
        return script_to_address(script, self.network)

    def addresses(self) -> list[dict]:
        out = []
        for r in self.db.execute(
            "SELECT chain, idx, script, used FROM wallet_addresses WHERE issued OR used ORDER BY chain, idx"
        ):
            coin = 0 if self.network == "mainnet" else 1
            out.append({
                "address": script_to_address(r["script"], self.network),
                "path": f"m/84'/{coin}'/0'/{r['chain']}/{r['idx']}",
                "change": bool(r["chain"]),
                "used": bool(r["used"]),
            })
        return out

    # -- scanning ---------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM wallet_meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def scanned_height(self) -> int:
        v = self._meta("scanned_height")
        return int(v) if v is not None else -1

    def _apply_tx(self, tx: Transaction, height: int | None, scripts: set[bytes]) -> bool:
        """Record this tx's effect; True if it paid one of our scripts."""
        txid = tx.txid()
        hit = False
        if not tx.is_coinbase():
            for txin in tx.inputs:
                p = txin.prevout
                self.db.execute(
                    "UPDATE wallet_utxos SET spent_txid=?, spent_height=COALESCE(?, spent_height) "
                    "WHERE txid=? AND vout=?",
                    (txid, height, p.txid, p.vout),
                )
        for vout, out in enumerate(tx.outputs):
            if out.script_pubkey in scripts:
                hit = True
                self.db.execute(
                    "INSERT INTO wallet_utxos(txid, vout, value_sat, script, height, coinbase) VALUES(?,?,?,?,?,?) "
                    "ON CONFLICT(txid, vout) DO UPDATE SET height=COALESCE(excluded.height, height)",
                    (txid, vout, out.value_sat, out.script_pubkey, height, int(tx.is_coinbase())),
                )
                self.db.execute("UPDATE wallet_addresses SET used=1 WHERE script=?", (out.script_pubkey,))
        return hit

    def sync(self) -> int:
        """Scan new blocks and the mempool; return the tip height."""
        backend = self._need_backend()
        tip_height, tip_hash = backend.tip()
        start = self.scanned_height()
        last_hash = self._meta("scanned_hash")
        if start >= 0 and (start > tip_height or backend.block_hash(start).hex() != last_hash):
            self._reset_scan()  # the chain changed under us (reorg or another chain): rescan
            start = -1
        scripts = self._watch_scripts()
        batch = 64  # blocks per SQLite transaction: each batch is applied whole or not at all
        for first in range(start + 1, tip_height + 1, batch):
            blocks = [backend.block_at(h) for h in range(first, min(first + batch, tip_height + 1))]
            with transaction(self.db):
                for block in blocks:
                    h = block.height
                    if self.scanned_height() >= h:  # another process applied it meanwhile
                        continue
                    while True:
                        for tx in block.txs:
                            self._apply_tx(tx, h, scripts)
                        rows = self._lookahead_rows()
                        if not rows:
                            break
                        # a payment used the lookahead: derive further and apply the block again
                        self.db.executemany("INSERT OR IGNORE INTO wallet_addresses(chain, idx, script) VALUES(?,?,?)", rows)
                        scripts = self._watch_scripts()
                    self.db.execute("INSERT OR REPLACE INTO wallet_meta VALUES('scanned_height', ?)", (str(h),))
                    self.db.execute("INSERT OR REPLACE INTO wallet_meta VALUES('scanned_hash', ?)", (block.hash.hex(),))
        self._sync_mempool(scripts)
        return tip_height

    def _sync_mempool(self, scripts: set[bytes]) -> None:
        """Apply the mempool's transactions that touch this wallet. Each mempool txid is fetched
        once per process (``_mempool_seen`` remembers the ones that concern us, and None for the
        rest), so a busy bitcoind mempool costs one ``getrawmempool`` per sync plus one call per
        new transaction, not one per transaction at every sync."""
        backend = self._need_backend()
        in_pool = set(backend.mempool_txids())
        seen = self._mempool_seen
        for txid in [t for t in seen if t not in in_pool]:
            del seen[txid]
        fresh = []
        for txid in in_pool:
            if txid not in seen:
                st = backend.get_transaction(txid)
                if st is not None and st.confirmations == 0:
                    fresh.append(st.tx)
                else:
                    seen[txid] = None
        changed = True
        while changed:  # a child that spends a relevant parent is relevant too, in any order
            changed = False
            for tx in list(fresh):
                if self._touches_wallet(tx, scripts, seen):
                    seen[tx.txid()] = tx
                    fresh.remove(tx)
                    changed = True
        for tx in fresh:
            seen[tx.txid()] = None
        txs = [tx for tx in seen.values() if tx is not None]
        with transaction(self.db):
            # forget mempool entries that are gone (mined ones were updated by the block scan)
            for r in self.db.execute("SELECT txid FROM wallet_utxos WHERE height IS NULL").fetchall():
                if r[0] not in in_pool:
                    self.db.execute("DELETE FROM wallet_utxos WHERE txid=? AND height IS NULL", (r[0],))
            for r in self.db.execute(
                "SELECT DISTINCT spent_txid FROM wallet_utxos WHERE spent_txid IS NOT NULL AND spent_height IS NULL"
            ).fetchall():
                if r[0] not in in_pool:
                    self.db.execute("UPDATE wallet_utxos SET spent_txid=NULL WHERE spent_txid=? AND spent_height IS NULL", (r[0],))
            for tx in txs:
                self._apply_tx(tx, None, scripts)

    def _touches_wallet(self, tx: Transaction, scripts: set[bytes], seen: dict) -> bool:
        if any(out.script_pubkey in scripts for out in tx.outputs):
            return True
        for txin in tx.inputs:
            p = txin.prevout
            if seen.get(p.txid) is not None:
                return True
            if self.db.execute("SELECT 1 FROM wallet_utxos WHERE txid=? AND vout=?", (p.txid, p.vout)).fetchone():
                return True
        return False

    def _reset_scan(self) -> None:
        with transaction(self.db):
            self.db.execute("DELETE FROM wallet_utxos")
            self.db.execute("DELETE FROM wallet_meta WHERE key IN ('scanned_height', 'scanned_hash')")

    def rescan(self) -> int:
        """Forget every UTXO and scan the whole chain again."""
        self._reset_scan()
        return self.sync()

    def _need_backend(self):
        if self.backend is None:
            raise LncliError("internal error: this wallet was opened without a chain backend")
        return self.backend

    # -- balance and coins ------------------------------------------------------------------------

    def _tip_height(self) -> int:
        return self.scanned_height()

    def utxos(self, include_reserved: bool = True) -> list[Utxo]:
        rows = self.db.execute(
            "SELECT * FROM wallet_utxos WHERE spent_txid IS NULL ORDER BY height IS NULL, height, txid, vout"
        ).fetchall()
        out = []
        for r in rows:
            if not include_reserved and r["reserved_txid"] is not None:
                continue
            out.append(Utxo(OutPoint(r["txid"], r["vout"]), r["value_sat"], r["script"], r["height"],
                            bool(r["coinbase"]), r["reserved_txid"] is not None))
        return out

    def _mature(self, u: Utxo, tip: int) -> bool:
        return u.height is not None and (not u.coinbase or tip - u.height >= COINBASE_MATURITY)

    def balance(self) -> Balance:
        tip = self._tip_height()
        confirmed = unconfirmed = immature = reserved = 0
        for u in self.utxos():
            if u.height is None:
                unconfirmed += u.value_sat
            elif not self._mature(u, tip):
                immature += u.value_sat
            else:
                confirmed += u.value_sat
                if u.reserved:
                    reserved += u.value_sat
        return Balance(confirmed, unconfirmed, immature, reserved)

    # -- spending -----------------------------------------------------------------------------------

    def _select(self, outputs: list[TxOut], feerate_per_kw: int) -> tuple[list[Utxo], int, int]:
        """Largest-first: returns (coins, fee, change) where change may be 0 (dropped into the fee)."""
        tip = self._tip_height()
        coins = sorted(
            (u for u in self.utxos(include_reserved=False) if self._mature(u, tip)),
            key=lambda u: -u.value_sat,
        )
        target = sum(o.value_sat for o in outputs)
        scripts = [o.script_pubkey for o in outputs]
        chosen: list[Utxo] = []
        total = 0
        for coin in coins:
            chosen.append(coin)
            total += coin.value_sat
            fee_no_change = fee_for_weight(estimate_weight(len(chosen), scripts), feerate_per_kw)
            if total < target + fee_no_change:
                continue
            fee_change = fee_for_weight(estimate_weight(len(chosen), scripts + [b"\x00" * _P2WPKH_SCRIPT_LEN]), feerate_per_kw)
            change = total - target - fee_change
            if change >= DUST_LIMIT_SAT:
                return chosen, fee_change, change
            return chosen, total - target, 0  # no change output: the remainder goes to the fee
        have = sum(c.value_sat for c in coins)
        need = target + fee_for_weight(estimate_weight(max(1, len(coins)), scripts), feerate_per_kw)
        raise InsufficientFunds(have, need)

    def create_funding(self, outputs: list[TxOut], feerate_per_kw: int) -> tuple[Transaction, ChangeInfo | None]:
        """A signed transaction paying ``outputs`` (in this order; change, if any, appended last)
        from this wallet's confirmed coins, at ``feerate_per_kw``. The coins are reserved until they
        are seen spent or :meth:`release` is called; the caller broadcasts."""
        if not outputs:
            raise InputError("nothing to pay: no outputs")
        for o in outputs:
            if o.value_sat < DUST_LIMIT_SAT:
                raise InputError(f"output of {o.value_sat} sat is below the dust limit ({DUST_LIMIT_SAT} sat)")
        feerate_per_kw = max(int(feerate_per_kw), FEERATE_FLOOR_PER_KW)
        with transaction(self.db):  # the write lock: no other process selects coins meanwhile
            coins, fee, change_value = self._select(list(outputs), feerate_per_kw)
            change = None
            tx_outputs = list(outputs)
            if change_value:
                # issue a change address inside this transaction
                row = self.db.execute(
                    "SELECT idx, script FROM wallet_addresses WHERE chain=? AND NOT issued AND NOT used ORDER BY idx LIMIT 1",
                    (CHANGE,),
                ).fetchone()
                if row is None:
                    idx = self.db.execute("SELECT COALESCE(MAX(idx), -1) + 1 FROM wallet_addresses WHERE chain=?", (CHANGE,)).fetchone()[0]
                    script = self._key(CHANGE, idx)[0]
                    self.db.execute("INSERT INTO wallet_addresses(chain, idx, script, issued) VALUES(?,?,?,1)", (CHANGE, idx, script))
                else:
                    idx, script = row
                    self.db.execute("UPDATE wallet_addresses SET issued=1 WHERE chain=? AND idx=?", (CHANGE, idx))
                tx_outputs.append(TxOut(change_value, script))
                change = ChangeInfo(len(tx_outputs) - 1, change_value, script_to_address(script, self.network))
            tip = self._tip_height()
            unsigned = Transaction(
                version=2,
                inputs=tuple(TxIn(c.outpoint, sequence=SEQUENCE_RBF) for c in coins),
                outputs=tuple(tx_outputs),
                locktime=max(tip, 0),  # anti fee-sniping, as bitcoind does
            )
            tx = self._sign(unsigned, coins)
            now = int(time.time())
            for c in coins:
                self.db.execute(
                    "UPDATE wallet_utxos SET reserved_txid=?, reserved_at=? WHERE txid=? AND vout=?",
                    (tx.txid(), now, c.outpoint.txid, c.outpoint.vout),
                )
        self._ensure_lookahead()
        return tx, change

    def _sign(self, tx: Transaction, coins: list[Utxo]) -> Transaction:
        cache = SighashCache(tx)
        witnesses = []
        for i, coin in enumerate(coins):
            priv, pub = self._keys_for(coin.script_pubkey)
            digest = cache.segwit_v0(i, p2wpkh_script_code(hash160(pub)), coin.value_sat)
            witnesses.append((witness_signature(sign(priv, digest)), pub))
        return tx.with_witnesses(witnesses)

    def release(self, txid: bytes) -> int:
        """Unlock the coins a funding transaction reserved (it will not be broadcast)."""
        with transaction(self.db):
            cur = self.db.execute(
                "UPDATE wallet_utxos SET reserved_txid=NULL, reserved_at=NULL WHERE reserved_txid=? AND spent_txid IS NULL",
                (txid,),
            )
            return cur.rowcount

    def mark_broadcast(self, tx: Transaction) -> None:
        """Record a broadcast transaction of ours at once (the next sync confirms it)."""
        with transaction(self.db):
            self._apply_tx(tx, None, self._watch_scripts())

    def send(self, address: str, amount_sat: int, feerate_per_kw: int | None = None) -> SendResult:
        """Pay ``amount_sat`` to ``address`` and broadcast. Raises WrongNetworkError (exit 1) for
        another network's address, InsufficientFunds, TxRejected."""
        script = address_to_script(address, self.network)
        backend = self._need_backend()
        if feerate_per_kw is None:
            feerate_per_kw = backend.estimate_feerate_per_kw()
        tx, change = self.create_funding([TxOut(amount_sat, script)], feerate_per_kw)
        try:
            backend.broadcast(tx)
        except BaseException:
            self.release(tx.txid())
            raise
        self.mark_broadcast(tx)
        inputs = sum(self._value_of(i.prevout) for i in tx.inputs)
        return SendResult(tx, inputs - tx.output_value(), change)

    def _value_of(self, outpoint: OutPoint) -> int:
        row = self.db.execute("SELECT value_sat FROM wallet_utxos WHERE txid=? AND vout=?", (outpoint.txid, outpoint.vout)).fetchone()
        return row[0] if row else 0

    def close(self) -> None:
        self.db.close()


def wallet_path(netdir: Path) -> Path:
    return Path(netdir) / WALLET_DB


def env_seed(env) -> bytes:
    from lncli.wallet.seed import datadir_seed

    return datadir_seed(env)


def open_wallet(env, backend=None, *, create: bool = True) -> Wallet | None:
    """The datadir's wallet (created at first use unless ``create=False``, then None if absent)."""
    path = wallet_path(env.netdir)
    if not create and not path.exists():
        return None
    env.ensure_netdir()
    return Wallet(path, env.network, env_seed(env), backend)

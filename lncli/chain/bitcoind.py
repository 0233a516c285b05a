"""Bitcoin Core over JSON-RPC (python-bitcoinrpc), behind :class:`lncli.chain.interface.ChainBackend`.

python-bitcoinrpc's ``AuthServiceProxy`` keeps one HTTP connection for its lifetime, never
recovers once bitcoind has closed an idle keep-alive connection or a call has timed out, and is
not thread-safe. So every call here builds a fresh proxy (one short-lived connection) and all
calls of one backend are serialized by a lock; nothing can wedge the backend.

Settings (lncli.conf, per-network sections allowed, or keyword arguments): ``rpcconnect``
(127.0.0.1), ``rpcport`` (regtest 18443, testnet 18332, signet 38332, mainnet 8332),
``rpcuser``/``rpcpassword`` (regtest default regtest/regtest), ``rpccookiefile`` (default
``BITCOINDATADIR/<net>/.cookie`` when ``bitcoindatadir`` is set; used when no password is set),
``rpctimeout`` (seconds, default 30) and ``bitcoindwallet`` (the wallet ``lncli fund`` spends
from, default ``lncli``).
"""

from __future__ import annotations

import http.client
import struct
import threading
import urllib.parse
from decimal import Decimal
from pathlib import Path

from bitcoinrpc.authproxy import AuthServiceProxy, JSONRPCException

from lncli.bitcoin.address import address_to_script, script_to_address
from lncli.bitcoin.tx import FEERATE_FLOOR_PER_KW, Transaction, decode_compact_size, sha256d
from lncli.chain.interface import (
    BackendUnreachable,
    Block,
    ChainError,
    ChainInfo,
    TxRejected,
    TxStatus,
)
from lncli.errors import DecodeError, InputError, RefusedError

DEFAULT_PORTS = {"regtest": 18443, "testnet": 18332, "signet": 38332, "mainnet": 8332}
CHAIN_NAMES = {"regtest": "regtest", "testnet": "test", "signet": "signet", "mainnet": "main"}
_COOKIE_SUBDIR = {"regtest": "regtest", "testnet": "testnet3", "signet": "signet", "mainnet": ""}

# bitcoind RPC error codes
RPC_WALLET_ALREADY_LOADED = -35
RPC_IN_WARMUP = -28
RPC_INVALID_ADDRESS_OR_KEY = -5


def _btc_to_sat(value) -> int:
    return int((Decimal(str(value)) * 100_000_000).to_integral_value())


def _sat_to_btc(sat: int) -> Decimal:
    return (Decimal(sat) / Decimal(100_000_000)).quantize(Decimal("0.00000001"))


# ---------------------------------------------------------------------------------------------
# raw blocks


def _tx_length(data: bytes, pos: int) -> int:
    """Length of the serialized transaction at ``data[pos:]`` (DecodeError if truncated)."""
    start = pos
    n = len(data)
    if pos + 6 > n:
        raise DecodeError("truncated transaction in block")
    pos += 4
    segwit = data[pos] == 0 and data[pos + 1] == 1
    if segwit:
        pos += 2
    n_in, pos = decode_compact_size(data, pos)
    for _ in range(n_in):
        slen, pos = decode_compact_size(data, pos + 36)
        pos += slen + 4
    n_out, pos = decode_compact_size(data, pos)
    for _ in range(n_out):
        slen, pos = decode_compact_size(data, pos + 8)
        pos += slen
    if segwit:
        for _ in range(n_in):
            items, pos = decode_compact_size(data, pos)
            for _ in range(items):
                ilen, pos = decode_compact_size(data, pos)
                pos += ilen
    pos += 4
    if pos > n:
        raise DecodeError("truncated transaction in block")
    return pos - start


def parse_block(raw: bytes, height: int) -> Block:
    """A serialized block (80-byte header, compact-size count, transactions) as a :class:`Block`."""
    if len(raw) < 81:
        raise DecodeError(f"block too short ({len(raw)} bytes)")
    header = raw[:80]
    prev_hash = header[4:36]
    time = struct.unpack_from("<I", header, 68)[0]
    count, pos = decode_compact_size(raw, 80)
    txs = []
    for _ in range(count):
        length = _tx_length(raw, pos)
        txs.append(Transaction.from_bytes(raw[pos : pos + length]))
        pos += length
    if pos != len(raw):
        raise DecodeError(f"{len(raw) - pos} trailing bytes after the block's transactions")
    return Block(height=height, hash=sha256d(header), prev_hash=prev_hash, time=time, txs=tuple(txs))


# ---------------------------------------------------------------------------------------------
# the backend


class BitcoindBackend:
    kind = "bitcoind"

    def __init__(
        self,
        network: str = "regtest",
        *,
        rpcconnect: str | None = None,
        rpcport: int | None = None,
        rpcuser: str | None = None,
        rpcpassword: str | None = None,
        rpccookiefile: str | Path | None = None,
        bitcoindatadir: str | Path | None = None,
        timeout: float = 30.0,
        wallet: str = "lncli",
    ):
        self.network = network
        host = rpcconnect or "127.0.0.1"
        if ":" in host and not host.startswith("["):  # host:port in rpcconnect, as bitcoin-cli allows
            host, _, port_text = host.rpartition(":")
            if rpcport is None and port_text.isdigit():
                rpcport = int(port_text)
        self.host = host
        self.port = int(rpcport or DEFAULT_PORTS[network])
        if rpccookiefile is None and bitcoindatadir is not None:
            sub = _COOKIE_SUBDIR[network]
            rpccookiefile = Path(bitcoindatadir).expanduser() / sub / ".cookie"
        self.cookiefile = Path(rpccookiefile).expanduser() if rpccookiefile else None
        if rpcuser is None and rpcpassword is None and self.cookiefile is None and network == "regtest":
            rpcuser, rpcpassword = "regtest", "regtest"
        self.rpcuser = rpcuser
        self.rpcpassword = rpcpassword
        self.timeout = timeout
        self.wallet = wallet
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, network: str, config) -> BitcoindBackend:
        timeout = config.get("rpctimeout")
        return cls(
            network,
            rpcconnect=config.get("rpcconnect"),
            rpcport=config.get_int("rpcport"),
            rpcuser=config.get("rpcuser"),
            rpcpassword=config.get("rpcpassword"),
            rpccookiefile=config.get("rpccookiefile"),
            bitcoindatadir=config.get("bitcoindatadir"),
            timeout=float(timeout) if timeout else 30.0,
            wallet=config.get("bitcoindwallet", "lncli"),
        )

    # -- transport ---------------------------------------------------------------------------

    @property
    def location(self) -> str:
        return f"{self.host}:{self.port}"

    def _unreachable(self, reason: str) -> BackendUnreachable:
        return BackendUnreachable(f"cannot reach bitcoind at {self.location} ({reason})")

    def _credentials(self) -> tuple[str, str]:
        if self.rpcpassword is not None:
            return self.rpcuser or "", self.rpcpassword
        if self.cookiefile is not None:
            try:
                text = self.cookiefile.read_text().strip()
            except OSError as e:
                raise self._unreachable(f"cannot read the cookie file {self.cookiefile}: {e.strerror}") from None
            user, sep, password = text.partition(":")
            if not sep:
                raise self._unreachable(f"the cookie file {self.cookiefile} is malformed")
            return user, password
        return self.rpcuser or "", ""

    def _url(self, wallet: str | None) -> str:
        user, password = self._credentials()
        q = urllib.parse.quote
        host = self.host if ":" not in self.host or self.host.startswith("[") else f"[{self.host}]"
        path = f"/wallet/{q(wallet, safe='')}" if wallet is not None else ""
        return f"http://{q(user, safe='')}:{q(password, safe='')}@{host}:{self.port}{path}"

    def call(self, method: str, *params, wallet: str | None = None):
        """One RPC call on a fresh connection, serialized with every other call of this backend.

        Raises BackendUnreachable for connection, timeout, HTTP and authentication failures, and
        JSONRPCException for errors bitcoind reports."""
        with self._lock:
            proxy = AuthServiceProxy(self._url(wallet), timeout=self.timeout)
            try:
                return getattr(proxy, method)(*params)
            except JSONRPCException as e:
                if e.code == -342:  # a non-JSON HTTP answer: 401, 403, 404 without JSON, ...
                    msg = e.message or ""
                    if "401" in msg:
                        raise self._unreachable(
                            "authentication failed: check rpcuser/rpcpassword or rpccookiefile"
                        ) from None
                    raise self._unreachable(msg) from None
                if e.code == RPC_IN_WARMUP:
                    raise self._unreachable(f"bitcoind is starting: {e.message}") from None
                raise
            except ConnectionRefusedError:
                raise self._unreachable("connection refused") from None
            except TimeoutError:
                raise self._unreachable(f"no answer within {self.timeout:g} s") from None
            except (OSError, http.client.HTTPException) as e:
                reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
                raise self._unreachable(reason) from None
            except ValueError as e:  # a garbled JSON body
                raise self._unreachable(f"bad answer: {e}") from None
            finally:
                conn = getattr(proxy, "_AuthServiceProxy__conn", None)
                if conn is not None:
                    conn.close()

    # -- ChainBackend --------------------------------------------------------------------------

    def info(self) -> ChainInfo:
        bc = self.call("getblockchaininfo")
        net = self.call("getnetworkinfo")
        mp = self.call("getmempoolinfo")
        chain = bc["chain"]
        if chain != CHAIN_NAMES[self.network]:
            raise RefusedError(
                f"bitcoind at {self.location} runs chain {chain!r}, but lncli is on {self.network}: "
                "fix rpcport/rpcconnect or --network"
            )
        return ChainInfo(
            chain=chain,
            blocks=int(bc["blocks"]),
            headers=int(bc["headers"]),
            best_block_hash=bc["bestblockhash"],
            difficulty=float(bc["difficulty"]),
            verification_progress=float(bc["verificationprogress"]),
            mempool_size=int(mp["size"]),
            backend=self.kind,
            version=str(net.get("subversion") or net.get("version")),
            location=self.location,
            extra={"connections": net.get("connections")},
        )

    def tip(self) -> tuple[int, bytes]:
        bc = self.call("getblockchaininfo")
        return int(bc["blocks"]), bytes.fromhex(bc["bestblockhash"])[::-1]

    def block_hash(self, height: int) -> bytes:
        try:
            return bytes.fromhex(self.call("getblockhash", int(height)))[::-1]
        except JSONRPCException as e:
            raise ChainError(f"no block at height {height}: {e.message}") from None

    def block(self, block_hash: bytes) -> Block:
        display = block_hash[::-1].hex()
        try:
            header = self.call("getblockheader", display)
            raw = self.call("getblock", display, 0)
        except JSONRPCException as e:
            raise InputError(f"unknown block {display}: {e.message}") from None
        return parse_block(bytes.fromhex(raw), int(header["height"]))

    def block_at(self, height: int) -> Block:
        return self.block(self.block_hash(height))

    def get_transaction(self, txid: bytes) -> TxStatus | None:
        """Any transaction with ``txindex=1``; without it, mempool transactions and those of
        bitcoind's wallet ``bitcoindwallet`` (None for the rest)."""
        display = txid[::-1].hex()
        try:
            res = self.call("getrawtransaction", display, True)
        except JSONRPCException as e:
            if e.code == RPC_INVALID_ADDRESS_OR_KEY:
                # without -txindex bitcoind finds only mempool transactions: try its wallet
                res = self._wallet_transaction(display)
                if res is None:
                    return None
            else:
                raise ChainError(f"getrawtransaction {display}: {e.message}") from None
        tx = Transaction.from_hex(res["hex"])
        confs = int(res.get("confirmations") or 0)
        block_hash = bytes.fromhex(res["blockhash"])[::-1] if res.get("blockhash") and confs else None
        height = None
        if block_hash is not None:
            height = int(self.call("getblockheader", res["blockhash"])["height"])
        return TxStatus(tx=tx, confirmations=confs, block_height=height, block_hash=block_hash)

    def _wallet_transaction(self, display: str) -> dict | None:
        """``gettransaction`` in bitcoind's wallet ``self.wallet`` when it is loaded (the funding
        transactions ``lncli fund`` makes are there), or None."""
        try:
            if self.wallet not in self.call("listwallets"):
                return None
            return self.call("gettransaction", display, True, wallet=self.wallet)
        except JSONRPCException:
            return None

    def broadcast(self, tx: Transaction) -> bytes:
        try:
            self.call("sendrawtransaction", tx.to_hex())
        except JSONRPCException as e:  # -25, -26, -27, -22 and anything else bitcoind refuses with
            raise TxRejected(e.message or str(e), tx.txid_hex()) from None
        return tx.txid()

    def mempool_txids(self) -> list[bytes]:
        return [bytes.fromhex(t)[::-1] for t in self.call("getrawmempool")]

    def estimate_feerate_per_kw(self, target_blocks: int = 6) -> int:
        try:
            res = self.call("estimatesmartfee", int(target_blocks))
        except JSONRPCException:
            res = {}
        rate = res.get("feerate")
        if rate is None:  # no estimate (regtest, fresh node): 1 sat/vB above the floor, or the fallback
            return FEERATE_FLOOR_PER_KW if self.network == "regtest" else 2500
        # BTC/kvB -> sat/kw: sat per 1000 vbytes / 4
        per_kw = _btc_to_sat(rate) // 4
        return max(FEERATE_FLOOR_PER_KW, per_kw)

    def mine(self, n: int, script_pubkey: bytes | None = None) -> list[bytes]:
        if self.network != "regtest":
            raise RefusedError(f"mining is for regtest only (this is {self.network})")
        if n < 0:
            raise InputError("the number of blocks cannot be negative")
        if script_pubkey is None:
            address = self.new_bitcoind_address()
        else:
            address = script_to_address(script_pubkey, self.network)
        hashes = self.call("generatetoaddress", int(n), address)
        return [bytes.fromhex(h)[::-1] for h in hashes]

    def close(self) -> None:
        pass

    # -- bitcoind's own wallet (regtest funding) ---------------------------------------------------

    def ensure_wallet(self) -> str:
        """Load or create bitcoind's wallet ``self.wallet``; return its name."""
        loaded = self.call("listwallets")
        if self.wallet in loaded:
            return self.wallet
        try:
            self.call("loadwallet", self.wallet)
        except JSONRPCException as e:
            if e.code == RPC_WALLET_ALREADY_LOADED:
                return self.wallet
            try:
                self.call("createwallet", self.wallet)
            except JSONRPCException as e2:
                if e2.code != RPC_WALLET_ALREADY_LOADED and "already exists" not in (e2.message or ""):
                    raise ChainError(f"cannot load or create bitcoind wallet {self.wallet!r}: {e2.message}") from None
                self.call("loadwallet", self.wallet)
        return self.wallet

    def new_bitcoind_address(self) -> str:
        self.ensure_wallet()
        return self.call("getnewaddress", "", "bech32", wallet=self.wallet)

    def wallet_balance_sat(self) -> int:
        self.ensure_wallet()
        return _btc_to_sat(self.call("getbalance", wallet=self.wallet))

    def send_from_wallet(self, address: str, amount_sat: int) -> bytes:
        """Send from bitcoind's wallet (mining 101 blocks to it first when it cannot pay)."""
        address_to_script(address, self.network)  # refuse another network's address early
        self.ensure_wallet()
        if self.wallet_balance_sat() < amount_sat + 100_000:
            if self.network != "regtest":
                raise RefusedError(f"bitcoind wallet {self.wallet!r} cannot pay {amount_sat} sat")
            blocks = 101
            for _ in range(20):
                self.mine(blocks, address_to_script(self.new_bitcoind_address(), self.network))
                if self.wallet_balance_sat() >= amount_sat + 100_000:
                    break
                blocks = 25
            else:
                raise RefusedError(f"bitcoind wallet {self.wallet!r} cannot pay {amount_sat} sat even after mining")
        try:
            txid = self.call("sendtoaddress", address, _sat_to_btc(amount_sat), wallet=self.wallet)
        except JSONRPCException as e:
            raise RefusedError(f"bitcoind wallet {self.wallet!r} could not send: {e.message}") from None
        return bytes.fromhex(txid)[::-1]

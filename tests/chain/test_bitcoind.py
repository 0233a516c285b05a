"""The bitcoind backend.

Without a ``bitcoind`` binary: a fake JSON-RPC server checks the transport (a fresh connection per
call, so a server closing keep-alive connections never wedges the backend; serialized calls from
threads), error mapping (unreachable, authentication, rejected transactions) and raw block parsing.
With ``bitcoind`` on PATH: a real ``bitcoind -regtest`` on free ports in a temporary datadir
(tests/bitcoind.py) runs the shared ChainBackend contract tests, the funding path, cookie
authentication and the RPC quirks the node relies on; otherwise those are skipped with a reason.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lncli.bitcoin.tx import OutPoint, Transaction, TxIn, TxOut
from lncli.chain.bitcoind import DEFAULT_PORTS, BitcoindBackend, parse_block
from lncli.chain.interface import BackendUnreachable, ChainBackend, TxRejected
from lncli.config import Config
from lncli.errors import RefusedError
from tests.bitcoind import free_port

# ---------------------------------------------------------------------------------------------
# a fake bitcoind


class FakeBitcoind:
    def __init__(self, handlers: dict, user="regtest", password="regtest"):
        self.handlers = handlers
        self.calls: list[str] = []
        self.active = 0
        self.max_active = 0
        auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        fake = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.headers.get("Authorization") != auth:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                fake.active += 1
                fake.max_active = max(fake.max_active, fake.active)
                time.sleep(0.002)
                fake.calls.append(body["method"])
                h = fake.handlers.get(body["method"])
                if h is None:
                    result, error = None, {"code": -32601, "message": "Method not found"}
                else:
                    try:
                        result, error = h(*body["params"]), None
                    except Exception as e:  # noqa: BLE001
                        result, error = None, {"code": e.args[0], "message": e.args[1]}
                fake.active -= 1
                data = json.dumps({"result": result, "error": error, "id": body["id"]}).encode()
                self.send_response(200 if error is None else 500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")  # like an idle keep-alive timing out
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def coinbase_tx(tag: int) -> Transaction:
    return Transaction(2, [TxIn(OutPoint(bytes(32), 0xFFFFFFFF), bytes([1, tag]))], [TxOut(5000, b"\x51")])


def segwit_tx() -> Transaction:
    return Transaction(2, [TxIn(OutPoint(bytes(range(32)), 1), witness=(b"\x01" * 72, b"\x02" * 33))],
                       [TxOut(1234, bytes(22)), TxOut(99, b"\x6a")], locktime=7)


def raw_block(txs, prev=bytes(32)) -> bytes:
    from lncli.bitcoin.tx import encode_compact_size

    header = (2).to_bytes(4, "little") + prev + bytes(32) + (1700000000).to_bytes(4, "little") + bytes.fromhex("ffff7f20") + bytes(4)
    return header + encode_compact_size(len(txs)) + b"".join(t.to_bytes() for t in txs)


@pytest.fixture
def fake():
    block = raw_block([coinbase_tx(1), segwit_tx()], prev=bytes([9]) * 32)
    from lncli.bitcoin.tx import sha256d

    bhash = sha256d(block[:80])[::-1].hex()

    def reject(_hex):
        raise Exception(-26, "mempool-script-verify-flag-failed (Signature must be zero for failed CHECK(MULTI)SIG operation), input 0 of 00 (wtxid 00), spending 00:0")

    def rawtx(txid, verbose):
        raise Exception(-5, "No such mempool or blockchain transaction")

    f = FakeBitcoind({
        "getblockchaininfo": lambda: {"chain": "regtest", "blocks": 1, "headers": 1, "bestblockhash": bhash,
                                      "difficulty": 4.656542373906925e-10, "verificationprogress": 1},
        "getnetworkinfo": lambda: {"subversion": "/Satoshi:27.0.0/", "version": 270000, "connections": 0},
        "getmempoolinfo": lambda: {"size": 0},
        "getblockhash": lambda h: bhash,
        "getblockheader": lambda h: {"height": 1},
        "getblock": lambda h, v: block.hex(),
        "sendrawtransaction": reject,
        "getrawtransaction": rawtx,
        "estimatesmartfee": lambda n: {"feerate": 0.00012, "blocks": n},
        "getrawmempool": lambda: [],
    })
    yield f
    f.close()


def test_defaults_and_config():
    b = BitcoindBackend("regtest")
    assert (b.host, b.port, b.rpcuser, b.rpcpassword) == ("127.0.0.1", 18443, "regtest", "regtest")
    assert DEFAULT_PORTS == {"regtest": 18443, "testnet": 18332, "signet": 38332, "mainnet": 8332}
    assert BitcoindBackend("signet").port == 38332 and BitcoindBackend("mainnet").rpcpassword is None
    b = BitcoindBackend.from_config("regtest", Config({"rpcconnect": ["10.0.0.2:1234"], "bitcoindatadir": ["/x/btc"]}))
    assert (b.host, b.port, str(b.cookiefile)) == ("10.0.0.2", 1234, "/x/btc/regtest/.cookie")
    assert isinstance(b, ChainBackend)


def test_unreachable_closed_port():
    port = free_port()
    b = BitcoindBackend("regtest", rpcport=port)
    with pytest.raises(BackendUnreachable, match=rf"^cannot reach bitcoind at 127.0.0.1:{port} \(connection refused\)$") as e:
        b.tip()
    assert e.value.exit_code == 3


def test_timeout_is_unreachable_and_recovers():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)  # accepts connections, never answers
    b = BitcoindBackend("regtest", rpcport=srv.getsockname()[1], timeout=0.3)
    with pytest.raises(BackendUnreachable, match="no answer within 0.3 s"):
        b.tip()
    srv.close()


def test_auth_failure(fake):
    b = BitcoindBackend("regtest", rpcport=fake.port, rpcpassword="wrong", rpcuser="regtest")
    with pytest.raises(BackendUnreachable, match="authentication failed") as e:
        b.tip()
    assert e.value.exit_code == 3


def test_cookie_auth(fake, tmp_path):
    (tmp_path / "regtest").mkdir()
    (tmp_path / "regtest" / ".cookie").write_text("regtest:regtest")
    b = BitcoindBackend("regtest", rpcport=fake.port, bitcoindatadir=tmp_path)
    assert b.tip()[0] == 1
    b = BitcoindBackend("regtest", rpcport=fake.port, rpccookiefile=tmp_path / "missing")
    with pytest.raises(BackendUnreachable, match="cannot read the cookie file"):
        b.tip()


def test_calls_survive_closed_connections_and_threads(fake):
    b = BitcoindBackend("regtest", rpcport=fake.port)
    for _ in range(5):  # the server closes every connection: each call must reconnect
        assert b.tip()[0] == 1
    errors = []

    def worker():
        try:
            for _ in range(10):
                b.tip()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and fake.max_active == 1  # serialized


def test_info_blocks_and_errors(fake):
    b = BitcoindBackend("regtest", rpcport=fake.port)
    info = b.info()
    assert (info.chain, info.backend, info.version, info.location) == ("regtest", "bitcoind", "/Satoshi:27.0.0/", f"127.0.0.1:{fake.port}")
    block = b.block_at(1)
    assert block.height == 1 and block.prev_hash == bytes([9]) * 32 and block.txs[1] == segwit_tx()
    assert block.hash_hex == info.best_block_hash
    with pytest.raises(TxRejected, match="mempool-script-verify-flag-failed") as e:
        b.broadcast(segwit_tx())
    assert e.value.reason.startswith("mempool-script-verify-flag-failed (")
    assert b.get_transaction(bytes(32)) is None
    assert b.estimate_feerate_per_kw() == 3000  # 0.00012 BTC/kvB = 12 sat/vB = 3000 sat/kw
    with pytest.raises(RefusedError, match="runs chain 'regtest'"):
        BitcoindBackend("signet", rpcport=fake.port, rpcuser="regtest", rpcpassword="regtest").info()
    with pytest.raises(RefusedError, match="regtest only"):
        BitcoindBackend("signet", rpcport=fake.port).mine(1)


def test_parse_block_rejects_garbage():
    from lncli.errors import DecodeError

    good = raw_block([coinbase_tx(1), segwit_tx()])
    assert len(parse_block(good, 5).txs) == 2
    for bad in (good[:-1], good + b"\x00", good[:90], b""):
        with pytest.raises(DecodeError):
            parse_block(bad, 5)


# ---------------------------------------------------------------------------------------------
# a real bitcoind, when installed (tests/bitcoind.py starts it, or skips with a visible reason)

from tests.bitcoind import bitcoind, bitcoind_node  # noqa: E402,F401  (fixtures)


def test_real_bitcoind_fund_path(bitcoind):
    from lncli.bitcoin.address import address_to_script

    hashes = bitcoind.mine(3)
    assert len(hashes) == 3 and bitcoind.tip()[1] == hashes[-1]
    addr = bitcoind.new_bitcoind_address()
    txid = bitcoind.send_from_wallet(addr, 1_000_000)
    assert bitcoind.get_transaction(txid).confirmations == 0
    bitcoind.mine(1, address_to_script(addr, "regtest"))
    st = bitcoind.get_transaction(txid)
    assert st.confirmations == 1 and st.block_height == bitcoind.tip()[0]


def test_real_bitcoind_fee_estimate_on_empty_regtest(bitcoind):
    # estimatesmartfee has no data on a fresh regtest chain: the floor, 253 sat/kw
    assert "feerate" not in bitcoind.call("estimatesmartfee", 6)
    assert bitcoind.estimate_feerate_per_kw() == bitcoind.estimate_feerate_per_kw(1) == 253


def test_real_bitcoind_without_txindex(request, tmp_path):
    from lncli.bitcoin.address import address_to_script
    from tests.bitcoind import start_or_skip
    from tests.chain.test_contract import KEY

    b = start_or_skip(request, tmp_path / "btc", txindex=False).backend()
    [h] = b.mine(1, KEY.spk)
    coinbase = b.block(h).txs[0].txid()
    addr = b.new_bitcoind_address()
    txid = b.send_from_wallet(addr, 1_000_000)  # mines 101 blocks to bitcoind's wallet first
    assert b.get_transaction(txid).confirmations == 0  # the mempool needs no index
    b.mine(1, address_to_script(addr, "regtest"))
    st = b.get_transaction(txid)  # confirmed: found through bitcoind's wallet
    assert st.confirmations == 1 and st.block_height == b.tip()[0] and st.tx.txid() == txid
    assert b.get_transaction(coinbase) is None  # not in the wallet, no index: unknown, not an error


def test_real_bitcoind_cookie_auth(request, tmp_path):
    from tests.bitcoind import start_or_skip

    node = start_or_skip(request, tmp_path / "btc", cookie=True)
    assert node.backend().tip()[0] == 0
    b = BitcoindBackend("regtest", rpcport=node.rpcport, bitcoindatadir=node.datadir)
    assert b.info().blocks == 0
    wrong = BitcoindBackend("regtest", rpcport=node.rpcport, rpcuser="regtest", rpcpassword="regtest")
    with pytest.raises(BackendUnreachable, match="authentication failed"):
        wrong.tip()


# the shared contract suite, run against the real bitcoind (skipped without one)
try:
    from tests.chain import test_contract as _contract
except Exception:  # pragma: no cover
    _contract = None

if _contract is not None:
    for _name in dir(_contract):
        if _name.startswith("test_"):
            globals()["test_contract_" + _name[5:]] = getattr(_contract, _name)
    funded = _contract.funded

    @pytest.fixture
    def backend(bitcoind):
        return bitcoind




@settings(max_examples=300, deadline=None)
@given(st.data())
def test_parse_block_random_and_mutated_only_decode_errors(data):
    from lncli.errors import DecodeError

    good = raw_block([coinbase_tx(1), segwit_tx()])
    if data.draw(st.booleans()):
        raw = data.draw(st.binary(max_size=400))
    else:
        raw = bytearray(good)
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        raw = bytes(raw[: data.draw(st.integers(0, len(raw)))])
    try:
        block = parse_block(raw, 1)
    except DecodeError:
        return
    assert raw_block(block.txs, block.prev_hash)[80:] == raw[80:]

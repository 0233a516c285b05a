"""Interoperability with Core Lightning (``lightningd``) on a real ``bitcoind -regtest``.

Skipped, with the reason shown, unless ``lightningd``, ``lightning-cli`` and ``bitcoind`` are on
PATH. One bitcoind, one CLN node and one lncli node process are shared by the module (each
started once, stopped in a finalizer); every test drives both sides with their own CLIs and checks
that they agree:

(a) BOLT 8 + init in both directions (lncli connect -> CLN, CLN ``connect`` -> lncli), pings both
    ways, each side's view of the other's features;
(b) lncli opens a channel to CLN: channel_type static_remotekey, NORMAL on both sides with the
    same short_channel_id and balances;
(c) payments both ways (CLN invoice paid by lncli, lncli invoice paid by CLN's ``pay``);
(d) CLN opens a channel to lncli (``fundchannel``);
(e) disconnect/reconnect, then a restart of each node: channel_reestablish, payments go on;
(f) cooperative close initiated from each side (CLN v26 negotiates ``closing_signed``);
(g) force close from lncli: CLN sees our commitment, lncli sweeps after to_self_delay;
(h) update_fee from CLN (``dev-feerate``), payments and a mutual close at the new rate;
(i) a second CLN with ``--dev-disconnect`` dropping the connection around each commitment message,
    both payment directions: channel_reestablish retransmits what each side lacks;
(j) CLN force closes (``dev-fail``): our to_remote reaches the wallet;
(k) update_fee from lncli (the opener, ``dev-setfeerate``) to a CLN run with
    ``--ignore-fee-limits=false``: CLN's feerate follows both up and down, payments go on.

CLN on regtest ignores fee limits by default (``ignore-fee-limits``); only (k) turns the check on,
for the rates it sends (whatever bounds CLN derives from bitcoind's regtest estimates).

When something fails, CLN's own log (path printed at the start) says why it disconnected.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bitcoind import BITCOIND, RegtestBitcoind, free_port, start_or_skip, stop_process
from tests.e2e.test_channels import ROOT, lncli, out, wait

LIGHTNINGD = shutil.which("lightningd")
LIGHTNING_CLI = shutil.which("lightning-cli")
MISSING = [name for name, path in (("lightningd", LIGHTNINGD), ("lightning-cli", LIGHTNING_CLI),
                                   ("bitcoind", BITCOIND)) if path is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"{' and '.join(MISSING)} not on PATH: the Core Lightning interop tests need them"
)

POLL = "0.2"  # lncli's chain poll, seconds
CLN_CONFIRMS = 2  # minimum_depth CLN asks for when it accepts a channel
LNCLI_TO_SELF_DELAY = 5  # what lncli asks of CLN's outputs
LNCLI_CONF = f"to-self-delay={LNCLI_TO_SELF_DELAY}\nmin-depth=2\n"
STATIC_REMOTEKEY = 12


class ClnError(AssertionError):
    def __init__(self, method: str, code, message: str):
        super().__init__(f"lightning-cli {method}: {code} {message}")
        self.code, self.message = code, message


class Cln:
    """One ``lightningd --network=regtest`` in the foreground of a child process."""

    def __init__(self, datadir: Path, btc: RegtestBitcoind, extra_args: tuple[str, ...] = ()):
        self.dir = Path(datadir)
        self.btc = btc
        self.extra_args = tuple(extra_args)
        self.port = free_port()
        self.log = self.dir / "log"
        self.proc: subprocess.Popen | None = None
        self.id = ""

    def start(self, timeout: float = 30) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        out_file = open(self.dir / "stdout", "ab")
        self.proc = subprocess.Popen(
            [LIGHTNINGD, "--network=regtest", f"--lightning-dir={self.dir}",
             "--bitcoin-rpcconnect=127.0.0.1", f"--bitcoin-rpcport={self.btc.rpcport}",
             "--bitcoin-rpcuser=regtest", "--bitcoin-rpcpassword=regtest",
             f"--addr=127.0.0.1:{self.port}", "--developer", "--dev-fast-gossip", "--dev-bitcoind-poll=1",
             f"--funding-confirms={CLN_CONFIRMS}", "--log-level=debug", f"--log-file={self.log}",
             "--disable-plugin=bookkeeper", "--alias=cln", *self.extra_args],
            stdout=out_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        out_file.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"lightningd exited with {self.proc.returncode}: {self.tail()}")
            try:
                info = self.rpc("getinfo", timeout=5)
                if info.get("id"):
                    self.id = info["id"]
                    return
            except (ClnError, subprocess.TimeoutExpired, json.JSONDecodeError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"lightningd did not answer within {timeout} s: {self.tail()}")
            time.sleep(0.2)

    def rpc(self, method: str, *args, timeout: float = 30, **kw):
        """``lightning-cli method args...``, or with keywords only, ``lightning-cli -k method k=v...``."""
        assert not (args and kw), "positional or keyword parameters, not both"
        argv = [LIGHTNING_CLI, "--network=regtest", f"--lightning-dir={self.dir}", "-N", "none"]
        if kw:
            argv += ["-k", method, *(f"{k}={v}" for k, v in kw.items())]
        else:
            argv += [method, *(str(a) for a in args)]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        text = "\n".join(line for line in p.stdout.splitlines() if not line.startswith("#"))
        if p.returncode != 0:
            try:
                err = json.loads(text)
                raise ClnError(method, err.get("code"), err.get("message", text))
            except json.JSONDecodeError:
                raise ClnError(method, p.returncode, (p.stdout + p.stderr).strip()) from None
        return json.loads(text) if text.strip() else {}

    @property
    def uri(self) -> str:
        return f"{self.id}@127.0.0.1:{self.port}"

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        stop_process(proc, lambda: self.rpc("stop", timeout=10), grace=15)

    def channel(self, channel_id: str) -> dict | None:
        rows = [c for c in self.rpc("listpeerchannels")["channels"] if c.get("channel_id") == channel_id]
        return rows[0] if rows else None

    def height(self) -> int:
        return int(self.rpc("getinfo")["blockheight"])


class Lncli:
    """One lncli node process (``node start --daemon``) on the shared bitcoind."""

    def __init__(self, datadir: Path, btc: RegtestBitcoind):
        self.dir = Path(datadir)
        self.btc = btc
        self.port = free_port()
        self.id = ""
        self.running = False
        self.env = dict(os.environ)
        self.env["LNCLI_CHAINDIR"] = str(self.dir.parent / "no-embedded-chain")  # must stay unused
        self.env.pop("LNCLI_DATADIR", None)
        self.env.pop("LNCLI_NETWORK", None)

    def __call__(self, *args, check=True, timeout=60):
        return lncli(self.env, self.dir, *args, check=check, timeout=timeout)

    def json(self, *args, timeout=60):
        return out(self(*args, timeout=timeout))

    def start(self) -> dict:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "lncli.conf").write_text(self.btc.conf_lines() + LNCLI_CONF)
        info = self.json("node", "start", "--daemon", "--listen", f"127.0.0.1:{self.port}",
                         "--poll-interval", POLL, "--log-level", "debug")
        self.id = info["node_id"]
        self.running = True
        return info

    def stop(self) -> None:
        if self.running:
            self("node", "stop", check=False)
            self.running = False

    @property
    def uri(self) -> str:
        return f"{self.id}@127.0.0.1:{self.port}"

    def channel(self, channel_id: str) -> dict | None:
        rows = self.json("channels", "--channel", channel_id)
        return rows[0] if rows else None

    def height(self) -> int:
        return int(self.json("node", "info")["block_height"])


# ---------------------------------------------------------------------------------------------
# fixtures: one bitcoind, one CLN, one lncli for the module


@pytest.fixture(scope="module")
def btc(request, tmp_path_factory):
    return start_or_skip(request, tmp_path_factory.mktemp("bitcoind"))


@pytest.fixture(scope="module")
def ln(request, tmp_path_factory, btc):
    node = Lncli(tmp_path_factory.mktemp("lncli") / "l", btc)
    request.addfinalizer(node.stop)
    node.start()
    node("fund", "1btc")  # bitcoind's wallet "lncli" is created, mined to, and pays us
    return node


@pytest.fixture(scope="module")
def cln(request, tmp_path_factory, btc, ln):
    node = Cln(tmp_path_factory.mktemp("cln") / "c", btc)
    request.addfinalizer(node.stop)
    print(f"CLN log: {node.log}")
    node.start()
    address = node.rpc("newaddr", "bech32")["bech32"]
    btc.cli("-rpcwallet=lncli", "sendtoaddress", address, "0.1")
    mine(btc, ln, node, 1)
    wait(lambda: node.rpc("listfunds")["outputs"], timeout=20, what="CLN's wallet funded")
    return node


def mine(btc: RegtestBitcoind, ln: Lncli, cln: Cln | None, n: int, *others) -> int:
    """Mine ``n`` blocks and wait until both nodes (and ``others``) have seen them."""
    address = btc.cli("-rpcwallet=lncli", "getnewaddress").stdout.strip()
    p = btc.cli("generatetoaddress", str(n), address)
    assert p.returncode == 0, p.stderr
    height = int(btc.cli("getblockcount").stdout)
    wait(lambda: ln.height() >= height, timeout=20, what=f"lncli at height {height}")
    for node in (cln, *others):
        if node is not None:
            wait(lambda: node.height() >= height, timeout=20, what=f"{node.dir.name} at height {height}")
    return height


def in_mempool(btc: RegtestBitcoind, txid: str) -> bool:
    return txid in json.loads(btc.cli("getrawmempool").stdout)


def connected(ln: Lncli, cln: Cln) -> None:
    if not any(p["connected"] for p in ln.json("peers") if p["node_id"] == cln.id):
        ln("connect", cln.uri)
    wait(lambda: any(p["id"] == ln.id and p["connected"] for p in cln.rpc("listpeers")["peers"]),
         what="CLN sees lncli connected")


def normal_both(ln: Lncli, cln: Cln, cid: str, timeout: float = 30) -> tuple[dict, dict]:
    """Wait until the channel is NORMAL (and usable) on both sides; return (lncli row, CLN row)."""
    a = wait(lambda: (c := ln.channel(cid)) and c["state"] == "NORMAL" and c["active"] and c,
             timeout=timeout, what=f"lncli channel {cid} NORMAL")
    b = wait(lambda: (c := cln.channel(cid)) and c["state"] == "CHANNELD_NORMAL" and c.get("peer_connected") and c,
             timeout=timeout, what=f"CLN channel {cid} CHANNELD_NORMAL: {cln.tail(10)}")
    return a, b


def agree(ln: Lncli, cln: Cln, cid: str) -> int:
    """Both sides' balances once no HTLC is pending; returns lncli's local balance (msat)."""
    a = wait(lambda: (c := ln.channel(cid)) and c["pending_htlcs"] == 0 and c, what="lncli settled")
    b = wait(lambda: (c := cln.channel(cid)) and not c.get("htlcs") and c, what="CLN settled")
    b = wait(lambda: (c := cln.channel(cid)) and c["to_us_msat"] == a["remote_balance_msat"] and c, timeout=10,
             what=f"balances agree (lncli {a['local_balance_msat']}/{a['remote_balance_msat']})")
    assert a["local_balance_msat"] + a["remote_balance_msat"] == b["total_msat"] == a["capacity_sat"] * 1000
    assert a["local_balance_msat"] == b["total_msat"] - b["to_us_msat"]
    return a["local_balance_msat"]


def agree_all(ln: Lncli, cln: Cln) -> int:
    """:func:`agree` on every usable channel between the two; lncli's total local balance (msat).
    Payments between them may take any of these channels."""
    return sum(agree(ln, cln, c["channel_id"]) for c in ln.json("channels", "--peer", cln.id)
               if c["state"] == "NORMAL")


def lncli_pays(ln: Lncli, cln: Cln, msat: int) -> None:
    label = f"lncli-{time.monotonic_ns()}"
    inv = cln.rpc("invoice", msat, label, "from CLN")
    p = ln.json("pay", inv["bolt11"])
    assert p["status"] == "succeeded" and p["amount_msat"] == msat and p["fee_msat"] == 0, p
    assert p["payment_hash"] == inv["payment_hash"]
    (row,) = cln.rpc("listinvoices", label)["invoices"]
    assert row["status"] == "paid" and row["amount_received_msat"] == msat
    assert row["payment_preimage"] == p["payment_preimage"]


def cln_pays(ln: Lncli, cln: Cln, msat: int) -> None:
    inv = ln.json("invoice", "create", f"{msat}msat", "-d", "from lncli")
    r = cln.rpc("pay", inv["bolt11"], timeout=60)
    assert r["status"] == "complete" and r["amount_msat"] == msat, r
    assert r["payment_hash"] == inv["payment_hash"]
    (row,) = [i for i in ln.json("invoice", "list") if i["payment_hash"] == inv["payment_hash"]]
    assert row["status"] == "paid" and row["payment_preimage"] == r["payment_preimage"]


def open_from_lncli(btc, ln: Lncli, cln: Cln, sat: int) -> str:
    connected(ln, cln)
    ch = ln.json("open", cln.id, f"{sat}sat", "--no-wait")
    assert ch["state"] == "AWAITING_LOCKIN" and ch["opener"] == "local"
    cid = ch["channel_id"]
    wait(lambda: in_mempool(btc, ch["funding_txid"]), what="funding tx in the mempool")
    c = wait(lambda: cln.channel(cid), what="CLN knows the channel")
    assert c["state"] == "CHANNELD_AWAITING_LOCKIN" and c["opener"] == "remote"
    mine(btc, ln, cln, CLN_CONFIRMS)
    normal_both(ln, cln, cid)
    return cid


@pytest.fixture(scope="module")
def lncli_channel(btc, ln, cln):
    """A 500000 sat channel opened by lncli, NORMAL on both sides."""
    return open_from_lncli(btc, ln, cln, 500_000)


# ---------------------------------------------------------------------------------------------
# (a) transport and init


def test_a_connect_init_ping_both_directions(ln, cln):
    ln("connect", cln.uri)
    (peer,) = [p for p in ln.json("peers") if p["node_id"] == cln.id]
    assert peer["connected"] and peer["direction"] == "outbound"
    names = set(peer["features"])
    # CLN requires these (even bits): we understood its init, so we know them all
    assert {"option_data_loss_protect", "var_onion_optin", "option_static_remotekey", "payment_secret",
            "option_channel_type"} <= names
    (theirs,) = [p for p in cln.rpc("listpeers")["peers"] if p["id"] == ln.id]
    assert theirs["connected"]
    from lncli.node.features import INIT_FEATURES

    assert theirs["features"] == INIT_FEATURES.to_bytes().hex()  # what our init said, bit for bit
    assert ln.json("ping", cln.id)["rtt_ms"] >= 0  # our ping, CLN's pong
    assert cln.rpc("ping", ln.id)["totlen"] > 0  # CLN's ping, our pong

    # the other direction: CLN dials us
    cln.rpc("disconnect", ln.id, "true")
    wait(lambda: not any(p["connected"] for p in ln.json("peers") if p["node_id"] == cln.id), what="disconnected")
    r = cln.rpc("connect", ln.uri)
    assert r["id"] == ln.id and r["direction"] == "out" and r["features"] == INIT_FEATURES.to_bytes().hex()
    (peer,) = wait(lambda: [p for p in ln.json("peers") if p["node_id"] == cln.id and p["connected"]],
                   what="lncli sees CLN's connection")
    assert peer["direction"] == "inbound"
    assert cln.rpc("ping", ln.id, 10, 20)["totlen"] > 0
    assert ln.json("ping", cln.id)["rtt_ms"] >= 0


# ---------------------------------------------------------------------------------------------
# (b) lncli opens, (c) payments


def test_b_lncli_opens_static_remotekey(btc, ln, cln, lncli_channel):
    cid = lncli_channel
    a, b = normal_both(ln, cln, cid)
    assert b["channel_type"]["bits"] == [STATIC_REMOTEKEY]
    assert a["short_channel_id"] == b["short_channel_id"]
    assert a["funding_outpoint"] == f"{b['funding_txid']}:{b['funding_outnum']}"
    assert a["opener"] == "local" and b["opener"] == "remote"
    assert (a["local_balance_msat"], a["remote_balance_msat"]) == (500_000_000, 0)
    assert b["to_us_msat"] == 0 and b["total_msat"] == 500_000_000
    # each side holds the other to what it announced
    assert b["their_to_self_delay"] == a["to_self_delay"] and b["our_to_self_delay"] == LNCLI_TO_SELF_DELAY
    assert agree(ln, cln, cid) == 500_000_000


def test_c_payments_both_ways(ln, cln, lncli_channel):
    start = agree_all(ln, cln)
    lncli_pays(ln, cln, 20_000_000)
    cln_pays(ln, cln, 3_000_000)
    for i in range(1, 4):
        lncli_pays(ln, cln, i * 1_000_000 + i)
        cln_pays(ln, cln, i * 500_000 + 7)
    expect = start - 20_000_000 + 3_000_000 - sum(i * 1_000_000 + i for i in range(1, 4)) + sum(
        i * 500_000 + 7 for i in range(1, 4))
    assert agree_all(ln, cln) == expect


def test_c2_concurrent_payments(ln, cln, lncli_channel):
    """Several HTLCs in flight each way at once: batched update_add_htlc / commitment_signed /
    revoke_and_ack in both directions."""
    start = agree_all(ln, cln)
    invs_cln = [cln.rpc("invoice", 1_000_000 + i, f"conc-{time.monotonic_ns()}-{i}", "c")["bolt11"] for i in range(6)]
    invs_ln = [ln.json("invoice", "create", f"{700_000 + i}msat")["bolt11"] for i in range(6)]
    procs = [subprocess.Popen([sys.executable, "-m", "lncli", "--datadir", str(ln.dir), "pay", b], cwd=ROOT,
                              env=ln.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for b in invs_cln]
    procs += [subprocess.Popen([LIGHTNING_CLI, "--network=regtest", f"--lightning-dir={cln.dir}", "-N", "none",
                                "pay", b], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for b in invs_ln]
    for p in procs:
        stdout, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, (stdout, stderr, cln.tail(20))
    expect = start - sum(1_000_000 + i for i in range(6)) + sum(700_000 + i for i in range(6))
    assert agree_all(ln, cln) == expect


def test_c3_failed_payments_both_ways(ln, cln, lncli_channel):
    """BOLT 4 failures in both directions leave both balances where they were."""
    start = agree_all(ln, cln)
    # CLN forgets an invoice: our HTLC comes back with incorrect_or_unknown_payment_details
    label = f"gone-{time.monotonic_ns()}"
    inv = cln.rpc("invoice", 2_000_000, label, "deleted")
    cln.rpc("delinvoice", label, "unpaid")
    p = ln("pay", inv["bolt11"], check=False)
    assert p.returncode == 1 and "incorrect_or_unknown_payment_details" in p.stderr, p.stderr
    # CLN pays one of our invoices with the wrong payment_secret: we fail it the same way
    ours = ln.json("invoice", "create", "5000sat")
    scid = cln.channel(lncli_channel)["short_channel_id"]
    route = [{"id": ln.id, "channel": scid, "amount_msat": 5_000_000, "delay": 40}]
    cln.rpc("sendpay", route=json.dumps(route), payment_hash=ours["payment_hash"], payment_secret="11" * 32)
    with pytest.raises(ClnError) as e:
        cln.rpc("waitsendpay", ours["payment_hash"], 30)
    # 203: the final node failed it permanently
    assert e.value.code == 203 and "WIRE_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS" in e.value.message
    assert agree_all(ln, cln) == start
    # amounts below both dust limits ride as trimmed HTLCs; the commitments still agree
    lncli_pays(ln, cln, 1_000)
    cln_pays(ln, cln, 2_500)
    assert agree_all(ln, cln) == start - 1_000 + 2_500


# ---------------------------------------------------------------------------------------------
# (d) CLN opens


def test_d_cln_opens_to_lncli(btc, ln, cln):
    connected(ln, cln)
    r = cln.rpc("fundchannel", ln.id, 300_000)
    cid = r["channel_id"]
    assert r["channel_type"]["bits"] == [STATIC_REMOTEKEY]  # we offer no anchors: CLN picks static_remotekey
    row = wait(lambda: ln.channel(cid), what="lncli knows the channel")
    assert row["opener"] == "remote" and row["state"] == "AWAITING_LOCKIN"
    wait(lambda: in_mempool(btc, r["txid"]), what="funding tx in the mempool")
    mine(btc, ln, cln, 2)  # lncli's min-depth
    a, b = normal_both(ln, cln, cid)
    assert a["short_channel_id"] == b["short_channel_id"] and b["opener"] == "local"
    assert (a["local_balance_msat"], a["remote_balance_msat"]) == (0, 300_000_000)
    cln_pays(ln, cln, 40_000_000)  # only this channel can carry it (lncli_channel's CLN side may be empty)
    assert agree(ln, cln, cid) == 40_000_000


# ---------------------------------------------------------------------------------------------
# (e) reconnect and restart: channel_reestablish


def test_e_reconnect_and_restart(btc, ln, cln, lncli_channel):
    cid = lncli_channel
    balance = agree_all(ln, cln)
    # a plain disconnect: CLN reconnects (or we do), both send channel_reestablish
    ln("disconnect", cln.id)
    wait(lambda: not ln.channel(cid)["peer_connected"] or ln.channel(cid)["active"], what="disconnected")
    connected(ln, cln)
    normal_both(ln, cln, cid)
    lncli_pays(ln, cln, 1_000_000)
    balance -= 1_000_000
    # lncli restarts (same port): it reconnects to CLN, its persistent peer
    ln.stop()
    ln.start()
    normal_both(ln, cln, cid)
    cln_pays(ln, cln, 2_000_000)
    balance += 2_000_000
    # CLN restarts: it reconnects to us (a peer with a channel)
    cln.stop()
    cln.start()
    normal_both(ln, cln, cid)
    lncli_pays(ln, cln, 1_500_000)
    cln_pays(ln, cln, 500_000)
    balance += -1_500_000 + 500_000
    assert agree_all(ln, cln) == balance
    status = " ".join(cln.channel(cid)["status"])
    assert "Reconnected, and reestablished" in status


# ---------------------------------------------------------------------------------------------
# (f) cooperative close from each side


def _wallet(ln: Lncli) -> int:
    return ln.json("wallet", "balance")["total_sat"]


def test_f1_cooperative_close_from_lncli(btc, ln, cln, lncli_channel):
    cid = lncli_channel
    ours = agree(ln, cln, cid)
    theirs_sat = cln.channel(cid)["to_us_msat"] // 1000
    before = _wallet(ln)
    c = ln.json("close", cid)
    assert c["state"] == "CLOSING" and c["closing_txid"]
    wait(lambda: in_mempool(btc, c["closing_txid"]), what="closing tx in the mempool")
    b = wait(lambda: (x := cln.channel(cid)) and x["state"] == "CLOSINGD_COMPLETE" and x, what="CLN closing done")
    assert c["closing_txid"] in " ".join(b["status"])  # CLN agreed on the same transaction
    tx = json.loads(btc.cli("getrawtransaction", c["closing_txid"], "1").stdout)
    values = [round(o["value"] * 100_000_000) for o in tx["vout"]]
    values.remove(theirs_sat)  # CLN's output: its whole balance (msat rounded down)
    (mine_sat,) = values
    assert 0 < ours // 1000 - mine_sat < 1_000  # the opener (us) paid the closing fee
    mine(btc, ln, cln, 1)
    wait(lambda: ln.channel(cid)["state"] == "CLOSED", what="lncli CLOSED")
    wait(lambda: cln.channel(cid)["state"] in ("ONCHAIN", "FUNDING_SPEND_SEEN"), what="CLN ONCHAIN")
    assert _wallet(ln) - before == mine_sat


def test_f2_cooperative_close_from_cln(btc, ln, cln):
    connected(ln, cln)
    r = cln.rpc("fundchannel", ln.id, 250_000)
    cid = r["channel_id"]
    wait(lambda: in_mempool(btc, r["txid"]), what="funding tx in the mempool")
    mine(btc, ln, cln, 2)
    normal_both(ln, cln, cid)
    cln_pays(ln, cln, 30_000_000)
    agree(ln, cln, cid)
    before = _wallet(ln)
    res = cln.rpc("close", cid, timeout=60)
    assert res["type"] == "mutual"
    (txid,) = res["txids"]
    wait(lambda: (c := ln.channel(cid)) and c["state"] == "CLOSING" and c["closing_txid"] == txid,
         what="lncli CLOSING with CLN's closing tx")
    mine(btc, ln, cln, 1)
    wait(lambda: ln.channel(cid)["state"] == "CLOSED", what="lncli CLOSED")
    assert wait(lambda: _wallet(ln) - before, what="lncli's wallet paid") == 30_000  # the opener (CLN) paid the fee


# ---------------------------------------------------------------------------------------------
# (g) force close from lncli


def test_g_force_close_from_lncli_swept(btc, ln, cln):
    cid = open_from_lncli(btc, ln, cln, 200_000)
    lncli_pays(ln, cln, 25_000_000)
    ours = agree(ln, cln, cid)
    delay = ln.channel(cid)["to_self_delay"]  # what CLN asked of our outputs
    before = _wallet(ln)
    c = ln.json("close", cid, "--force")
    assert c["state"] == "FORCE_CLOSING" and c["closing_txid"]
    wait(lambda: in_mempool(btc, c["closing_txid"]), what="commitment in the mempool")
    mine(btc, ln, cln, 1)
    b = wait(lambda: (x := cln.channel(cid)) and x["state"] == "ONCHAIN" and x, timeout=20, what="CLN ONCHAIN")
    assert any("their unilateral" in s for s in b["status"]), b["status"]
    # CLN's to_remote (static_remotekey) goes straight to its wallet
    wait(lambda: any(o["txid"] == c["closing_txid"] for o in cln.rpc("listfunds")["outputs"]),
         what="CLN's wallet has its output of our commitment")
    mine(btc, ln, cln, delay)
    wait(lambda: _wallet(ln) > before, timeout=20, what="our delayed output swept")
    mine(btc, ln, cln, 1)
    swept = _wallet(ln) - before
    assert ours // 1000 - 2_000 < swept < ours // 1000  # less the commitment and sweep fees


# ---------------------------------------------------------------------------------------------
# (h) update_fee from CLN, (i) channel_reestablish after disconnections at every step


@pytest.fixture(scope="module")
def ln2(request, tmp_path_factory, btc, ln):
    """A second lncli node (bitcoind's wallet is already funded through ``ln``)."""
    node = Lncli(tmp_path_factory.mktemp("lncli2") / "l", btc)
    request.addfinalizer(node.stop)
    node.start()
    node("fund", "0.05btc")
    return node


def test_h_update_fee_from_cln(btc, ln, cln, ln2):
    """CLN (the opener) changes the commitment feerate: update_fee + commitment_signed; payments
    and a mutual close go on at the new rate."""
    connected(ln2, cln)
    r = cln.rpc("fundchannel", ln2.id, 250_000)
    cid = r["channel_id"]
    wait(lambda: in_mempool(btc, r["txid"]), what="funding tx in the mempool")
    mine(btc, ln, cln, 2, ln2)
    normal_both(ln2, cln, cid)
    cln_pays(ln2, cln, 50_000_000)
    start = cln.channel(cid)["feerate"]["perkw"]
    for rate in (start * 3, start * 2):
        cln.rpc("dev-feerate", ln2.id, rate)
        wait(lambda: cln.channel(cid)["feerate"]["perkw"] == rate, what=f"feerate {rate} committed: {cln.tail(10)}")
        normal_both(ln2, cln, cid)
        lncli_pays(ln2, cln, 1_000_000)
        cln_pays(ln2, cln, 2_000_000)
    assert agree(ln2, cln, cid) == 52_000_000
    before = _wallet(ln2)
    res = cln.rpc("close", cid, timeout=60)
    assert res["type"] == "mutual"
    mine(btc, ln, cln, 1, ln2)
    wait(lambda: ln2.channel(cid)["state"] == "CLOSED", what="lncli CLOSED")
    assert wait(lambda: _wallet(ln2) - before, what="lncli's wallet paid") == 52_000


DEV_DISCONNECT = """\
-WIRE_REVOKE_AND_ACK
+WIRE_REVOKE_AND_ACK
-WIRE_COMMITMENT_SIGNED
+WIRE_COMMITMENT_SIGNED
-WIRE_COMMITMENT_SIGNED
<WIRE_REVOKE_AND_ACK
-WIRE_COMMITMENT_SIGNED
+WIRE_UPDATE_ADD_HTLC
<WIRE_UPDATE_FULFILL_HTLC
<WIRE_COMMITMENT_SIGNED
"""


def test_i_reestablish_after_disconnects(request, tmp_path, btc, ln, ln2):
    """A CLN that drops the connection before/after its revoke_and_ack and commitment_signed,
    after receiving ours, and after update_fulfill_htlc (``--dev-disconnect``): each time both
    sides reestablish, retransmit what the other lacks, and the payments complete (BOLT 2
    message retransmission)."""
    script = tmp_path / "dev_disconnect"
    script.write_text(DEV_DISCONNECT)
    cln2 = Cln(tmp_path / "cln2", btc, ("--dev-fast-reconnect", f"--dev-disconnect={script}"))
    request.addfinalizer(cln2.stop)
    cln2.start()
    ln2("connect", cln2.uri, "--persist")
    ch = ln2.json("open", cln2.id, "200000sat", "--no-wait")
    cid = ch["channel_id"]
    wait(lambda: in_mempool(btc, ch["funding_txid"]), what="funding tx in the mempool")
    mine(btc, ln, cln2, CLN_CONFIRMS, ln2)
    normal_both(ln2, cln2, cid)
    # ln2 -> cln2: CLN's revoke_and_ack (before, after), its commitment_signed (before, after),
    # then its commitment_signed for the fulfill (before) and after our revoke_and_ack
    lncli_pays(ln2, cln2, 10_000_000)
    agree(ln2, cln2, cid)  # waits for the reconnections to finish the commitment dance
    normal_both(ln2, cln2, cid)
    # cln2 -> ln2: CLN's commitment_signed (before: we forget its update_add_htlc), after its
    # update_add_htlc (uncommitted again), after our update_fulfill_htlc (we send it again), after
    # our commitment_signed
    cln_pays(ln2, cln2, 4_000_000)
    agree(ln2, cln2, cid)
    normal_both(ln2, cln2, cid)
    lncli_pays(ln2, cln2, 1_000_000)
    assert agree(ln2, cln2, cid) == 200_000_000 - 10_000_000 + 4_000_000 - 1_000_000
    log = cln2.log.read_text(errors="replace")
    fired = [line for line in log.splitlines() if "dev_disconnect: " in line]
    assert len(fired) == len(DEV_DISCONNECT.splitlines()), "\n".join(fired)


# ---------------------------------------------------------------------------------------------
# (j) CLN force closes


def test_j_cln_force_closes(btc, ln, cln, ln2):
    """CLN broadcasts its commitment (``dev-fail``): we see the funding spent by their commitment,
    and our to_remote output (static_remotekey: a P2WPKH to our payment_basepoint) reaches our
    wallet without any delay."""
    connected(ln2, cln)
    r = cln.rpc("fundchannel", id=ln2.id, amount=300_000, push_msat=7_000_000)
    cid = r["channel_id"]
    wait(lambda: in_mempool(btc, r["txid"]), what="funding tx in the mempool")
    mine(btc, ln, cln, 2, ln2)
    normal_both(ln2, cln, cid)
    cln_pays(ln2, cln, 60_000_000)
    ours = agree(ln2, cln, cid)
    assert ours == 67_000_000
    before = _wallet(ln2)
    cln.rpc("dev-fail", ln2.id)

    def spends_funding(txid: str) -> bool:
        return json.loads(btc.cli("getrawtransaction", txid, "1").stdout)["vin"][0]["txid"] == r["txid"]

    commitment = wait(lambda: [t for t in json.loads(btc.cli("getrawmempool").stdout) if spends_funding(t)],
                      what="CLN's commitment in the mempool")[0]
    mine(btc, ln, cln, 1, ln2)
    row = wait(lambda: (c := ln2.channel(cid)) and c["state"] not in ("NORMAL",) and c, what="lncli sees the close")
    assert row["state"] in ("FORCE_CLOSING", "CLOSED"), row
    got = wait(lambda: (v := _wallet(ln2) - before) > 0 and v, timeout=20, what="our to_remote in the wallet")
    assert ours // 1000 - 1_000 < got <= ours // 1000, (got, commitment)


# ---------------------------------------------------------------------------------------------
# (k) update_fee from lncli (the opener) to a CLN that checks fee limits


def test_k_update_fee_from_lncli(request, tmp_path, btc, ln, ln2):
    """lncli opens to a CLN run with ``--ignore-fee-limits=false``, then its estimate changes
    (``dev-setfeerate``): lncli sends update_fee + commitment_signed, CLN accepts it (its
    ``listpeerchannels`` feerate follows) and payments go on at the new rate both ways."""
    from lncli.rpc.client import call

    cln3 = Cln(tmp_path / "cln3", btc, ("--ignore-fee-limits=false",))
    request.addfinalizer(cln3.stop)
    cln3.start()
    cid = open_from_lncli(btc, ln2, cln3, 300_000)
    lncli_pays(ln2, cln3, 20_000_000)
    start = ln2.channel(cid)["feerate_per_kw"]
    assert cln3.channel(cid)["feerate"]["perkw"] == start
    netdir = ln2.dir / "regtest"
    for rate in (start * 2, max(253, start // 3) if start >= 760 else start * 4):
        r = call(netdir, "dev-setfeerate", datadir=ln2.dir, feerate_per_kw=rate)
        assert r["updated"] == [cid], r
        wait(lambda: cln3.channel(cid)["feerate"]["perkw"] == rate, what=f"CLN at feerate {rate}: {cln3.tail(10)}")
        wait(lambda: ln2.channel(cid)["feerate_per_kw"] == rate, what=f"lncli at feerate {rate}")
        normal_both(ln2, cln3, cid)
        lncli_pays(ln2, cln3, 1_000_000)
        cln_pays(ln2, cln3, 500_000)
    # lncli paid 20M + 2 x 1M, received 2 x 0.5M
    assert agree(ln2, cln3, cid) == 300_000_000 - 20_000_000 - 2 * 1_000_000 + 2 * 500_000
    call(netdir, "dev-setfeerate", datadir=ln2.dir)  # back to the estimate

"""A channel pair (tests/channel/harness.py) whose funding tx is real on an EmbeddedChain, plus
helpers to run ``ChannelMonitor`` instances block by block against that chain."""

from __future__ import annotations

import hashlib

from lncli.bitcoin.ecdsa import pubkey_from_privkey
from lncli.bitcoin.script import p2wpkh_script_for_pubkey
from lncli.bitcoin.tx import TxOut
from lncli.chain.embedded import EmbeddedChain
from lncli.chain.interface import TxRejected
from lncli.chain.scan import scan_blocks
from lncli.channel.channel import Channel
from lncli.channel.params import LocalPolicy
from lncli.monitor import monitor as mon
from lncli.proto.wire import decode_message
from tests.chain.test_contract import Key, coinbase_outpoints, p2wpkh_spend
from tests.channel.harness import CHAIN, OTHER, A, B, Pair

FUNDER = Key(7)
DEST = {A: p2wpkh_script_for_pubkey(pubkey_from_privkey((11).to_bytes(32, "big"))),
        B: p2wpkh_script_for_pubkey(pubkey_from_privkey((12).to_bytes(32, "big")))}
DELAY = 10  # to_self_delay both sides require


class Clock:
    def __init__(self, t: int = 1_700_000_000):
        self.t = t

    def __call__(self) -> int:
        self.t += 1
        return self.t


def new_chain(tmp_path) -> EmbeddedChain:
    chain = EmbeddedChain(tmp_path / "chain", clock=Clock())
    chain.mine(101, FUNDER.spk)
    return chain


class ChainPair(Pair):
    """``Pair`` with a funding tx that spends a mature coinbase of ``chain`` (confirmed here)."""

    def __init__(self, chain: EmbeddedChain, *, anchors=False, funding=1_000_000, push_msat=0, feerate=2500,
                 to_self_delay=DELAY, opener=A):
        self.chain = chain
        self.persist = True
        self.policy = LocalPolicy(to_self_delay=to_self_delay, minimum_depth=3)
        self.queue = {A: [], B: []}
        self.monitor = {A: [], B: []}
        self.events = {A: [], B: []}
        self.sent = {A: [], B: []}
        self.ch = {}
        self.opener, self.accepter = opener, OTHER[opener]
        seed = {A: hashlib.sha256(b"seed A").digest(), B: hashlib.sha256(b"seed B").digest()}
        ca, open_msg = Channel.new_outbound(
            channel_seed=seed[opener], temporary_channel_id=hashlib.sha256(b"temp").digest(), chain_hash=CHAIN,
            funding_satoshis=funding, push_msat=push_msat, feerate_per_kw=feerate, policy=self.policy,
            anchors=anchors, shutdown_scriptpubkey=None,
        )
        self.ch[opener] = ca
        cb, accept = Channel.from_open_channel(
            decode_message(open_msg.encode()), channel_seed=seed[self.accepter], chain_hash=CHAIN,
            feerate_estimate_per_kw=feerate, policy=self.policy,
        )
        self.ch[self.accepter] = cb
        out = self.ch[opener].on_accept_channel(decode_message(accept.encode()))
        (req,) = out.events
        [(op, value)] = coinbase_outpoints(chain, FUNDER, 1, 1)
        self.funding_tx = p2wpkh_spend(
            FUNDER, [(op, value)], [TxOut(req.amount_sat, req.script_pubkey), TxOut(value - req.amount_sat - 2000, FUNDER.spk)]
        )
        self.funding_vout = 0
        self.apply(opener, self.ch[opener].funding_tx_built(self.funding_tx.txid(), 0))
        self.step(self.accepter)
        self.step(opener)
        chain.broadcast(self.funding_tx)
        chain.mine(3)
        self.lock_in()


def of_type(items, cls):
    return [x for x in items if isinstance(x, cls)]


class Runner:
    """Feeds monitors the chain's blocks and broadcasts what they ask for, checking that the
    chain accepts every broadcast (``accepted[reason] = tip height when first accepted``)."""

    def __init__(self, chain: EmbeddedChain, pair: ChainPair, sides=(A, B), strict: bool = True):
        self.chain, self.pair, self.strict = chain, pair, strict
        self.monitors: dict[str, mon.ChannelMonitor] = {}
        for side in sides:
            m = mon.ChannelMonitor(pair.ch[side].channel_id, pair.ch[side].secrets, destination_script=DEST[side])
            self.monitors[side] = m
        self.sync_updates()
        self.height = chain.tip()[0]
        for m in self.monitors.values():
            m.best_height = self.height
        self.actions: dict[str, list] = {s: [] for s in self.monitors}
        self.accepted: dict[str, dict[str, int]] = {s: {} for s in self.monitors}
        self.rejected: list = []
        self.muted: set[str] = set()  # sides whose broadcasts are ignored

    def sync_updates(self) -> None:
        for side, m in self.monitors.items():
            for u in self.pair.monitor[side]:
                if u.update_id > m.latest_update_id:
                    m.apply(u)

    def feed(self) -> None:
        """Deliver new blocks, then broadcast."""
        tip = self.chain.tip()[0]
        while self.height < tip:
            self.height += 1
            block = self.chain.block_at(self.height)
            for side, m in self.monitors.items():
                acts = m.block_connected(block, self.height)
                self.actions[side] += [(self.height, a) for a in acts]
                if side in self.muted:
                    continue
                for a in of_type(acts, mon.Broadcast):
                    self.send(side, a)

    def send(self, side, a) -> None:
        try:
            self.chain.broadcast(a.tx)
        except TxRejected as e:
            if e.reason == "txn-already-in-mempool":
                return
            if self.strict:
                raise AssertionError(f"{side}: {a.reason} rejected at tip {self.height}: {e.reason}") from None
            self.rejected.append((side, a.reason, e.reason))
            return
        self.accepted[side].setdefault(a.reason, self.height)

    def mine(self, n: int = 1) -> None:
        for _ in range(n):
            self.chain.mine(1)
            self.feed()

    def mine_until_resolved(self, side, limit=200) -> int:
        for _ in range(limit):
            if self.monitors[side].is_resolved:
                return self.height
            self.mine()
        raise AssertionError(f"{side} not resolved; last actions {self.actions[side][-5:]}")


def received_at(chain, script: bytes, from_height: int = 0) -> int:
    return sum(e.value_sat for e in scan_blocks(chain, from_height, chain.tip()[0], {script}) if hasattr(e, "value_sat"))

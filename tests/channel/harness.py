"""Two Channel objects wired together in memory.

Messages are encoded to bytes and decoded again on delivery; both channels are JSON
round-tripped (``to_record`` -> json -> ``from_record``) after every step, so every scenario
also tests persistence. Monitor updates and events are collected per side.
"""

from __future__ import annotations

import hashlib
import json

from lncli.bitcoin.ecdsa import verify
from lncli.bitcoin.script import funding_script
from lncli.bitcoin.sighash import SighashCache
from lncli.bitcoin.tx import OutPoint, Transaction, TxIn, TxOut
from lncli.channel import events as ev
from lncli.channel.channel import Channel
from lncli.channel.params import LocalPolicy
from lncli.channel.state import LOCAL, REMOTE, ChannelState
from lncli.proto.wire import decode_message

CHAIN = hashlib.sha256(b"regtest").digest()
ONION = bytes(1366)
A, B = "A", "B"
OTHER = {A: B, B: A}


def preimage(n: int) -> bytes:
    return hashlib.sha256(b"preimage %d" % n).digest()


def phash(n: int) -> bytes:
    return hashlib.sha256(preimage(n)).digest()


def script_for(name: str) -> bytes:
    return b"\x00\x14" + hashlib.sha256(name.encode()).digest()[:20]


def roundtrip(c: Channel) -> Channel:
    """Persist and load ``c`` as the node does (``record_json``), checking on the way that
    ``record_json`` is exactly the text of ``to_record`` and that a reload gives it again."""
    text = c.record_json()
    assert text == json.dumps(c.to_record(), separators=(",", ":"))
    assert c.record_json() == text  # the caches give the same text again
    back = Channel.from_record(json.loads(text))
    assert back.record_json() == text
    return back


class Pair:
    def __init__(
        self,
        *,
        anchors: bool = False,
        funding: int = 1_000_000,
        push_msat: int = 0,
        feerate: int = 2500,
        to_self_delay: int = 144,
        persist: bool = True,
        opener: str = A,
    ):
        self.persist = persist
        self.policy = LocalPolicy(to_self_delay=to_self_delay, minimum_depth=3)
        self.queue: dict[str, list[bytes]] = {A: [], B: []}  # messages waiting for delivery TO side
        self.monitor: dict[str, list] = {A: [], B: []}
        self.events: dict[str, list] = {A: [], B: []}
        self.sent: dict[str, list[str]] = {A: [], B: []}
        self.ch: dict[str, Channel] = {}
        self.opener, self.accepter = opener, OTHER[opener]
        seed = {A: hashlib.sha256(b"seed A").digest(), B: hashlib.sha256(b"seed B").digest()}
        ca, open_msg = Channel.new_outbound(
            channel_seed=seed[opener],
            temporary_channel_id=hashlib.sha256(b"temp").digest(),
            chain_hash=CHAIN,
            funding_satoshis=funding,
            push_msat=push_msat,
            feerate_per_kw=feerate,
            policy=self.policy,
            anchors=anchors,
            shutdown_scriptpubkey=None,
        )
        self.ch[opener] = ca
        cb, accept = Channel.from_open_channel(
            decode_message(open_msg.encode()),
            channel_seed=seed[self.accepter],
            chain_hash=CHAIN,
            feerate_estimate_per_kw=feerate,
            policy=self.policy,
        )
        self.ch[self.accepter] = cb
        self.open_msg, self.accept_msg = open_msg, accept
        out = self.ch[opener].on_accept_channel(decode_message(accept.encode()))
        (req,) = out.events
        assert isinstance(req, ev.FundingRequired)
        self.funding_tx = Transaction(
            version=2,
            inputs=(TxIn(OutPoint(hashlib.sha256(b"coin").digest(), 0), b"", 0xFFFFFFFD),),
            outputs=(TxOut(123_456, script_for("change")), TxOut(req.amount_sat, req.script_pubkey)),
            locktime=0,
        )
        self.funding_vout = 1
        self.apply(opener, self.ch[opener].funding_tx_built(self.funding_tx.txid(), 1))
        self.step(self.accepter)  # funding_created -> funding_signed
        self.step(opener)  # funding_signed -> BroadcastFunding
        assert any(isinstance(e, ev.BroadcastFunding) for e in self.events[opener])

    # ---------------------------------------------------------------- plumbing

    def apply(self, side: str, out: ev.Outcome) -> ev.Outcome:
        self.monitor[side] += out.monitor_updates
        self.events[side] += out.events
        for m in out.messages:
            self.queue[OTHER[side]].append(m.encode())
            self.sent[side].append(m.name)
        if self.persist:
            self.ch[side] = roundtrip(self.ch[side])
        return out

    def call(self, side: str, method: str, *args, **kw) -> ev.Outcome:
        out = getattr(self.ch[side], method)(*args, **kw)
        return self.apply(side, out)

    def step(self, side: str) -> ev.Outcome:
        """Deliver the next message waiting for ``side``."""
        data = self.queue[side].pop(0)
        msg = decode_message(data)
        return self.apply(side, self.ch[side].handle(msg))

    def flush(self, max_steps: int = 1000, auto_commit: bool = True) -> None:
        """Deliver everything (alternating) and send commitments until both are quiet."""
        for _ in range(max_steps):
            moved = False
            for side in (A, B):
                if self.queue[side]:
                    self.step(side)
                    moved = True
            if not moved and auto_commit:
                for side in (A, B):
                    if self.ch[side].needs_commitment():
                        self.call(side, "send_commitment")
                        moved = True
            if not moved:
                return
        raise AssertionError("did not settle")

    def drop(self, side: str) -> list[bytes]:
        """Lose every message in flight to ``side``."""
        lost, self.queue[side] = self.queue[side], []
        return lost

    def reconnect(self) -> None:
        self.queue = {A: [], B: []}
        ra = self.ch[A].reestablish_message()
        rb = self.ch[B].reestablish_message()
        if self.persist:
            self.ch[A], self.ch[B] = roundtrip(self.ch[A]), roundtrip(self.ch[B])
        self.apply(A, self.ch[A].on_channel_reestablish(decode_message(rb.encode())))
        self.apply(B, self.ch[B].on_channel_reestablish(decode_message(ra.encode())))

    def lock_in(self) -> None:
        for side in (A, B):
            self.call(side, "funding_confirmed", 3, 0x6F0000000100)
        self.flush()
        assert self.ch[A].state == ChannelState.NORMAL and self.ch[B].state == ChannelState.NORMAL

    # ---------------------------------------------------------------- checks

    def check_agree(self) -> None:
        """Each side's commitments equal the other's view of them; balances add up."""
        funding_msat = self.ch[A].funding_satoshis * 1000
        for side in (A, B):
            me, peer = self.ch[side], self.ch[OTHER[side]]
            assert me.local_ctn == peer.remote_ctn or me.local_ctn + 1 == peer.remote_ctn
            ours, theirs, live = me.balances(LOCAL, me.local_ctn)
            assert ours + theirs + sum(r.amount_msat for r in live) == funding_msat
            if me.local_ctn == peer.remote_ctn:
                mine, _ = me.commitment(LOCAL, me.local_ctn)
                seen, _ = peer.commitment(REMOTE, me.local_ctn)
                assert mine.tx.txid() == seen.tx.txid()
                assert sum(o.value_sat for o in mine.tx.outputs) + mine.fee_sat == me.funding_satoshis
                p_ours, p_theirs, _ = peer.balances(REMOTE, me.local_ctn)
                assert (p_ours, p_theirs) == (theirs, ours)

    def verify_holder(self, side: str) -> Transaction:
        """The latest holder commitment's funding signatures verify with ecdsa + BIP 143."""
        c = self.ch[side]
        tx, htlc_txs = c.latest_holder_commitment()
        witness = tx.inputs[0].witness
        script = funding_script(c.secrets.funding_pubkey, c.remote_basepoints.funding_pubkey)
        assert witness[3] == script
        sighash = SighashCache(tx).segwit_v0(0, script, c.funding_satoshis, 1)
        keys = sorted([c.secrets.funding_pubkey, c.remote_basepoints.funding_pubkey])
        for item, key in zip(witness[1:3], keys):
            assert item[-1] == 1
            assert verify(key, sighash, item[:-1])
        return tx

    def balance(self, side: str) -> tuple[int, int]:
        c = self.ch[side]
        ours, theirs, live = c.balances(LOCAL, c.local_ctn)
        return ours, theirs


# ------------------------------------------------------------------------------- helpers of the tests


def normal_pair(**kw) -> Pair:
    p = Pair(**kw)
    p.lock_in()
    return p


def names(p: Pair, side: str) -> list[str]:
    return p.sent[side]


def of_type(items, cls):
    return [x for x in items if isinstance(x, cls)]

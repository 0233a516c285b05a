"""Random operation sequences on a channel pair (hypothesis RuleBasedStateMachine).

Random adds, fulfills, fails, fee updates, commitments, message deliveries, lost messages
with reconnects, and restarts from the persisted record. Invariants: balances plus in-flight
HTLCs equal the funding amount on every commitment, both sides agree on every commitment
they both know, and the commitment handed out for force close is never revoked.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from lncli.channel.params import ChannelError
from lncli.channel.state import LOCAL
from lncli.proto.keys import commitment_number_from_tx
from tests.channel.harness import ONION, OTHER, A, B, Pair, phash, preimage, roundtrip

sides = st.sampled_from([A, B])


class ChannelPairMachine(RuleBasedStateMachine):
    @initialize(anchors=st.booleans(), opener=sides)
    def setup(self, anchors, opener):
        # persist=False: the rules below round-trip explicitly (and the harness cost stays low)
        self.p = Pair(anchors=anchors, opener=opener, push_msat=400_000_000, persist=False)
        self.p.lock_in()
        self.n = 0
        self.revoked: dict[str, set[bytes]] = {A: set(), B: set()}
        # start with HTLCs in flight both ways (one of them dust), so settling rules have work
        for i, (side, amount) in enumerate([(A, 20_000_000), (B, 15_000_000), (A, 300_000), (B, 9_000_000)]):
            self.n += 1
            self.p.call(side, "add_htlc", amount, phash(self.n), 500 + i, ONION)
        self.p.flush()

    # -------------------------------------------------------------------- local commands

    @rule(side=sides, amounts=st.lists(st.integers(1, 60_000_000), min_size=1, max_size=3), dust=st.booleans())
    def add(self, side, amounts, dust):
        for amount in amounts:
            if dust:
                amount = amount % 700_000 + 1
            self.n += 1
            try:
                self.p.call(side, "add_htlc", amount, phash(self.n), 500 + self.n % 7, ONION)
            except ChannelError:
                pass

    def _settleable(self, side):
        c = self.p.ch[side]
        states = c.htlc_states()
        return [k[1] for k, v in states.items() if k[0] == "in" and v.value == "Committed"]

    @rule(side=sides, pick=st.integers(0, 100), how=st.sampled_from(["fulfill", "fail", "malformed"]))
    def settle(self, side, pick, how):
        ids = self._settleable(side)
        if not ids:
            return
        hid = ids[pick % len(ids)]
        rec = self.p.ch[side].received[hid]
        n = next(i for i in range(self.n + 1) if phash(i) == rec.payment_hash)
        if how == "fulfill":
            self.p.call(side, "fulfill_htlc", hid, preimage(n))
        elif how == "fail":
            self.p.call(side, "fail_htlc", hid, b"\x00" * 32)
        else:
            self.p.call(side, "fail_malformed_htlc", hid, bytes(32), 0xC005)

    @rule(rate=st.integers(253, 6000))
    def fee(self, rate):
        side = self.p.opener
        try:
            self.p.call(side, "update_fee", rate)
        except ChannelError:
            pass

    @rule(side=sides)
    def commit(self, side):
        if self.p.ch[side].needs_commitment():
            self.p.call(side, "send_commitment")
            self._note_revoked()

    @rule(side=sides)
    def deliver(self, side):
        if self.p.queue[side]:
            self.p.step(side)
            self._note_revoked()

    @rule(side=sides)
    def speculate(self, side):
        """The node prepares the next exchange's commitments while it waits: that changes
        nothing (the memo it fills is checked by every later signature the peer verifies)."""
        c = self.p.ch[side]
        before = c.record_json()
        c.speculate()
        assert c.record_json() == before

    @rule(side=sides)
    def restart(self, side):
        self.p.ch[side] = roundtrip(self.p.ch[side])

    @rule(steps=st.integers(1, 12))
    def pump(self, steps):
        """Deliver messages and send commitments, as a node would, for a few steps."""
        for _ in range(steps):
            moved = False
            for side in (A, B):
                if self.p.queue[side]:
                    self.p.step(side)
                    moved = True
                elif self.p.ch[side].needs_commitment():
                    self.p.call(side, "send_commitment")
                    moved = True
            self._note_revoked()
            if not moved:
                return

    @rule(lose_a=st.integers(0, 5), lose_b=st.integers(0, 5), gate=st.integers(0, 3))
    def reconnect(self, lose_a, lose_b, gate):
        if gate:
            return
        # deliver a few, lose the rest, then reestablish
        for side, keep in ((A, lose_a), (B, lose_b)):
            for _ in range(min(keep, len(self.p.queue[side]))):
                self.p.step(side)
                self._note_revoked()
        self.p.drop(A)
        self.p.drop(B)
        self.p.reconnect()

    @rule()
    def settle_everything(self):
        self.p.flush()
        self._note_revoked()
        self.p.check_agree()

    # -------------------------------------------------------------------- invariants

    def _note_revoked(self):
        for side in (A, B):
            c = self.p.ch[side]
            for n in range(max(0, c.local_ctn - 3), c.local_ctn):
                self.revoked[side].add((n,))

    @invariant()
    def balances_add_up(self):
        if not hasattr(self, "p"):
            return
        for side in (A, B):
            c = self.p.ch[side]
            for s, ctn in ((0, c.local_ctn), (1, c.remote_ctn)):
                ours, theirs, live = c.balances(s, ctn)
                assert ours >= 0 and theirs >= 0
                assert ours + theirs + sum(r.amount_msat for r in live) == c.funding_satoshis * 1000
                ctx, _ = c.commitment(s, ctn)
                assert sum(o.value_sat for o in ctx.tx.outputs) + ctx.fee_sat == c.funding_satoshis

    @invariant()
    def sides_agree(self):
        if not hasattr(self, "p"):
            return
        for side in (A, B):
            me, peer = self.p.ch[side], self.p.ch[OTHER[side]]
            if me.local_ctn == peer.remote_ctn:
                mine, _ = me.commitment(LOCAL, me.local_ctn)
                seen, _ = peer.commitment(1, me.local_ctn)
                assert mine.tx.txid() == seen.tx.txid()

    @invariant()
    def force_close_is_latest(self):
        if not hasattr(self, "p"):
            return
        for side in (A, B):
            c = self.p.ch[side]
            tx, _ = c.latest_holder_commitment()
            n = commitment_number_from_tx(tx.locktime, tx.inputs[0].sequence, c.obscure_factor)
            assert n == c.local_ctn
            # the peer holds no secret for it
            peer = self.p.ch[OTHER[side]]
            assert peer.remote_revoked <= n

    def teardown(self):
        if hasattr(self, "p"):
            # everything settles after a final reconnect
            self.p.drop(A)
            self.p.drop(B)
            self.p.reconnect()
            self.p.flush()
            self.p.check_agree()


ChannelPairMachine.TestCase.settings = settings(
    max_examples=int(__import__("os").environ.get("CHANNEL_FUZZ_EXAMPLES", 12)),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestChannelPair = ChannelPairMachine.TestCase

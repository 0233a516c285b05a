"""The walkthrough behind ``lncli demo``: three nodes on an embedded regtest chain, channels alice -> bob
-> carol, payments over one channel and then across the network (alice pays carol through bob, on a
route from her gossip graph, paying bob's fee), a multi-part payment over two channels, a
cooperative close, each step run as the very
``lncli`` command a user would type by hand.

Everything lives in one directory (a fresh temporary one unless given): ``chain/`` for the embedded
chain and ``alice/``, ``bob/`` and ``carol/`` for the datadirs, each with an ``lncli.conf`` that points at the
shared chain. Each step is a real ``lncli`` process; the demo only reads their JSON.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lncli.errors import LncliError

Step = dict
NAMES = ("alice", "bob", "carol")


class DemoFailed(LncliError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Demo:
    root: Path
    payments: int = 3
    amount_sat: int = 1000
    channel_sat: int = 500_000
    second_channel_sat: int = 300_000
    mpp_sat: int = 600_000
    nodes: dict[str, Path] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)

    def setup(self) -> None:
        chain = self.root / "chain"
        for name in NAMES:
            d = self.root / name
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o700)
            (d / "lncli.conf").write_text(
                f"# written by lncli demo\n[regtest]\nchaindir={chain}\nlisten=127.0.0.1:{_free_port()}\n"
                "poll-interval=0.2\n"
            )
            self.nodes[name] = d

    # one lncli invocation, shown as the user would type it
    def run(self, node: str | None, *args: str, title: str) -> Step:
        argv = (["--datadir", str(self.nodes[node])] if node else []) + list(args)
        shown = "lncli " + " ".join(shlex.quote(a) for a in argv)
        t = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "lncli", *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        elapsed = time.monotonic() - t
        if proc.returncode != 0:
            err = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            raise DemoFailed(f"demo step '{title}' failed: {shown}: {err}")
        try:
            result = json.loads(proc.stdout) if proc.stdout.strip() else None
        except json.JSONDecodeError:
            result = proc.stdout.strip()
        return {"step": title, "command": shown, "seconds": round(elapsed, 3), "result": result}

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise DemoFailed(f"demo: timed out waiting for {what}")
            time.sleep(0.2)

    def channels(self, node: str) -> list[dict]:
        out = self.run(node, "channels", title="channels")["result"]
        return out if isinstance(out, list) else out.get("channels", [])

    def channel(self, node: str, peer_id: str) -> dict | None:
        rows = [c for c in self.channels(node) if c.get("peer") == peer_id and c.get("state") != "CLOSED"]
        return rows[0] if rows else None

    def normal_count(self, node: str, peer_id: str) -> int:
        return sum(1 for c in self.channels(node) if c.get("peer") == peer_id and c.get("state") == "NORMAL")

    def knows_policy(self, node: str, scid: str, source: str) -> bool:
        graph = self.run(node, "graph", title="graph")["result"]
        return any(c["short_channel_id"] == scid and c["source"] == source for c in graph["channels"])

    def steps(self) -> Iterator[Step]:
        self.setup()
        ids, uris = {}, {}
        for name in NAMES:
            s = self.run(name, "node", "start", "--daemon", "--alias", name, title=f"start {name}'s node")
            self.started.append(name)
            ids[name] = s["result"]["node_id"]
            uris[name] = s["result"]["uris"][0]
            yield s
        yield self.run("alice", "fund", "1btc", title="fund alice's wallet on the embedded chain")
        yield self.run("bob", "fund", "1btc", title="fund bob's wallet (bob opens a channel to carol)")
        yield self.run("alice", "connect", uris["bob"], title="alice connects to bob")
        yield self.run("bob", "connect", uris["carol"], title="bob connects to carol")
        yield self.run(
            "alice", "open", ids["bob"], str(self.channel_sat), "--no-wait", title="alice opens a channel to bob"
        )
        yield self.run(
            "bob", "open", ids["carol"], str(self.channel_sat), "--no-wait", title="bob opens a channel to carol"
        )
        yield self.run("alice", "mine", "6", title="mine 6 blocks: the funding transactions confirm, deep enough to announce")

        def normal(name, peer):
            c = self.channel(name, ids[peer])
            return c is not None and c.get("state") == "NORMAL"

        self.wait("both channels to be ready on both sides",
                  lambda: normal("alice", "bob") and normal("bob", "alice") and normal("bob", "carol") and normal("carol", "bob"))
        yield self.run("alice", "channels", title="alice's channel to bob is open")
        for i in range(1, self.payments + 1):
            inv = self.run(
                "bob", "invoice", "create", f"{self.amount_sat}sat", "-d", f"demo payment {i}", title=f"bob creates invoice {i}"
            )
            yield inv
            yield self.run("alice", "pay", inv["result"]["bolt11"], title=f"alice pays invoice {i}")
        yield self.run("bob", "invoice", "list", title="bob's invoices are paid")

        # across the network: alice has no channel to carol, she finds one through bob in her gossip graph
        bc = self.channel("bob", ids["carol"])["short_channel_id"]
        self.wait("alice to learn bob's channel to carol from gossip (channel_announcement, channel_update)",
                  lambda: self.knows_policy("alice", bc, ids["bob"]))
        yield self.run("alice", "graph", title="alice's gossip graph: both public channels, each direction's fee policy")
        inv = self.run(
            "carol", "invoice", "create", f"{self.amount_sat}sat", "-d", "demo payment through bob", "--no-route-hints",
            title="carol creates an invoice (no route hints: alice must route by gossip)",
        )
        yield inv
        yield self.run("alice", "pay", inv["result"]["bolt11"], title="alice pays carol through bob (an onion of two hops)")
        yield self.run("bob", "forwards", title="bob forwarded it and earned his fee")

        # a multi-part payment (basic_mpp): more than any one of alice's channels can send
        yield self.run("alice", "open", ids["bob"], str(self.second_channel_sat), "--no-wait",
                       title="alice opens a second, smaller channel to bob")
        yield self.run("alice", "mine", "6", title="mine 6 blocks: the second channel confirms")
        self.wait("alice's second channel to be ready on both sides", lambda: self.normal_count("alice", ids["bob"]) == 2
                  and self.normal_count("bob", ids["alice"]) == 2)
        big = self.mpp_sat
        inv = self.run("bob", "invoice", "create", f"{big}sat", "-d", "demo multi-part payment",
                       title=f"bob creates an invoice for {big:,} sat: more than either of alice's channels holds")
        yield inv
        yield self.run("alice", "pay", inv["result"]["bolt11"],
                       title="alice pays it in parts over her two channels: "
                             "bob holds the first part until the total arrives, then settles them all")

        chan = self.channel("alice", ids["bob"])
        yield self.run("alice", "close", chan["channel_id"], title="alice closes her channel to bob cooperatively")
        yield self.run("alice", "mine", "1", title="mine the closing transaction")
        time.sleep(0.5)
        yield self.run("alice", "wallet", "balance", title="alice's wallet after the close")
        yield self.run("bob", "wallet", "balance", title="bob's wallet after the close")

    def stop(self) -> None:
        for name in reversed(self.started):
            subprocess.run(
                [sys.executable, "-m", "lncli", "--datadir", str(self.nodes[name]), "node", "stop"],
                capture_output=True,
            )
        self.started.clear()

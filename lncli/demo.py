"""The walkthrough behind ``lncli demo``: two nodes on an embedded regtest chain, a channel, payments,
a cooperative close, each step run as the very ``lncli`` command a user would type by hand.

Everything lives in one directory (a fresh temporary one unless given): ``chain/`` for the embedded
chain and ``alice/`` and ``bob/`` for the two datadirs, each with an ``lncli.conf`` that points at the
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
    nodes: dict[str, Path] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)

    def setup(self) -> None:
        chain = self.root / "chain"
        for name in ("alice", "bob"):
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

    def steps(self) -> Iterator[Step]:
        self.setup()
        ids = {}
        for name in ("alice", "bob"):
            s = self.run(name, "node", "start", "--daemon", "--alias", name, title=f"start {name}'s node")
            self.started.append(name)
            ids[name] = s["result"]["node_id"]
            uri = s["result"]["uris"][0]
            yield s
        yield self.run("alice", "fund", "1btc", title="fund alice's wallet on the embedded chain")
        yield self.run("alice", "connect", uri, title="alice connects to bob")
        opened = self.run(
            "alice", "open", ids["bob"], str(self.channel_sat), "--no-wait", title="alice opens a channel to bob"
        )
        yield opened
        yield self.run("alice", "mine", "6", title="mine 6 blocks to confirm the funding transaction")

        def normal(name):
            return any(c.get("state") == "NORMAL" for c in self.channels(name))

        self.wait("the channel to be ready on both sides", lambda: normal("alice") and normal("bob"))
        yield self.run("alice", "channels", title="the channel is open")
        for i in range(1, self.payments + 1):
            inv = self.run(
                "bob", "invoice", "create", f"{self.amount_sat}sat", "-d", f"demo payment {i}", title=f"bob creates invoice {i}"
            )
            yield inv
            yield self.run("alice", "pay", inv["result"]["bolt11"], title=f"alice pays invoice {i}")
        yield self.run("bob", "invoice", "list", title="bob's invoices are paid")
        chan = self.channels("alice")[0]
        yield self.run("alice", "close", chan["channel_id"], title="alice closes the channel cooperatively")
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

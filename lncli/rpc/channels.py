"""Client-side channel operations that take more than one RPC call.

:func:`open_channel` asks the node to open a channel and then, unless told not to, polls the
channel until it leaves ``AWAITING_LOCKIN`` (``minimum_depth`` confirmations and
``channel_ready`` both ways), reporting each new waiting state through ``progress``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from lncli.errors import InputError, LncliError
from lncli.rpc.client import RpcClient

__all__ = ["open_channel", "POLL_INTERVAL"]

#: how often the channel's state is read while waiting for channel_ready
POLL_INTERVAL = 0.2


def _waiting_note(ch: dict, network: str) -> str:
    need = max(ch["minimum_depth"] - ch["confirmations"], 0)
    if not need:
        return "confirmed; waiting for the peer's channel_ready"
    note = f"waiting for {need} more confirmation{'s' if need != 1 else ''} of {ch['funding_txid']}"
    if network == "regtest":
        note += f" (lncli mine {need})"
    return note


def open_channel(
    netdir: Path | str,
    datadir: Path | str | None,
    *,
    node_id: str,
    amount_sat: int,
    push_msat: int = 0,
    private: bool = False,
    wait: bool = True,
    timeout: float = 0,
    network: str = "regtest",
    progress: Callable[[str], None] | None = None,
    poll_interval: float = POLL_INTERVAL,
) -> dict:
    """Open a channel to ``node_id`` (the node checks the amounts) and return it as the node
    describes it (``listchannels``). With ``wait``, return once it is ``NORMAL``; LncliError if it
    ends in another state, or is not ready after ``timeout`` seconds (0: no limit; the channel
    stays open). ``progress`` gets each new waiting note (e.g. the confirmations missing)."""
    if timeout < 0:
        raise InputError("--timeout cannot be negative")
    with RpcClient(netdir, datadir) as client:
        ch = client.call("open", node_id=node_id, amount_sat=amount_sat, push_msat=push_msat, private=private)
    if not wait or ch["state"] == "NORMAL":
        return ch
    deadline = time.monotonic() + timeout if timeout else None
    last = None
    while True:
        with RpcClient(netdir, datadir) as client:
            (ch,) = client.call("listchannels", channel=ch["channel_id"])
        if ch["state"] != "AWAITING_LOCKIN":
            break
        note = _waiting_note(ch, network)
        if note != last and progress is not None:
            progress(note)
        last = note
        if deadline is not None and time.monotonic() > deadline:
            raise LncliError(
                f"channel {ch['channel_id']} is not ready after {timeout:g} s ({note}); it stays open: see lncli channels"
            )
        time.sleep(poll_interval)
    if ch["state"] != "NORMAL":
        raise LncliError(f"channel {ch['channel_id']} is {ch['state']}: {ch.get('close_reason') or 'not ready'}")
    return ch

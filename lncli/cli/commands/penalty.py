"""``lncli penalty``: explain a transaction that spends a channel (commitment or not, whose, which
number, revoked or not, each output and who can claim it when) and build (optionally broadcast)
the justice transaction for a revoked commitment the peer published.

From the datadir (no node needed; reading while one runs is fine), or ``--offline`` from keys
given by hand (no datadir at all)."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env, arg, parse_hex
from lncli.cli.output import emit
from lncli.errors import UsageError

_OFFLINE = "Offline keys"


def _hex(value: Optional[str], what: str, length: int) -> Optional[bytes]:
    return None if value is None else parse_hex(value, what, length)


def penalty(
    ctx: typer.Context,
    tx: str = typer.Argument(
        ...,
        metavar="TX",
        help="The transaction: its hex, or its txid if the chain backend can fetch it. '-' reads stdin.",
    ),
    legacy_tx: Optional[str] = typer.Argument(
        None,
        metavar="[TX]",
        help="The old form 'penalty CHANNEL TX': with two arguments the first is the channel.",
        show_default=False,
    ),
    channel: Optional[str] = typer.Option(
        None, "--channel", metavar="CHANNEL",
        help="channel_id (64 hex), short_channel_id (BLOCKxTXxOUT) or funding TXID:VOUT [default: the channel whose funding TX spends].",
    ),
    destination: Optional[str] = typer.Option(
        None, "--destination", metavar="ADDRESS", help="Where the swept funds go [default: the monitor's sweep address, else a new wallet address]."
    ),
    feerate: Optional[float] = typer.Option(
        None, "--feerate", metavar="SAT_PER_VB", help="Fee rate in sat/vB [default: the monitor's sweep fee rate]."
    ),
    broadcast: bool = typer.Option(False, "--broadcast", help="Send the justice transaction through the chain backend."),
    offline: bool = typer.Option(
        False, "--offline", help="No datadir: the peer's revoked commitment read with the keys below.", rich_help_panel=_OFFLINE
    ),
    per_commitment_secret: Optional[str] = typer.Option(
        None, "--per-commitment-secret", metavar="HEX", help="The secret the peer revealed for TX (32 bytes).", rich_help_panel=_OFFLINE
    ),
    revocation_basepoint_secret: Optional[str] = typer.Option(
        None, "--revocation-basepoint-secret", metavar="HEX", help="Our revocation basepoint's secret (32 bytes).", rich_help_panel=_OFFLINE
    ),
    remote_delayed_payment_basepoint: Optional[str] = typer.Option(
        None, "--remote-delayed-payment-basepoint", metavar="HEX", help="The peer's delayed_payment_basepoint (33 bytes).",
        rich_help_panel=_OFFLINE,
    ),
    to_self_delay: Optional[int] = typer.Option(
        None, "--to-self-delay", metavar="N", help="The delay on the peer's to_local (the one we required).", rich_help_panel=_OFFLINE
    ),
    remote_htlc_basepoint: Optional[str] = typer.Option(
        None, "--remote-htlc-basepoint", metavar="HEX", help="The peer's htlc_basepoint (for HTLC outputs).", rich_help_panel=_OFFLINE
    ),
    local_htlc_basepoint: Optional[str] = typer.Option(
        None, "--local-htlc-basepoint", metavar="HEX", help="Our htlc_basepoint (for HTLC outputs).", rich_help_panel=_OFFLINE
    ),
    htlc: list[str] = typer.Option(
        [], "--htlc", metavar="offered|received:PAYMENT_HASH:CLTV",
        help="An HTLC of TX, its direction from the peer's side (offered = offered by the peer), as in BOLT 3 (repeat).",
        rich_help_panel=_OFFLINE,
    ),
    local_payment_basepoint: Optional[str] = typer.Option(
        None, "--local-payment-basepoint", metavar="HEX", help="Our payment_basepoint: recognises our to_remote.", rich_help_panel=_OFFLINE
    ),
    remote_payment_basepoint: Optional[str] = typer.Option(
        None, "--remote-payment-basepoint", metavar="HEX",
        help="The peer's payment_basepoint: with --local-payment-basepoint and --opener, decodes the commitment number.",
        rich_help_panel=_OFFLINE,
    ),
    opener: Optional[str] = typer.Option(
        None, "--opener", metavar="local|remote", help="Who opened the channel (for the commitment number).", rich_help_panel=_OFFLINE
    ),
    anchors: bool = typer.Option(False, "--anchors", help="The channel has option_anchors.", rich_help_panel=_OFFLINE),
) -> None:
    """Explain a transaction spending a channel (BOLT 3/5): commitment or not, whose, which number, revoked (with its
    secret), each output and who can claim it when; and the signed justice tx for a revoked commitment of the peer."""
    env: Env = ctx.obj
    from lncli.node.penalty import OfflineKeys, explain_penalty

    if legacy_tx is not None:
        if channel is not None:
            raise UsageError("give the channel either as the first of two arguments or as --channel, not both")
        channel, tx = tx, legacy_tx
    text = arg(env, tx, "TX")
    channel = arg(env, channel, "CHANNEL")
    keys = None
    given = [n for n, v in (
        ("--per-commitment-secret", per_commitment_secret), ("--revocation-basepoint-secret", revocation_basepoint_secret),
        ("--remote-delayed-payment-basepoint", remote_delayed_payment_basepoint), ("--to-self-delay", to_self_delay),
        ("--remote-htlc-basepoint", remote_htlc_basepoint), ("--local-htlc-basepoint", local_htlc_basepoint),
        ("--local-payment-basepoint", local_payment_basepoint), ("--remote-payment-basepoint", remote_payment_basepoint),
        ("--opener", opener), ("--htlc", htlc or None), ("--anchors", anchors or None),
    ) if v is not None]
    if offline:
        if channel is not None:
            raise UsageError("--offline reads no datadir: give no channel")
        missing = [n for n, v in (
            ("--per-commitment-secret", per_commitment_secret), ("--revocation-basepoint-secret", revocation_basepoint_secret),
            ("--remote-delayed-payment-basepoint", remote_delayed_payment_basepoint), ("--to-self-delay", to_self_delay),
        ) if v is None]
        if missing:
            raise UsageError(f"--offline needs {', '.join(missing)}")
        from lncli.proto.commitment_explain import parse_htlc_spec

        keys = OfflineKeys(
            per_commitment_secret=parse_hex(per_commitment_secret, "--per-commitment-secret", 32),
            revocation_basepoint_secret=parse_hex(revocation_basepoint_secret, "--revocation-basepoint-secret", 32),
            remote_delayed_payment_basepoint=parse_hex(remote_delayed_payment_basepoint, "--remote-delayed-payment-basepoint", 33),
            to_self_delay=to_self_delay,
            remote_htlc_basepoint=_hex(remote_htlc_basepoint, "--remote-htlc-basepoint", 33),
            local_htlc_basepoint=_hex(local_htlc_basepoint, "--local-htlc-basepoint", 33),
            local_payment_basepoint=_hex(local_payment_basepoint, "--local-payment-basepoint", 33),
            obscure_factor=_obscure_factor(local_payment_basepoint, remote_payment_basepoint, opener),
            htlcs=tuple(parse_htlc_spec(h) for h in htlc),
            anchors=anchors,
        )
    elif given:
        raise UsageError(f"{given[0]} goes with --offline")
    result = explain_penalty(
        env, text, channel, destination=destination, feerate_sat_per_vb=feerate, broadcast=broadcast, offline=keys
    )
    emit(env, result.to_json(), human=_human)


def _obscure_factor(local_payment: Optional[str], remote_payment: Optional[str], opener: Optional[str]) -> Optional[int]:
    if remote_payment is None and opener is None:
        return None
    if remote_payment is None or local_payment is None or opener not in ("local", "remote"):
        raise UsageError("the commitment number needs --local-payment-basepoint, --remote-payment-basepoint and --opener local|remote")
    from lncli.proto.keys import obscure_factor

    local = parse_hex(local_payment, "--local-payment-basepoint", 33)
    remote = parse_hex(remote_payment, "--remote-payment-basepoint", 33)
    return obscure_factor(local, remote) if opener == "local" else obscure_factor(remote, local)


def _human(data: dict):
    """The -H breakdown: the verdict, each output and its claims, the justice tx."""
    from rich.table import Table
    from rich.text import Text

    def kv(rows, title=None):
        t = Table(show_header=False, box=None, pad_edge=False, title=title, title_justify="left", title_style="bold")
        t.add_column(style="bold cyan", no_wrap=True)
        t.add_column(overflow="fold")
        for k, v in rows:
            if v is not None:
                t.add_row(k, v if isinstance(v, Text) else str(v))
        return t

    yes_no = {True: "yes", False: "no"}
    revoked = Text(yes_no[data["revoked"]], style="bold red" if data["revoked"] else "green")
    yield Text(data["summary"], style="bold")
    yield kv([
        ("txid", data["txid"]),
        ("channel", data["channel_id"] if data["spends_channel"] else "none of ours"),
        ("kind", data["kind"]),
        ("owner", {"local": "us", "remote": "the peer"}.get(data["owner"])),
        ("commitment number", data["commitment_number"]),
        ("obscured number", data["obscured_commitment_number"]),
        ("revoked", revoked if data["kind"] == "commitment" else None),
        ("per-commitment secret", data["per_commitment_secret"]),
    ])
    t = Table(title="outputs", title_justify="left", title_style="bold", show_lines=True)
    for c, just in (("vout", "right"), ("type", "left"), ("amount sat", "right"), ("who can claim it, how, when", "left")):
        t.add_column(c, justify=just, overflow="fold")
    for o in data["outputs"]:
        kind = o["type"] + (f"\nhash {o['payment_hash'][:16]}…\ncltv {o['cltv_expiry']}" if "payment_hash" in o else "")
        claims = "\n".join(f"{c['who']}: {c['how']}, {c['when']}" for c in o["claim"]) or "-"
        t.add_row(str(o["vout"]), kind, f"{o['amount_sat']:,}", claims)
    yield t
    j = data["justice"]
    if j is not None:
        swept = "\n".join(f"{s['kind']} {s['value_sat']:,} sat ({s['outpoint']})" for s in j["swept"])
        yield kv([
            ("txid", j["txid"]),
            ("takes", swept),
            ("to", j["destination"] or j["destination_script"]),
            ("amount sat", f"{j['amount_sat']:,}"),
            ("fee sat", f"{j['fee_sat']:,} ({j['feerate']} sat/vB, {j['vsize']} vB)"),
            ("broadcast", yes_no[data["broadcast"]]),
            ("hex", j["hex"]),
        ], title="justice transaction")
    for n in data["notes"]:
        yield Text(f"note: {n}", style="dim")

"""``lncli decode-onion``: peel a BOLT 4 onion, or read a returned failure, offline."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env, arg, parse_hex
from lncli.cli.output import emit
from lncli.errors import UsageError


def decode_onion(
    ctx: typer.Context,
    onion: Optional[str] = typer.Argument(
        None, metavar="[ONION]", help="The 1366-byte onion packet as hex ('-' reads stdin)."
    ),
    node_key: Optional[str] = typer.Option(
        None,
        "--node-key",
        metavar="HEX",
        help="This hop's node private key (32 bytes hex; '-' reads stdin) [default: this datadir's node key].",
    ),
    assoc_data: Optional[str] = typer.Option(
        None,
        "--assoc-data",
        "--payment-hash",
        metavar="HEX",
        help="Associated data: the HTLC's payment_hash (32 bytes hex).",
    ),
    failure: Optional[str] = typer.Option(
        None, "--failure", metavar="HEX", help="Decode this returned failure onion instead ('-' reads stdin)."
    ),
    shared_secret: list[str] = typer.Option(
        [], "--shared-secret", metavar="HEX", help="With --failure: the route's shared secrets, first hop first (repeat)."
    ),
    session_key: Optional[str] = typer.Option(
        None, "--session-key", metavar="HEX", help="With --failure: the sender's session key, instead of --shared-secret."
    ),
    hop: list[str] = typer.Option(
        [], "--hop", metavar="PUBKEY", help="With --session-key: each hop's node id, first hop first (repeat)."
    ),
) -> None:
    """Decode an onion packet for one hop (payload fields by name, next onion, final or not),
    or decode a failure returned to the origin (which hop failed, and why)."""
    env: Env = ctx.obj
    if failure is not None:
        emit(env, _decode_failure(env, failure, shared_secret, session_key, hop))
        return
    if onion is None:
        raise UsageError("give an ONION to peel (or --failure to decode a returned failure)")
    packet = parse_hex(arg(env, onion, "ONION"), "ONION")
    if node_key is None:
        key = _datadir_node_key(env)
    else:
        key = parse_hex(arg(env, node_key, "--node-key"), "--node-key", 32)
    if assoc_data is None:
        raise UsageError("give --assoc-data HEX (the HTLC's payment_hash), which the onion's HMAC covers")
    ad = parse_hex(assoc_data, "--assoc-data")
    from lncli.proto import onion as onion_mod

    emit(env, onion_mod.peel_onion(packet, key, ad).to_json())


def _datadir_node_key(env: Env) -> bytes:
    """The node key of this datadir (as ``lncli node`` derives it), without creating a seed."""
    seed_path = env.netdir / "seed"
    if not seed_path.exists():
        raise UsageError(
            f"give --node-key HEX (the private key of the node peeling this onion): {env.datadir} has no node yet"
        )
    from lncli.wallet.seed import derive, load_or_create_seed

    return derive(load_or_create_seed(env.netdir), "node key")


def _decode_failure(env: Env, failure: str, secrets: list[str], session_key: str | None, hops: list[str]) -> dict:
    packet = parse_hex(arg(env, failure, "--failure"), "--failure")
    from lncli.proto import onion_failure

    if session_key is not None:
        if secrets:
            raise UsageError("give either --shared-secret or --session-key with --hop, not both")
        if not hops:
            raise UsageError("--session-key needs the route: one --hop PUBKEY per hop, first hop first")
        sk = parse_hex(session_key, "--session-key", 32)
        pubkeys = [parse_hex(h, "--hop", 33) for h in hops]
        from lncli.proto.onion import compute_shared_secrets

        shared = compute_shared_secrets(sk, pubkeys)
        decoded = onion_failure.decode_failure(packet, shared).to_json()
        return {"failing_node": pubkeys[decoded["hop_index"]].hex(), **decoded}
    elif secrets:
        shared = [parse_hex(s, "--shared-secret", 32) for s in secrets]
    else:
        raise UsageError("decoding a failure needs --shared-secret (repeat per hop) or --session-key with --hop")
    return onion_failure.decode_failure(packet, shared).to_json()

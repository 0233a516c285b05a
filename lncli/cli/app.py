"""The command tree. Commands live one per module in ``lncli.cli.commands`` and stay thin:
parse, call one engine function, hand the result to ``lncli.cli.output.emit``.

Only typer and the command modules are imported here; every engine import happens inside the
command that needs it, so ``lncli channel-id`` starts about as fast as ``import typer``.
"""

from __future__ import annotations

from typing import Optional

import typer

from lncli import __version__
from lncli.cli.context import Env

app = typer.Typer(
    name="lncli",
    help="A command-line toolkit for the Lightning Network: a node, offline decoders, regtest tools.\n\n"
    "Output is JSON on stdout (use -H for tables). Errors are one line on stderr; exit status 1 for "
    "bad input or a refused operation, 2 for usage, 3 when the node or bitcoind cannot be reached.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lncli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    datadir: Optional[str] = typer.Option(
        None, "--datadir", metavar="DIR", help="State directory [env LNCLI_DATADIR; default ~/.lncli]."
    ),
    network: Optional[str] = typer.Option(
        None,
        "--network",
        metavar="NET",
        help="regtest, testnet, signet or mainnet [env LNCLI_NETWORK; default regtest].",
    ),
    conf: Optional[str] = typer.Option(
        None, "--conf", metavar="FILE", help="Config file, key=value with [network] sections [default DATADIR/lncli.conf]."
    ),
    human: bool = typer.Option(False, "-H", "--human", help="Render the output as tables instead of JSON."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    from lncli.config import resolve_datadir, resolve_network

    ctx.obj = Env(
        datadir=resolve_datadir(datadir),
        network=resolve_network(network),
        conf_option=conf,
        human=human,
        debug=debug,
    )


def _register() -> None:
    from lncli.cli.commands import chain as chain_cmds
    from lncli.cli.commands import channel_id, connect, decode_onion, invoice, node, peers
    from lncli.cli.commands import channels as channels_cmds
    from lncli.cli.commands import close as close_cmds
    from lncli.cli.commands import demo as demo_cmd
    from lncli.cli.commands import open as open_cmds
    from lncli.cli.commands import pay as pay_cmds
    from lncli.cli.commands import wallet as wallet_cmds

    app.command("channel-id")(channel_id.channel_id)
    app.command("decode-onion")(decode_onion.decode_onion)
    app.add_typer(invoice.app, name="invoice")
    app.add_typer(node.app, name="node")
    app.command("connect")(connect.connect)
    app.command("peers")(peers.peers)
    app.command("disconnect")(peers.disconnect)
    app.command("ping")(peers.ping)
    app.command("chain-status")(chain_cmds.chain_status)
    app.command("mine")(chain_cmds.mine)
    app.command("fund")(wallet_cmds.fund)
    app.add_typer(wallet_cmds.app, name="wallet")
    app.command("open")(open_cmds.open_channel)
    app.command("channels")(channels_cmds.channels)
    app.command("pay")(pay_cmds.pay)
    app.command("listpayments")(pay_cmds.listpayments)
    from lncli.cli.commands import forwards as forwards_cmd

    app.command("forwards")(forwards_cmd.forwards)
    app.command("close")(close_cmds.close)
    from lncli.cli.commands import setchannel as setchannel_cmd

    app.command("setchannel")(setchannel_cmd.setchannel)
    from lncli.cli.commands import penalty as penalty_cmd

    app.command("penalty")(penalty_cmd.penalty)
    app.command("demo")(demo_cmd.demo)
    from lncli.cli.commands import gossip_dump as gossip_dump_cmd

    app.command("gossip-dump")(gossip_dump_cmd.gossip_dump)
    from lncli.cli.commands import graph as graph_cmd

    app.command("graph")(graph_cmd.graph)
    from lncli.cli.commands import route as route_cmd

    app.command("route")(route_cmd.route)


_register()

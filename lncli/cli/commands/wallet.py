"""``lncli fund`` and ``lncli wallet``: the datadir's on-chain wallet."""

from __future__ import annotations

from typing import Optional

import typer

from lncli.cli.context import Env, arg
from lncli.cli.output import emit

app = typer.Typer(help="The node's on-chain wallet: addresses, balance, coins, payments.", no_args_is_help=True)


class _Session:
    """Backend + wallet, closed together."""

    def __init__(self, env: Env, need_backend: bool = True):
        from lncli.chain.backend import open_backend
        from lncli.wallet.wallet import open_wallet

        self.backend = open_backend(env) if need_backend else None
        try:
            self.wallet = open_wallet(env, self.backend)
        except BaseException:
            if self.backend is not None:
                self.backend.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.wallet.close()
        if self.backend is not None:
            self.backend.close()


def fund(
    ctx: typer.Context,
    amount: str = typer.Argument("1btc", metavar="[AMOUNT]", help="Amount (2000sat, 0.5btc, ...) [default 1btc]."),
) -> None:
    """Put AMOUNT into this datadir's wallet on regtest and confirm it; elsewhere print a deposit address."""
    env: Env = ctx.obj
    from lncli.amount import parse_sat
    from lncli.errors import InputError

    amount_sat = parse_sat(arg(env, amount, "AMOUNT"))
    if amount_sat < 546:
        raise InputError(f"amount {amount_sat} sat is below the dust limit (546 sat)")
    from lncli.wallet.fund import fund as do_fund

    if env.network != "regtest":
        from lncli.wallet.wallet import open_wallet

        w = open_wallet(env, None)
        try:
            emit(env, do_fund(w, None, amount_sat))
        finally:
            w.close()
        return
    with _Session(env) as s:
        emit(env, do_fund(s.wallet, s.backend, amount_sat))


@app.command("address")
def address(
    ctx: typer.Context,
    change: bool = typer.Option(False, "--change", help="A change address instead of a receive address."),
) -> None:
    """Issue a fresh P2WPKH address of this wallet."""
    env: Env = ctx.obj
    with _Session(env, need_backend=False) as s:
        emit(env, {"address": s.wallet.new_address(change=change)})


@app.command("addresses")
def addresses(ctx: typer.Context) -> None:
    """List the addresses issued so far, with their BIP32 paths."""
    env: Env = ctx.obj
    with _Session(env, need_backend=False) as s:
        emit(env, s.wallet.addresses())


@app.command("balance")
def balance(ctx: typer.Context) -> None:
    """Scan the chain and show confirmed, unconfirmed, immature and reserved amounts."""
    env: Env = ctx.obj
    with _Session(env) as s:
        height = s.wallet.sync()
        emit(env, {**s.wallet.balance().to_json(), "height": height})


@app.command("utxos")
def utxos(ctx: typer.Context) -> None:
    """Scan the chain and list the wallet's unspent outputs."""
    env: Env = ctx.obj
    with _Session(env) as s:
        s.wallet.sync()
        from lncli.bitcoin.address import script_to_address

        rows = []
        for u in s.wallet.utxos():
            row = u.to_json()
            row["address"] = script_to_address(u.script_pubkey, env.network)
            rows.append(row)
        emit(env, rows)


@app.command("send")
def send(
    ctx: typer.Context,
    to: str = typer.Argument(..., metavar="ADDRESS", help="Destination address ('-' reads stdin)."),
    amount: str = typer.Argument(..., metavar="AMOUNT", help="Amount (2000sat, 0.01btc, ...)."),
    feerate: Optional[str] = typer.Option(None, "--feerate", metavar="SAT_PER_VB", help="Fee rate in sat/vB [default: the backend's estimate]."),
) -> None:
    """Pay AMOUNT to ADDRESS from this wallet and broadcast."""
    env: Env = ctx.obj
    from decimal import Decimal, InvalidOperation

    from lncli.amount import parse_sat
    from lncli.bitcoin.address import address_to_script
    from lncli.bitcoin.tx import sat_per_vbyte_to_per_kw
    from lncli.errors import InputError

    to = arg(env, to, "ADDRESS")
    address_to_script(to, env.network)  # bad or wrong-network address: fail before touching anything
    amount_sat = parse_sat(amount)
    per_kw = None
    if feerate is not None:
        try:
            rate = Decimal(feerate)
        except InvalidOperation:
            raise InputError(f"invalid fee rate {feerate!r}: give sat/vB, e.g. 2 or 1.5") from None
        if not rate.is_finite() or rate < 1:
            raise InputError(f"fee rate must be at least 1 sat/vB, got {feerate}")
        per_kw = sat_per_vbyte_to_per_kw(rate)
    with _Session(env) as s:
        s.wallet.sync()
        res = s.wallet.send(to, amount_sat, per_kw)
        emit(env, {
            "txid": res.tx.txid_hex(),
            "amount_sat": amount_sat,
            "fee_sat": res.fee_sat,
            "vsize": res.tx.vsize(),
            "change_sat": res.change.value_sat if res.change else 0,
            "hex": res.tx.to_hex(),
        })

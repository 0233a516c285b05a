"""Pick the chain backend for a command: ``open_backend(env)``.

- bitcoind when the config names it: ``bitcoind=1`` or any of ``rpcconnect``, ``rpcport``,
  ``rpcuser``, ``rpcpassword``, ``rpccookiefile``, ``bitcoindatadir`` (``bitcoind=0`` forces the
  embedded chain even then);
- otherwise, on regtest, the embedded chain in ``chaindir=`` (config), else ``LNCLI_CHAINDIR``,
  else the directory every datadir shares by default (so local nodes see one chain);
- off regtest with no bitcoind configured: an error saying what to set.
"""

from __future__ import annotations

from pathlib import Path

from lncli.errors import InputError

BITCOIND_KEYS = ("rpcconnect", "rpcport", "rpcuser", "rpcpassword", "rpccookiefile", "bitcoindatadir")


def uses_bitcoind(config) -> bool:
    flag = config.get("bitcoind")
    if flag is not None:
        return config.get_bool("bitcoind")
    return any(config.get(k) is not None for k in BITCOIND_KEYS)


def embedded_chaindir(config, network: str = "regtest") -> Path:
    configured = config.get("chaindir")
    if configured:
        return Path(configured).expanduser()
    from lncli.chain.embedded import default_chaindir

    return Path(default_chaindir())


def backend_kind(env) -> str:
    """"bitcoind" or "embedded", without connecting to anything."""
    if uses_bitcoind(env.config):
        return "bitcoind"
    if env.network != "regtest":
        raise InputError(
            f"no bitcoind configured for {env.network}: the embedded chain is regtest only. Set rpcconnect, "
            f"rpcport and rpcuser/rpcpassword (or rpccookiefile) in {env.datadir / 'lncli.conf'} "
            f"under [{env.network}], or use --network regtest"
        )
    return "embedded"


def open_backend(env):
    """The ChainBackend the datadir's config asks for. Raises InputError (exit 1) off regtest when
    no bitcoind is configured; connecting errors surface on the first call (exit 3)."""
    kind = backend_kind(env)
    if kind == "bitcoind":
        from lncli.chain.bitcoind import BitcoindBackend

        return BitcoindBackend.from_config(env.network, env.config)
    from lncli.chain.embedded import EmbeddedChain

    return EmbeddedChain(embedded_chaindir(env.config, env.network), network="regtest")


__all__ = ["open_backend", "backend_kind", "uses_bitcoind", "embedded_chaindir", "BITCOIND_KEYS"]

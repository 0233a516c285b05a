"""lncli: a command-line toolkit for the Lightning Network.

Layers, from the bottom up (each imports only the ones above it in this list):

- ``lncli.proto``    pure protocol core: BOLT codecs and crypto, no I/O, no clock, no randomness
- ``lncli.bitcoin``  bitcoin primitives: transactions, scripts, sighash, addresses
- ``lncli.chain``    the chain interface and its backends (bitcoind, embedded regtest)
- ``lncli.store``    SQLite storage in the datadir
- ``lncli.node``     the asyncio node engine: peers, channels, payments, chain watcher
- ``lncli.rpc``      the local control API (JSON-RPC 2.0 over a unix socket)
- ``lncli.cli``      thin typer commands and the single output / error path
"""

__version__ = "0.1.0"

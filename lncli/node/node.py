"""The node: wires the key, the database, the peer manager and the control API together.

:class:`Node` holds the components and nothing else; each does its own job (``PeerManager`` the
connections, ``RpcServer`` the socket, :mod:`lncli.node.api` the methods, the chain view,
invoices, channels, forwarding, gossip, payments). :meth:`Node.__init__` builds each with what it
uses, in order, subscribes them to each other's events (:mod:`lncli.node.events`), and registers
their message handlers and RPC methods.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lncli import __version__
from lncli.node.events import (
    ChannelResolved,
    EventBus,
    HtlcResolvedOnChain,
    HtlcResults,
    PeerClosed,
    PeerReady,
    PreimageOnChain,
)
from lncli.node.features import INIT_FEATURES, chain_hash
from lncli.node.peers import PEER_MIGRATIONS, PeerManager, PeerStore, format_address
from lncli.proto.transport import public_key
from lncli.rpc.client import socket_path
from lncli.rpc.server import Registry, RpcServer
from lncli.store.db import open_db
from lncli.wallet.seed import derive, load_or_create_seed

log = logging.getLogger("lncli.node")

DB_NAME = "node.sqlite3"
DEFAULT_PORT = 9735


@dataclass
class NodeSettings:
    datadir: Path
    network: str
    listen: list[tuple[str, int]] = field(default_factory=lambda: [("127.0.0.1", DEFAULT_PORT)])
    alias: str | None = None
    rgb: str | None = None
    dev_seed: bytes | None = None  # regtest only: replaces the datadir seed
    handshake_timeout: float = 10.0
    ping_interval: float = 30.0
    ping_timeout: float = 30.0
    reconnect_initial: float = 1.0
    config: Any = None  # lncli.config.Config: picks the chain backend; None: no chain view
    poll_interval: float | None = None  # chain poll, seconds (None: the backend's default)

    @property
    def netdir(self) -> Path:
        return self.datadir / self.network


class Node:
    def __init__(self, settings: NodeSettings):
        self.settings = settings
        seed = settings.dev_seed if settings.dev_seed is not None else load_or_create_seed(settings.netdir)
        self.seed = seed
        self.node_key = derive(seed, "node key")
        self.node_id = public_key(self.node_key)
        self.alias = settings.alias if settings.alias is not None else f"lncli-{self.node_id.hex()[2:10]}"
        self.color = settings.rgb if settings.rgb is not None else "#" + self.node_id.hex()[2:8]
        self.db = open_db(settings.netdir / DB_NAME, {"peers": PEER_MIGRATIONS})
        self.events = EventBus()
        self.peers = PeerManager(
            self.node_key,
            chain_hash=chain_hash(settings.network),
            features=INIT_FEATURES,
            store=PeerStore(self.db),
            handlers={},
            handshake_timeout=settings.handshake_timeout,
            ping_interval=settings.ping_interval,
            ping_timeout=settings.ping_timeout,
            reconnect_initial=settings.reconnect_initial,
            events=self.events,
        )
        self.registry = Registry()
        self.rpc = RpcServer(socket_path(settings.netdir), self.registry)
        # The components, each built with what it uses (a later one uses earlier ones).
        from lncli.node import chainsync, channel_policy, channel_rpc, forwarding, gossip, invoices, onchain_htlcs, payments
        from lncli.node.channels import CHANNEL_MESSAGES, ChannelManager

        self.chain = chainsync.open_chain(settings, seed)  # None without a config: no chain view
        self.invoices = invoices.InvoiceStore(self.db, self.node_key, settings.network)
        self.channels = ChannelManager(self.db, settings, chain=self.chain, peers=self.peers, events=self.events)
        self.forwarding = forwarding.Forwarding(self.db, self.channels, height=lambda: self.block_height, config=settings.config)
        self.onchain_htlcs = onchain_htlcs.OnchainHtlcs(self.db, self.channels)  # after forwarding: its table
        self.gossip = gossip.Gossip(self, self.channels, self.forwarding)
        self.forwarding.channel_update = self.gossip.failure_update  # BOLT 4 failures carry our current update
        self.channels.peer_update = self.gossip.peer_update  # route hints with the peer's policy
        from lncli.node import routes

        # getroute, and the liquidity scorer that payments learn into (kept in scorer.json)
        self.routes = routes.Routes(self.node_id, self.channels, self.gossip, scorer_path=settings.netdir / "scorer.json")
        self.payments = payments.Payments(self, self.channels, self.forwarding, self.invoices, gossip=self.gossip,
                                          routes=self.routes)
        # the one cycle: payments offer HTLCs through the channels, which settle through payments
        self.channels.use_payments(self.payments)
        # What each tells the others (subscribers run in this order, synchronously).
        ev = self.events
        ev.subscribe(PeerReady, lambda event: self.channels.peer_ready(event.peer))  # channel_reestablish first
        ev.subscribe(PeerReady, lambda event: self.gossip.peer_ready(event.peer))
        ev.subscribe(PeerClosed, lambda event: self.channels.peer_closed(event.peer))
        ev.subscribe(HtlcResults, self.payments.on_htlc_results)  # payments, then forwards (through payments)
        ev.subscribe(PreimageOnChain, lambda event: self.payments.preimage_onchain(event.payment_hash, event.payment_preimage))
        ev.subscribe(ChannelResolved, lambda event: self.payments.channel_resolved(event.channel_id))
        # forwards whose outgoing HTLC went on chain settle their incoming HTLC
        ev.subscribe(HtlcResolvedOnChain, lambda event: self.onchain_htlcs.htlc_resolved(
            event.channel_id, event.htlc_id, event.payment_preimage))
        ev.subscribe(ChannelResolved, lambda event: self.onchain_htlcs.channel_resolved(event.channel_id))
        # Peer messages.
        handlers = self.peers.handlers
        for name in CHANNEL_MESSAGES:
            handlers[name] = self.channels.handle_message
        handlers["error"] = self.channels.on_error
        handlers.update(gossip.handlers(self.gossip))
        # RPC methods.
        chainsync.register(self.registry, self.chain)
        invoices.register(self.registry, self.invoices, self.channels.route_hints)
        payments.register(self.registry, self.payments)
        forwarding.register(self.registry, self.forwarding)
        channel_rpc.register(self.registry, self.channels)
        gossip.register(self.registry, self.gossip)
        routes.register(self.registry, self.routes)
        channel_policy.register(self.registry, self.forwarding.policies, self.channels, self.gossip)
        self._stop = asyncio.Event()
        self._register_default_handlers()

    def _register_default_handlers(self) -> None:
        from lncli.node import api

        api.register(self.registry, self)
        # Gossip queries (BOLT 7 gossip_queries) are not answered yet, and we do not set their feature
        # bit: a peer may still send them; they are dropped, not an error.
        for name in (
            "channel_announcement",
            "node_announcement",
            "channel_update",
            "announcement_signatures",
            "query_short_channel_ids",
            "reply_short_channel_ids_end",
            "query_channel_range",
            "reply_channel_range",
            "gossip_timestamp_filter",
        ):
            self.peers.handlers.setdefault(name, _ignore)

    async def start(self) -> None:
        for host, port in self.settings.listen:
            await self.peers.listen(host, port)
        if self.chain is not None:
            await self.chain.start()
        await self.channels.start()
        await self.gossip.start()
        await self.rpc.start()
        self.peers.start_reconnecting()
        log.info("node %s started on %s", self.node_id.hex(), self.settings.network)

    def request_stop(self) -> None:
        self._stop.set()

    async def wait_stopped(self) -> None:
        await self._stop.wait()

    async def close(self) -> None:
        log.info("shutting down")
        await self.peers.close()
        await self.gossip.close()
        await self.channels.close()
        self.routes.save_scorer()
        if self.chain is not None:
            await self.chain.close()
        await self.rpc.close()
        self.db.close()

    @property
    def block_height(self) -> int | None:
        """The height of the best block seen (None without a chain view)."""
        return self.chain.height if self.chain is not None else None

    def uris(self) -> list[str]:
        return [f"{self.node_id.hex()}@{format_address(h, p)}" for h, p in self.peers.listen_addresses]

    def info(self) -> dict:
        return {
            "node_id": self.node_id.hex(),
            "alias": self.alias,
            "color": self.color,
            "uris": self.uris(),
            "network": self.settings.network,
            "block_height": self.block_height,
            "num_peers": len(self.peers.peers),
            "num_channels": self.channels.count(),
            "features": INIT_FEATURES.names(),
            "version": __version__,
        }


def _ignore(peer, msg) -> None:
    log.debug("peer %s: %s ignored (gossip queries are not answered yet)", peer.short_id, msg.name)


async def run_node(settings: NodeSettings, on_ready: Callable[[Node], None] | None = None) -> None:
    """Start a node, run it until a stop request (RPC ``stop`` or a signal), then shut it down."""
    import gc
    import signal

    node = Node(settings)
    loop = asyncio.get_running_loop()
    log.info("event loop: %s.%s", type(loop).__module__, type(loop).__qualname__)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.request_stop)
    try:
        await node.start()
        # What start-up built (modules, schemas, caches, loaded channels) lives as long as the
        # process: keep it out of the cyclic collector's full passes, which otherwise walk all of
        # it (~30 ms, stalling whatever message is in flight) every few hundred payments.
        gc.collect()
        gc.freeze()
        if on_ready is not None:
            on_ready(node)
        await node.wait_stopped()
    finally:
        await node.close()

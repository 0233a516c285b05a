"""The chain watcher: one ``ChannelMonitor`` per channel (pure), its store, and the asyncio glue.

Import the submodules directly (``lncli.monitor.monitor``, ``.store``, ``.watcher``); this
package ``__init__`` imports nothing so that the CLI starts fast.
"""

"""Gossip at rest: reading Core Lightning's ``gossip_store`` files (:mod:`lncli.gossip.store`).

The BOLT 7 messages, their checks and the routing graph are in :mod:`lncli.proto.gossip`.
"""

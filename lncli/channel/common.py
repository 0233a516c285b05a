"""What the BOLT 2 phase modules of a channel share: the errors a handler raises, building a
wire message, and the compact JSON encoder of the channel's records."""

from __future__ import annotations

import json

from lncli.channel.params import ChannelError
from lncli.proto.wire import Message, default_schema

__all__ = ["ChannelError", "ProtocolError", "WeAreBehind", "ZERO32", "msg", "ENC", "ids"]

ZERO32 = bytes(32)


class ProtocolError(ChannelError):
    """The peer broke BOLT 2: send ``error`` with this text and fail the channel."""


class WeAreBehind(ChannelError):
    """channel_reestablish proves our state is old: never broadcast our commitment."""


def msg(name: str, **fields) -> Message:
    """The wire message ``name`` with these fields."""
    return Message(default_schema().messages[name], fields)


def _make_encoder():
    """``json.dumps(x, separators=(",", ":"))`` without building a new encoder per call: the
    same C encoder json.dumps builds each time, made once (with no circular-reference check:
    records have no cycles, and the text is the same)."""
    from json import encoder as je

    if je.c_make_encoder is None:  # pragma: no cover - CPython always has _json
        return json.JSONEncoder(separators=(",", ":")).encode
    c_enc = je.c_make_encoder(
        None, json.JSONEncoder().default, je.encode_basestring_ascii, None, ":", ",", False, False, True
    )

    def enc(o) -> str:
        return "".join(c_enc(o, 0))

    return enc


#: ``json.dumps(x, separators=(",", ":"))``, the records' text
ENC = _make_encoder()


def ids(objs: tuple) -> list:
    """Identities, to compare with ``==`` (element-wise identity, not equality: 1 == 1.0 ==
    True but their JSON differs). Whoever keeps the list keeps ``objs`` too, so ids are not reused."""
    return [*map(id, objs)]

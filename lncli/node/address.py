"""Parsing ``HOST:PORT`` (``[IPv6]:PORT``) and ``NODE_ID@HOST[:PORT]``; no heavy imports."""

from __future__ import annotations

from lncli.errors import InputError

DEFAULT_PORT = 9735


def parse_host_port(text: str, default_port: int | None = DEFAULT_PORT, allow_zero: bool = False) -> tuple[str, int]:
    text = text.strip()
    if not text:
        raise InputError("empty address")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise InputError(f"bad address {text!r}: missing ']'")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise InputError(f"bad address {text!r}: expected ':PORT' after ']'")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1:  # a bare IPv6 address
        host, port_text = text, None
    else:
        host, port_text = text, None
    if not host:
        raise InputError(f"bad address {text!r}: empty host")
    if port_text is None:
        if default_port is None:
            raise InputError(f"address {text!r} needs a port")
        return host, default_port
    if not port_text.isdigit():
        raise InputError(f"bad port in {text!r}")
    port = int(port_text)
    if not (0 if allow_zero else 1) <= port <= 65535:
        raise InputError(f"port out of range in {text!r}")
    return host, port


def parse_peer_uri(text: str, host: str | None = None, port: int | None = None) -> tuple[str, str, int]:
    """``NODE_ID@HOST[:PORT]``, or ``NODE_ID`` with ``host`` (and ``port``) given separately."""
    text = text.strip()
    if "@" in text:
        if host is not None:
            raise InputError("give the address either as NODE_ID@HOST:PORT or as NODE_ID HOST PORT, not both")
        node_id, addr = text.split("@", 1)
        h, p = parse_host_port(addr)
    else:
        if host is None:
            raise InputError("missing address: use NODE_ID@HOST[:PORT] or NODE_ID HOST [PORT]")
        node_id = text
        h, p = parse_host_port(host) if port is None else (host, port)
        if port is not None and not 1 <= port <= 65535:
            raise InputError(f"port out of range: {port}")
    if len(node_id) != 66:
        raise InputError("node id must be 66 hex characters (a 33-byte public key)")
    try:
        bytes.fromhex(node_id)
    except ValueError:
        raise InputError("node id is not valid hex") from None
    return node_id.lower(), h, p

"""Amounts as users write them: ``1500msat``, ``2000sat``, ``0.01btc`` or a bare integer of satoshis.

Everything inside lncli counts millisatoshis (``*_msat``) or satoshis (``*_sat``) as integers.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from lncli.errors import InputError

MSAT_PER_SAT = 1000
SAT_PER_BTC = 100_000_000
MSAT_PER_BTC = MSAT_PER_SAT * SAT_PER_BTC

_AMOUNT = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(msat|sat|sats|btc)?\s*$", re.IGNORECASE)


def parse_msat(text: str) -> int:
    """Parse an amount with an optional unit (default sat) into millisatoshis."""
    m = _AMOUNT.match(text)
    if not m:
        raise InputError(
            f"invalid amount {text!r}: write a number of satoshis, or a number with a unit "
            "(1500msat, 2000sat, 0.01btc)"
        )
    number, unit = m.group(1), (m.group(2) or "sat").lower()
    try:
        value = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the regex already rules this out
        raise InputError(f"invalid amount {text!r}") from None
    scale = {"msat": 1, "sat": MSAT_PER_SAT, "sats": MSAT_PER_SAT, "btc": MSAT_PER_BTC}[unit]
    msat = value * scale
    if msat != msat.to_integral_value():
        raise InputError(f"invalid amount {text!r}: finer than one millisatoshi")
    return int(msat)


def parse_sat(text: str) -> int:
    """Parse an amount that must be a whole number of satoshis."""
    msat = parse_msat(text)
    if msat % MSAT_PER_SAT:
        raise InputError(f"invalid amount {text!r}: must be a whole number of satoshis")
    return msat // MSAT_PER_SAT

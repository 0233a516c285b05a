"""The project's exception hierarchy. Every error a user can see derives from LncliError.

The CLI maps ``exit_code`` to the process exit status and prints ``str(err)`` as one line:
1 bad input or a refused operation, 2 usage, 3 a needed service (node, bitcoind) unreachable.
"""

from __future__ import annotations


class LncliError(Exception):
    """Base of all expected errors. The message says what went wrong and what to do."""

    exit_code = 1


class InputError(LncliError):
    """The user's input is malformed or refers to nothing."""


class RefusedError(LncliError):
    """A well-formed request that was refused (insufficient funds, wrong network, ...)."""


class UsageError(LncliError):
    exit_code = 2


class UnreachableError(LncliError):
    """A service we need (the node, bitcoind) cannot be reached."""

    exit_code = 3


class DecodeError(InputError):
    """Bytes or text that do not decode under the spec. The only error a decoder may raise."""

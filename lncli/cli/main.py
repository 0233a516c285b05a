"""Entry point of the ``lncli`` console script: the one error path.

Every failure ends here as one line on stderr, ``lncli: error: ...``, and an exit status:
1 bad input or a refused operation, 2 usage, 3 a needed service cannot be reached.
A traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import os
import sys

PROG = "lncli"


def _fail(code: int, message: str) -> NoReturn:  # noqa: F821
    message = " ".join(message.split())  # always one line
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    import typer

    try:  # recent typer vendors click
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover
        from click import exceptions as cx

    from lncli.cli.app import app
    from lncli.errors import LncliError

    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name=PROG, standalone_mode=False)
    except LncliError as e:
        if debug:
            import traceback

            traceback.print_exc()
        _fail(e.exit_code, str(e))
    except cx.NoArgsIsHelpError as e:
        if e.ctx is not None:
            sys.stdout.write(e.ctx.get_help() + "\n")
        raise SystemExit(0 if not args else 2) from None
    except cx.UsageError as e:
        hint = ""
        if e.ctx is not None:
            hint = f" (see: {e.ctx.command_path} --help)"
        _fail(2, e.format_message() + hint)
    except cx.ClickException as e:
        _fail(1, e.format_message())
    except typer.Exit as e:
        raise SystemExit(e.exit_code) from None
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write(f"{PROG}: interrupted\n")
        raise SystemExit(130) from None
    except BrokenPipeError:
        # the reader went away (| head): not an error of ours; silence the final flush
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(0) from None
    except Exception as e:  # noqa: BLE001 - the last line of defence
        if debug:
            raise
        _fail(1, f"internal error: {type(e).__name__}: {e} (run again with --debug for the traceback)")
    raise SystemExit(rv if isinstance(rv, int) else 0)

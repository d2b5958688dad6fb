"""The ``aio-trader`` console script: the command, or one line naming the missing extra.

The script is installed with the core package, but the command needs the ``cli`` extra
(click, rich). Without it, ``aio-trader`` prints how to install it and exits with 1,
instead of a ``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

#: The distributions of the ``cli`` extra (and the sandbox it starts), by module name.
_CLI_MODULES = frozenset({"click", "rich"})


def main() -> None:
    """Run the ``aio-trader`` command; without click or rich, say which extra to install."""
    try:
        from aio_trader._cli.group import main as command
    except ModuleNotFoundError as error:
        missing = (error.name or "").partition(".")[0]
        if missing not in _CLI_MODULES:
            raise
        print(
            f"aio-trader: the command line tool needs the `cli` extra ({missing} is not "
            "installed): pip install 'aio-trader[cli]'",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    command(prog_name="aio-trader")

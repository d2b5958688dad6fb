"""The ``aio-trader`` click group, with every command registered on it.

Each command lives in its own module of ``aio_trader._cli``; this one only gathers them.
The console script reaches it through ``aio_trader._cli.entry`` (which names the ``cli``
extra when click or rich is missing), and ``python -m aio_trader._cli`` runs it too.
"""

from __future__ import annotations

import click

from aio_trader import __version__

from .account import holdings, login, orders, positions
from .demo import demo
from .gateway import gateway, record
from .market import historical, instruments, ltp, quote, stream
from .orders import order
from .sandbox import sandbox

__all__ = ["main"]


@click.group()
@click.version_option(__version__, prog_name="aio-trader")
def main() -> None:
    """aio_trader: async clients for Indian stockbroker APIs, and a local broker sandbox."""


for _command in (
    sandbox,
    demo,
    login,
    stream,
    quote,
    ltp,
    instruments,
    historical,
    orders,
    positions,
    holdings,
    order,
    gateway,
    record,
):
    main.add_command(_command)

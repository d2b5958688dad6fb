"""The ``aio-trader`` subcommands beyond ``sandbox`` and ``demo``, registered by ``cli.py``."""

from __future__ import annotations

import click

from .account import holdings, login, orders, positions
from .gateway import gateway, record
from .market import historical, instruments, ltp, quote, stream
from .orders import order

__all__ = ["COMMANDS"]

COMMANDS: list[click.Command] = [
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
]

"""The ``aio-trader`` subcommands beyond ``sandbox`` and ``demo``."""

from __future__ import annotations

import click

__all__ = ["COMMANDS"]

COMMANDS: list[click.Command] = []

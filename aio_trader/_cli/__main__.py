"""``python -m aio_trader._cli``: the ``aio-trader`` command, as the console script runs it."""

from aio_trader._cli.entry import main

main()

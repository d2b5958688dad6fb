"""The ``aio-trader`` command's pieces (needs the ``cli`` extra: click, rich).

``render``: tick rows, the live tick board, record tables and JSON lines (shared by the demo
and the commands); ``connection``: the options every command takes, credentials and the
embedded sandbox; ``commands``: the subcommands registered on ``aio_trader.cli.main``.
"""

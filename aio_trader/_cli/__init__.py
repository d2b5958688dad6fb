"""The ``aio-trader`` command (needs the ``cli`` extra: click, rich); the library never
imports it.

``group``: the click group, every command registered on it; ``entry``: the console script
(imports nothing of the extra until it runs); one module per command family (``sandbox``,
``demo``, ``account``, ``market``, ``orders``, ``gateway``); ``render``: tick rows, the live
tick board, record tables and JSON lines (shared by the demo and the commands);
``connection``: the options every command takes, credentials and the embedded sandbox.
This ``__init__`` imports nothing, so ``entry`` can run without the extra.
"""

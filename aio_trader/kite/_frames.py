"""Records to DataFrames, as ``aio_trader.kite`` exports them: the broker-neutral
converter of :mod:`aio_trader._frames` (the same functions ``aio_trader.dhan`` exports)."""

from __future__ import annotations

from aio_trader._frames import to_pandas, to_polars

__all__ = ["to_pandas", "to_polars"]

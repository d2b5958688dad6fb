"""Kite's instruments dump as broker-neutral :class:`~aio_trader.toolkit.Instrument` records
(the index behind :meth:`Kite.instrument_index`), and symbols checked for quote calls.

Kite's names are the neutral ones already; indices (segment ``INDICES``) become
``instrument_type`` ``"INDEX"``; a derivative's ``underlying`` is Kite's ``name``
(``NIFTY``, ``INFY``); the key is the instrument token.
"""

from __future__ import annotations

from collections.abc import Iterable

from aio_trader._instruments import Instrument
from aio_trader.kite._models import Instrument as KiteInstrument

__all__ = ["neutral_instruments"]

_DERIVATIVES = frozenset({"FUT", "CE", "PE"})


def neutral_instruments(records: Iterable[KiteInstrument]) -> list[Instrument]:
    """Neutral records of Kite's instrument rows, in order."""
    out = []
    for row in records:
        kind = "INDEX" if row.segment == "INDICES" else row.instrument_type
        derivative = kind in _DERIVATIVES
        out.append(
            Instrument(
                exchange=row.exchange,
                tradingsymbol=row.tradingsymbol,
                key=row.instrument_token,
                name=row.name,
                instrument_type=kind,
                underlying=row.name if derivative and row.name else None,
                expiry=row.expiry if derivative else None,
                strike=row.strike if kind in ("CE", "PE") else None,
                lot_size=row.lot_size,
                tick_size=row.tick_size,
            )
        )
    return out

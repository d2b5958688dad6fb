"""Dhan's scrip master as broker-neutral :class:`~aio_trader.toolkit.Instrument` records
(the index behind :meth:`Dhan.instrument_index`).

Exchanges take Kite's names: Dhan's exchange and segment letter (``NSE`` ``E``...) give the
neutral exchange and Dhan's exchange segment (the key's first half):

=======  =======  ========  ================
Dhan     segment  neutral   key's segment
=======  =======  ========  ================
NSE      E        NSE       NSE_EQ
NSE      D        NFO       NSE_FNO
NSE      C        CDS       NSE_CURRENCY
NSE      I        NSE       IDX_I (INDEX)
BSE      E        BSE       BSE_EQ
BSE      D        BFO       BSE_FNO
BSE      C        BCD       BSE_CURRENCY
BSE      I        BSE       IDX_I (INDEX)
MCX      M        MCX       MCX_COMM
=======  =======  ========  ================

Rows of any other pair are left out (logged at debug level, counted). A derivative's
``underlying`` is the part of Dhan's trading symbol before the first ``-``
(``NIFTY-Dec2026-FUT``: ``NIFTY``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Final

from aio_trader._instruments import Instrument
from aio_trader.dhan._models import Instrument as DhanInstrument

__all__ = ["SEGMENTS", "neutral_instruments"]

log = logging.getLogger(__name__)

#: (Dhan's exchange, segment letter) -> (neutral exchange, Dhan's exchange segment).
SEGMENTS: Final[Mapping[tuple[str, str], tuple[str, str]]] = {
    ("NSE", "E"): ("NSE", "NSE_EQ"),
    ("NSE", "D"): ("NFO", "NSE_FNO"),
    ("NSE", "C"): ("CDS", "NSE_CURRENCY"),
    ("NSE", "I"): ("NSE", "IDX_I"),
    ("BSE", "E"): ("BSE", "BSE_EQ"),
    ("BSE", "D"): ("BFO", "BSE_FNO"),
    ("BSE", "C"): ("BCD", "BSE_CURRENCY"),
    ("BSE", "I"): ("BSE", "IDX_I"),
    ("MCX", "M"): ("MCX", "MCX_COMM"),
}


def _kind(row: DhanInstrument, segment: str) -> str:
    if segment == "IDX_I":
        return "INDEX"
    option = (row.option_type or "").upper()
    if option in ("CE", "PE"):
        return option
    name = (row.instrument or "").upper()
    if name.startswith("FUT"):
        return "FUT"
    if name in ("EQUITY", ""):
        return "EQ"
    return name


def neutral_instruments(records: Iterable[DhanInstrument]) -> list[Instrument]:
    """Neutral records of Dhan's scrip-master rows (either layout), in order."""
    out = []
    skipped = 0
    for row in records:
        where = SEGMENTS.get(((row.exchange or "").upper(), (row.segment or "").upper()))
        if where is None or not row.security_id or not row.trading_symbol:
            skipped += 1
            continue
        exchange, segment = where
        kind = _kind(row, segment)
        derivative = kind in ("FUT", "CE", "PE")
        name = row.symbol_name or row.custom_symbol or ""
        underlying = None
        if derivative:
            underlying = row.trading_symbol.split("-", 1)[0] if "-" in row.trading_symbol else name
        out.append(
            Instrument(
                exchange=exchange,
                tradingsymbol=row.trading_symbol,
                key=(segment, row.security_id),
                name=name,
                instrument_type=kind,
                underlying=underlying or None,
                expiry=row.expiry_date.date() if derivative and row.expiry_date else None,
                strike=row.strike_price if kind in ("CE", "PE") else None,
                lot_size=int(row.lot_size or 1),
                tick_size=0.0 if segment == "IDX_I" else float(row.tick_size or 0.0),
            )
        )
    if skipped:
        log.debug("left out %d scrip-master row(s) of an unknown exchange or segment", skipped)
    return out

"""Dhan's instrument list for the sandbox: Dhan's real security ids for the names in Dhan's
examples (NSE_EQ 1333 HDFCBANK, 11536 TCS, 2885 RELIANCE, 1594 INFY; IDX_I 13 NIFTY 50,
25 BANKNIFTY...) and NSE_FNO futures and options, shipped as ``instruments.csv`` in the
columns of Dhan's compact scrip master (plus ``EXCHANGE_SEGMENT`` and ``BASE_PRICE``, where
each random walk starts; neither is served). The scrip master a sandbox serves lists its
market's instruments: the shipped rows, and rows made from the others
(``SandboxConfig.instruments``, converted by ``from_neutral``).

The core's market keys instruments by an integer token; here it is
``token_of(segment, security_id)`` (the segment's feed byte above the 32-bit security id),
so ``(exchange_segment, security_id)`` pairs and tokens convert both ways without a table.
The engine's own vocabulary (Kite's exchanges and segments: ``NSE``, ``NFO``, ``INDICES``...)
is kept on each ``SandboxInstrument``; ``dhan_segment`` gives Dhan's name back.
"""

from __future__ import annotations

import csv
import datetime
import functools
import io
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Final

from aio_trader._instruments import Instrument
from aio_trader.dhan.constants import ExchangeSegment
from aio_trader.sandbox._api import ascii_int
from aio_trader.sandbox.market import Market, SandboxInstrument

__all__ = [
    "COMPACT_COLUMNS",
    "by_security",
    "compact_csv",
    "detailed_csv",
    "dhan_segment",
    "from_neutral",
    "load_instruments",
    "security_id",
    "token_of",
]

#: The compact scrip master's columns, in Dhan's order (the shipped file's first columns).
COMPACT_COLUMNS: Final = (
    "SEM_EXM_EXCH_ID",
    "SEM_SEGMENT",
    "SEM_SMST_SECURITY_ID",
    "SEM_INSTRUMENT_NAME",
    "SEM_TRADING_SYMBOL",
    "SEM_LOT_UNITS",
    "SEM_CUSTOM_SYMBOL",
    "SEM_EXPIRY_DATE",
    "SEM_STRIKE_PRICE",
    "SEM_OPTION_TYPE",
    "SEM_TICK_SIZE",
    "SEM_SERIES",
    "SM_SYMBOL_NAME",
)

#: Dhan's segment -> (the engine's exchange, its segment prefix).
_ENGINE: Final[Mapping[str, tuple[str, str]]] = {
    "IDX_I": ("", "INDICES"),
    "NSE_EQ": ("NSE", "NSE"),
    "BSE_EQ": ("BSE", "BSE"),
    "NSE_FNO": ("NFO", "NFO"),
    "BSE_FNO": ("BFO", "BFO"),
    "NSE_CURRENCY": ("CDS", "CDS"),
    "BSE_CURRENCY": ("BCD", "BCD"),
    "MCX_COMM": ("MCX", "MCX"),
}


def token_of(segment: str, security: int) -> int:
    """The market's token of Dhan's ``(segment, security_id)``; ValueError for a bad
    segment name."""
    return (ExchangeSegment(segment).code << 32) | (security & 0xFFFFFFFF)


def dhan_segment(instrument: SandboxInstrument) -> str:
    """Dhan's exchange segment of a sandbox instrument (``"NSE_EQ"``...)."""
    return ExchangeSegment.from_code(instrument.instrument_token >> 32).value


def security_id(instrument: SandboxInstrument) -> str:
    """Dhan's security id (a string, as REST bodies carry it)."""
    return str(instrument.exchange_token)


def by_security(market: Market, segment: object, security: object) -> SandboxInstrument | None:
    """The instrument ``(segment, security_id)`` names (ids as str or int), or None."""
    if isinstance(security, bool):
        return None
    sid = security if isinstance(security, int) else ascii_int(security)
    if sid is None or not 0 <= sid < 2**32:
        return None
    try:
        token = token_of(str(segment), sid)
    except ValueError:
        return None
    return market.instruments.get(token)


def from_neutral(instrument: Instrument, base_price: float) -> SandboxInstrument:
    """A neutral record of Dhan's (its key ``(exchange_segment, security_id)``) as the
    shipped list's row would be: the token ``token_of`` the key, the engine's exchange and
    segment names (indices in ``INDICES``, instrument type ``EQ``; derivatives in
    ``NFO-FUT``, ``NFO-OPT``...). ``ValueError`` for a segment the sandbox does not trade."""
    segment, security = instrument.key  # type: ignore[misc]  # SandboxConfig checked it
    if segment not in _ENGINE:
        raise ValueError(f"the Dhan sandbox has no segment {segment!r} ({instrument.symbol})")
    sid = int(security)
    kind = instrument.instrument_type
    engine_segment = _ENGINE[segment][1]
    if segment == "IDX_I" or kind not in ("FUT", "CE", "PE"):
        kind = "EQ"
    else:
        engine_segment = f"{engine_segment}-{'FUT' if kind == 'FUT' else 'OPT'}"
    return SandboxInstrument(
        instrument_token=token_of(segment, sid),
        exchange_token=sid,
        tradingsymbol=instrument.tradingsymbol,
        name=instrument.name,
        base_price=base_price,
        expiry=instrument.expiry,
        strike=instrument.strike or 0.0,
        tick_size=0.0 if segment == "IDX_I" else instrument.tick_size,
        lot_size=instrument.lot_size,
        instrument_type=kind,
        segment=engine_segment,
        exchange=instrument.exchange,
    )


def _instrument(row: Mapping[str, str]) -> SandboxInstrument:
    segment = row["EXCHANGE_SEGMENT"]
    exchange, engine_segment = _ENGINE[segment]
    option = row["SEM_OPTION_TYPE"]
    kind = row["SEM_INSTRUMENT_NAME"]
    if option in ("CE", "PE"):
        instrument_type = option
    elif kind.startswith("FUT"):
        instrument_type = "FUT"
    else:
        instrument_type = "EQ"
    if segment == "IDX_I":
        exchange = row["SEM_EXM_EXCH_ID"]
    elif instrument_type != "EQ":
        engine_segment = f"{engine_segment}-{'FUT' if instrument_type == 'FUT' else 'OPT'}"
    expiry = row["SEM_EXPIRY_DATE"]
    sid = int(row["SEM_SMST_SECURITY_ID"])
    return SandboxInstrument(
        instrument_token=token_of(segment, sid),
        exchange_token=sid,
        tradingsymbol=row["SEM_TRADING_SYMBOL"],
        name=row["SM_SYMBOL_NAME"],
        base_price=float(row["BASE_PRICE"]),
        expiry=datetime.date.fromisoformat(expiry[:10]) if expiry else None,
        strike=float(row["SEM_STRIKE_PRICE"] or 0),
        tick_size=0.0 if segment == "IDX_I" else float(row["SEM_TICK_SIZE"]),
        lot_size=int(row["SEM_LOT_UNITS"]),
        instrument_type=instrument_type,
        segment=engine_segment,
        exchange=exchange,
    )


@functools.cache
def _rows() -> tuple[dict[str, str], ...]:
    text = resources.files("aio_trader.sandbox._dhan").joinpath("instruments.csv").read_text()
    return tuple(csv.DictReader(io.StringIO(text)))


#: The engine's segment -> Dhan's exchange id and segment letter of a scrip-master row.
_LETTERS: Final[Mapping[str, tuple[str, str]]] = {
    "NSE_EQ": ("NSE", "E"),
    "BSE_EQ": ("BSE", "E"),
    "NSE_FNO": ("NSE", "D"),
    "BSE_FNO": ("BSE", "D"),
    "NSE_CURRENCY": ("NSE", "C"),
    "BSE_CURRENCY": ("BSE", "C"),
    "MCX_COMM": ("MCX", "M"),
}

#: Dhan's instrument names of a row made from a market instrument: (future, option).
_DERIVATIVE_NAMES: Final[Mapping[str, tuple[str, str]]] = {
    "NSE_FNO": ("FUTSTK", "OPTSTK"),
    "BSE_FNO": ("FUTSTK", "OPTSTK"),
    "NSE_CURRENCY": ("FUTCUR", "OPTCUR"),
    "BSE_CURRENCY": ("FUTCUR", "OPTCUR"),
    "MCX_COMM": ("FUTCOM", "OPTFUT"),
}


def _row_of(instrument: SandboxInstrument) -> dict[str, str]:
    """A scrip-master row (the shipped file's columns) for a market instrument that is not
    in the shipped list (``SandboxConfig.instruments``)."""
    segment = dhan_segment(instrument)
    kind = instrument.instrument_type
    if segment == "IDX_I":
        exchange, letter, name, series = instrument.exchange, "I", "INDEX", "NA"
    else:
        exchange, letter = _LETTERS[segment]
        future, option = _DERIVATIVE_NAMES.get(segment, ("FUTSTK", "OPTSTK"))
        name = {"FUT": future, "CE": option, "PE": option}.get(kind, "EQUITY")
        series = "EQ" if name == "EQUITY" else "NA"
    expiry = instrument.expiry
    return {
        "SEM_EXM_EXCH_ID": exchange,
        "SEM_SEGMENT": letter,
        "SEM_SMST_SECURITY_ID": security_id(instrument),
        "SEM_INSTRUMENT_NAME": name,
        "SEM_TRADING_SYMBOL": instrument.tradingsymbol,
        "SEM_LOT_UNITS": str(instrument.lot_size),
        "SEM_CUSTOM_SYMBOL": instrument.name,
        "SEM_EXPIRY_DATE": f"{expiry.isoformat()} 14:30:00" if expiry else "",
        "SEM_STRIKE_PRICE": repr(float(instrument.strike)),
        "SEM_OPTION_TYPE": kind if kind in ("CE", "PE") else "XX",
        "SEM_TICK_SIZE": repr(float(instrument.tick_size)),
        "SEM_SERIES": series,
        "SM_SYMBOL_NAME": instrument.name,
        "EXCHANGE_SEGMENT": segment,
        "BASE_PRICE": repr(float(instrument.base_price)),
    }


def _market_rows(market: Market | None) -> tuple[dict[str, str], ...]:
    """The rows of ``market``'s instruments (the shipped rows where it has them); None:
    the shipped list."""
    if market is None:
        return _rows()
    shipped = {
        token_of(row["EXCHANGE_SEGMENT"], int(row["SEM_SMST_SECURITY_ID"])): row for row in _rows()
    }
    return tuple(
        shipped.get(token) or _row_of(instrument)
        for token, instrument in market.instruments.items()
    )


def load_instruments() -> dict[int, SandboxInstrument]:
    """The shipped list, by token."""
    instruments = (_instrument(row) for row in _rows())
    return {instrument.instrument_token: instrument for instrument in instruments}


def _csv(columns: Iterable[str], rows: Iterable[Mapping[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def compact_csv(segment: str | None = None, market: Market | None = None) -> str:
    """The compact scrip master (every segment, or one: ``GET /v2/instrument/{segment}``)
    of ``market``'s instruments (None: the shipped list)."""
    rows = [
        row for row in _market_rows(market) if segment is None or row["EXCHANGE_SEGMENT"] == segment
    ]
    return _csv(COMPACT_COLUMNS, rows)


#: The detailed scrip master's columns (Dhan's names, a subset the sandbox can fill).
_DETAILED: Final = (
    "EXCH_ID",
    "SEGMENT",
    "SECURITY_ID",
    "INSTRUMENT",
    "UNDERLYING_SYMBOL",
    "SYMBOL_NAME",
    "DISPLAY_NAME",
    "SERIES",
    "LOT_SIZE",
    "SM_EXPIRY_DATE",
    "STRIKE_PRICE",
    "OPTION_TYPE",
    "TICK_SIZE",
)


def detailed_csv(segment: str | None = None, market: Market | None = None) -> str:
    """The detailed scrip master's columns for the same instruments."""
    rows = [
        {
            "EXCH_ID": row["SEM_EXM_EXCH_ID"],
            "SEGMENT": row["SEM_SEGMENT"],
            "SECURITY_ID": row["SEM_SMST_SECURITY_ID"],
            "INSTRUMENT": row["SEM_INSTRUMENT_NAME"],
            "UNDERLYING_SYMBOL": row["SM_SYMBOL_NAME"],
            "SYMBOL_NAME": row["SEM_TRADING_SYMBOL"],
            "DISPLAY_NAME": row["SEM_CUSTOM_SYMBOL"],
            "SERIES": row["SEM_SERIES"],
            "LOT_SIZE": row["SEM_LOT_UNITS"],
            "SM_EXPIRY_DATE": row["SEM_EXPIRY_DATE"][:10],
            "STRIKE_PRICE": row["SEM_STRIKE_PRICE"],
            "OPTION_TYPE": row["SEM_OPTION_TYPE"],
            "TICK_SIZE": row["SEM_TICK_SIZE"],
        }
        for row in _market_rows(market)
        if segment is None or row["EXCHANGE_SEGMENT"] == segment
    ]
    return _csv(_DETAILED, rows)

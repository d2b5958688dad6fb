"""Kite's instrument list: the dump shipped with the package, read and written in Kite's CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from importlib import resources
from typing import Final

import attrs

from aio_trader._instruments import Instrument
from aio_trader.kite._models import parse_instruments
from aio_trader.sandbox.market import SandboxInstrument

__all__ = ["INSTRUMENT_CSV_HEADER", "from_neutral", "instruments_csv", "load_instruments"]

INSTRUMENT_CSV_HEADER: Final = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,"
    "tick_size,lot_size,instrument_type,segment,exchange"
)

#: The fields a ``SandboxInstrument`` takes as they are from the dump's ``Instrument``.
_DUMP_FIELDS: Final = tuple(
    field.name for field in attrs.fields(SandboxInstrument) if field.name != "base_price"
)


def load_instruments(text: str | None = None) -> dict[int, SandboxInstrument]:
    """Parse an instrument CSV (Kite's dump columns); default: the list shipped with the package.

    The dump is read by the library's own parser (``kite._models.parse_instruments``); its
    ``last_price`` column is where each instrument's random walk starts.
    """
    if text is None:
        text = (
            resources.files("aio_trader.sandbox._kite")
            .joinpath("instruments.csv")
            .read_text("utf-8")
        )
    return {
        row.instrument_token: SandboxInstrument(
            base_price=row.last_price, **{name: getattr(row, name) for name in _DUMP_FIELDS}
        )
        for row in parse_instruments(text)
    }


def from_neutral(instrument: Instrument, base_price: float) -> SandboxInstrument:
    """A neutral record of Kite's (its key the instrument token) as the dump's row would be:
    indices in segment ``INDICES`` (instrument type ``EQ``), futures and options in
    ``EXCHANGE-FUT`` / ``EXCHANGE-OPT``, anything else in the exchange's own segment; the
    exchange token is the instrument token's upper bits, as Kite's."""
    token = instrument.key
    assert isinstance(token, int), "SandboxConfig checked the key"
    kind = instrument.instrument_type
    if kind == "INDEX":
        kind, segment = "EQ", "INDICES"
    elif kind == "FUT":
        segment = f"{instrument.exchange}-FUT"
    elif kind in ("CE", "PE"):
        segment = f"{instrument.exchange}-OPT"
    else:
        segment = instrument.exchange
    return SandboxInstrument(
        instrument_token=token,
        exchange_token=token >> 8,
        tradingsymbol=instrument.tradingsymbol,
        name=instrument.name,
        base_price=base_price,
        expiry=instrument.expiry,
        strike=instrument.strike or 0.0,
        tick_size=instrument.tick_size,
        lot_size=instrument.lot_size,
        instrument_type=kind,
        segment=segment,
        exchange=instrument.exchange,
    )


def _csv_row(instrument: SandboxInstrument) -> list[str]:
    return [
        str(instrument.instrument_token),
        str(instrument.exchange_token),
        instrument.tradingsymbol,
        instrument.name,
        "0.0",
        instrument.expiry.isoformat() if instrument.expiry else "",
        repr(float(instrument.strike)),
        repr(float(instrument.tick_size)),
        str(instrument.lot_size),
        instrument.instrument_type,
        instrument.segment,
        instrument.exchange,
    ]


def instruments_csv(instruments: Iterable[SandboxInstrument]) -> str:
    """Kite's instrument dump (``text/csv`` body) for these instruments."""
    buffer = io.StringIO()
    buffer.write(INSTRUMENT_CSV_HEADER + "\n")
    writer = csv.writer(buffer, lineterminator="\n")
    for instrument in instruments:
        writer.writerow(_csv_row(instrument))
    return buffer.getvalue()

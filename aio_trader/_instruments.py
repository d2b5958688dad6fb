"""Instruments by symbol, for every broker: the neutral record, the index, its daily cache.

- :class:`Instrument`: one tradable (or index) instrument in broker-neutral terms, with the
  broker's own key (Kite: the int instrument token; Dhan: ``(exchange_segment,
  security_id)``) for its feeds and quotes. Exchanges are named as Kite names them for
  every broker (``NSE BSE NFO BFO CDS BCD MCX``; indices are ``NSE``/``BSE`` with
  ``instrument_type`` ``"INDEX"``).
- :class:`InstrumentIndex`: lookups by ``"EXCHANGE:TRADINGSYMBOL"`` and by key, F&O
  contracts by underlying, expiry, strike and option type.
- :class:`IndexCache` (private): what each REST client's ``instrument_index()`` stands on:
  the index kept in memory and on disk (one JSON file per broker and dump URL in the user's
  cache directory, written atomically), downloaded at most once per dump day (see
  :func:`dump_day`), one download for concurrent callers.
- :class:`Quotes`: what quote calls return: a dict keyed like the request, with
  ``missing`` naming what the broker left out.
"""

from __future__ import annotations

import bisect
import datetime
import difflib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import (
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from pathlib import Path
from typing import Any, Final, TypeAlias, TypeVar

import anyio
import anyio.to_thread
import attrs
import platformdirs

from aio_trader._time import IST
from aio_trader.errors import UnknownInstrument

__all__ = [
    "CACHE_DIR_ENV",
    "IndexCache",
    "Instrument",
    "InstrumentIndex",
    "InstrumentKey",
    "Quotes",
    "answered",
    "cache_directory",
    "check_index",
    "default_cache_directory",
    "dump_day",
    "missing_error",
    "resolve_keys",
    "split_symbol",
]

log = logging.getLogger(__name__)

#: The environment variable that moves the instrument cache (default: the user's cache
#: directory, ``platformdirs.user_cache_dir("aio-trader")``, its ``instruments`` folder).
CACHE_DIR_ENV: Final = "AIO_TRADER_CACHE_DIR"

#: A broker's key of an instrument: Kite's int token, Dhan's ``(exchange_segment,
#: security_id)`` pair (the security id a str, as Dhan's REST bodies carry it).
InstrumentKey: TypeAlias = int | tuple[str, str]

_FORMAT: Final = 1

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@attrs.frozen
class Instrument:
    """One instrument, broker-neutral, from a broker's instruments dump.

    ``exchange``: Kite's name for every broker (``NSE``, ``BSE``, ``NFO``, ``BFO``,
    ``CDS``, ``BCD``, ``MCX``); ``tradingsymbol``: the broker's own (Kite
    ``NIFTY26DECFUT``, Dhan ``NIFTY-Dec2026-FUT``); ``key``: what the broker's feed and
    quote calls take (Kite: the int instrument token; Dhan: ``(exchange_segment,
    security_id)`` with ``security_id`` a str); ``name``: the broker's description
    (a company's name; for a derivative its underlying); ``instrument_type``: ``"EQ"``,
    ``"INDEX"``, ``"FUT"``, ``"CE"``, ``"PE"`` (or the broker's own word for anything
    else); ``underlying``: for a derivative the name its contracts are listed under
    (``"NIFTY"``, ``"INFY"``), else None; ``expiry``: the expiry date (None when it does
    not expire); ``strike``: an option's strike (None otherwise); ``lot_size``: the
    quantity of one lot (1 for equities); ``tick_size``: the price step (0.0 for indices,
    which do not trade).
    """

    exchange: str
    tradingsymbol: str
    key: InstrumentKey
    name: str = ""
    instrument_type: str = "EQ"
    underlying: str | None = None
    expiry: datetime.date | None = None
    strike: float | None = None
    lot_size: int = 1
    tick_size: float = 0.0

    @property
    def symbol(self) -> str:
        """``"EXCHANGE:TRADINGSYMBOL"``: how :meth:`InstrumentIndex.get` finds it."""
        return f"{self.exchange}:{self.tradingsymbol}"


def split_symbol(symbol: object) -> tuple[str, str]:
    """``"NSE:INFY"`` -> ``("NSE", "INFY")`` (the exchange upper-cased, spaces around
    either part dropped). ``UnknownInstrument`` when there is no ``EXCHANGE:`` part or
    no trading symbol after it; ``TypeError`` for a non-str."""
    if not isinstance(symbol, str):
        raise TypeError(f"an instrument symbol is an 'EXCHANGE:TRADINGSYMBOL' str, got {symbol!r}")
    exchange, colon, tradingsymbol = symbol.partition(":")
    if not colon or not exchange.strip():
        raise UnknownInstrument(
            f"instrument {symbol!r} has no exchange: write it 'EXCHANGE:TRADINGSYMBOL' "
            f"(e.g. 'NSE:{symbol.strip(':').strip() or 'INFY'}')",
            symbols=(symbol,),
        )
    if not tradingsymbol.strip():
        raise UnknownInstrument(
            f"instrument {symbol!r} has no trading symbol: write it 'EXCHANGE:TRADINGSYMBOL'",
            symbols=(symbol,),
        )
    return exchange.strip().upper(), tradingsymbol.strip()


def _sort_key(instrument: Instrument) -> tuple[datetime.date, int, float, str, str]:
    expiry = instrument.expiry or datetime.date.max
    kind = 0 if instrument.instrument_type == "FUT" else 1
    return (expiry, kind, instrument.strike or 0.0, instrument.instrument_type, instrument.symbol)


class InstrumentIndex:
    """Every instrument of one broker's dump, by symbol, by key and by underlying.

    Build one from a client (``await kite.instrument_index()``, ``await
    dhan.instrument_index()``) or from :class:`Instrument` records. ``broker`` names whose
    keys these are (a feed refuses another broker's index); ``day``: the dump's day (an
    IST date, from 08:30 IST on: see :func:`dump_day`). ``len(index)``, ``symbol in
    index`` and iteration (in dump order) work as expected. Lookups are dictionary reads;
    nothing here does I/O.
    """

    __slots__ = (
        "_by_key",
        "_by_symbol",
        "_by_underlying",
        "_folded",
        "_instruments",
        "_sorted",
        "broker",
        "day",
    )

    def __init__(
        self,
        instruments: Iterable[Instrument],
        *,
        broker: str = "",
        day: datetime.date | None = None,
    ) -> None:
        self.broker = broker
        self.day = day
        self._instruments: tuple[Instrument, ...] = tuple(instruments)
        self._by_symbol: dict[str, Instrument] = {}
        self._folded: dict[str, Instrument] = {}
        self._by_key: dict[Any, Instrument] = {}
        self._by_underlying: dict[str, list[Instrument]] = {}
        self._sorted: dict[str, list[str]] | None = None
        for instrument in self._instruments:
            if not isinstance(instrument, Instrument):
                raise TypeError(f"an InstrumentIndex holds Instruments, got {instrument!r}")
            symbol = instrument.symbol
            self._by_symbol.setdefault(symbol, instrument)
            self._folded.setdefault(symbol.upper(), instrument)
            self._by_key.setdefault(instrument.key, instrument)
            if instrument.underlying is not None:
                underlying = instrument.underlying.upper()
                self._by_underlying.setdefault(underlying, []).append(instrument)
        for contracts in self._by_underlying.values():
            contracts.sort(key=_sort_key)

    def __repr__(self) -> str:
        return f"<InstrumentIndex {self.broker or '?'} {len(self)} instruments day={self.day}>"

    def __len__(self) -> int:
        return len(self._instruments)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._instruments)

    def __contains__(self, symbol: object) -> bool:
        return isinstance(symbol, str) and self.find(symbol) is not None

    def find(self, symbol: str) -> Instrument | None:
        """The instrument of ``"EXCHANGE:TRADINGSYMBOL"``, or None (no exchange included).
        The exact symbol first, then regardless of case (``"nse:infy"``)."""
        found = self._by_symbol.get(symbol)
        if found is None:
            try:
                exchange, tradingsymbol = split_symbol(symbol)
            except UnknownInstrument:
                return None
            found = self._folded.get(f"{exchange}:{tradingsymbol}".upper())
        return found

    def get(self, symbol: str) -> Instrument:
        """The instrument of ``"EXCHANGE:TRADINGSYMBOL"`` (``"NSE:INFY"``,
        ``"NFO:NIFTY26DECFUT"``; case does not matter).

        Raises ``UnknownInstrument`` naming the symbol: without an ``EXCHANGE:`` part (it
        suggests the exchanges that list the trading symbol), or not in the index (it
        suggests close matches on the same exchange); ``TypeError`` for a non-str.
        """
        found = self._by_symbol.get(symbol) if isinstance(symbol, str) else None
        if found is not None:
            return found
        try:
            exchange, tradingsymbol = split_symbol(symbol)
        except UnknownInstrument as exc:
            listed = self._on_exchanges(str(symbol).strip(":").strip())
            if not listed:
                raise
            raise UnknownInstrument(
                f"{exc.message}; it is listed as {', '.join(listed)}",
                symbols=exc.symbols,
                suggestions=listed,
            ) from None
        found = self._folded.get(f"{exchange}:{tradingsymbol}".upper())
        if found is not None:
            return found
        suggestions = self._close_matches(exchange, tradingsymbol)
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        where = f"{self.broker}'s " if self.broker else "the "
        raise UnknownInstrument(
            f"unknown instrument {symbol!r}: not in {where}instrument index{hint}",
            symbols=(symbol,),
            suggestions=suggestions,
            broker=self.broker or None,
        )

    def by_key(self, key: InstrumentKey | tuple[str, int]) -> Instrument:
        """The instrument of a broker key (Kite: the int token; Dhan: ``(segment,
        security_id)``, the id as a str or an int). ``KeyError`` when unknown."""
        if isinstance(key, tuple) and len(key) == 2:
            key = (str(key[0]), str(key[1]))
        try:
            return self._by_key[key]
        except (KeyError, TypeError):
            raise KeyError(key) from None

    def derivatives(
        self,
        underlying: str,
        expiry: datetime.date | None = None,
        strike: float | None = None,
        option_type: str | None = None,
        *,
        exchange: str | None = None,
    ) -> list[Instrument]:
        """The futures and options on ``underlying`` (``"NIFTY"``, ``"INFY"``: the name
        the broker lists them under; case does not matter), sorted by expiry, futures
        first, then strike and type. Narrowed by ``expiry`` (a date), ``strike``,
        ``option_type`` (``"CE"``, ``"PE"``, or ``"FUT"`` for futures only) and
        ``exchange`` (``"NFO"``, ``"BFO"``, ``"MCX"``...). An unknown underlying gives
        ``[]``. ``ValueError`` for another ``option_type``; ``TypeError`` for an
        ``expiry`` that is not a date.
        """
        if option_type is not None:
            option_type = str(option_type).upper()
            if option_type not in ("CE", "PE", "FUT"):
                raise ValueError(f"option_type must be 'CE', 'PE' or 'FUT', not {option_type!r}")
        if expiry is not None and (
            not isinstance(expiry, datetime.date) or isinstance(expiry, datetime.datetime)
        ):
            raise TypeError(f"expiry must be a datetime.date, got {type(expiry).__name__}")
        wanted_exchange = None if exchange is None else str(exchange).upper()
        out = []
        for instrument in self._by_underlying.get(str(underlying).upper(), ()):
            if expiry is not None and instrument.expiry != expiry:
                continue
            if strike is not None and instrument.strike != float(strike):
                continue
            if option_type is not None and instrument.instrument_type != option_type:
                continue
            if wanted_exchange is not None and instrument.exchange != wanted_exchange:
                continue
            out.append(instrument)
        return out

    def expiries(self, underlying: str, *, exchange: str | None = None) -> list[datetime.date]:
        """The expiry dates of ``underlying``'s contracts, ascending (``[]`` when none)."""
        dates = {
            instrument.expiry
            for instrument in self.derivatives(underlying, exchange=exchange)
            if instrument.expiry is not None
        }
        return sorted(dates)

    def underlyings(self) -> list[str]:
        """Every name derivatives are listed under, sorted."""
        return sorted(self._by_underlying)

    # -- suggestions (only when a lookup fails) -----------------------------------------

    def _on_exchanges(self, tradingsymbol: str) -> tuple[str, ...]:
        wanted = tradingsymbol.upper()
        return tuple(
            sorted({i.symbol for i in self._instruments if i.tradingsymbol.upper() == wanted})[:5]
        )

    def _close_matches(self, exchange: str, tradingsymbol: str) -> tuple[str, ...]:
        """Up to 3 similar symbols of ``exchange``, among the sorted neighbours of the
        one asked (cheap: a bisection and a few dozen comparisons)."""
        if self._sorted is None:
            by_exchange: dict[str, list[str]] = {}
            for instrument in self._instruments:
                by_exchange.setdefault(instrument.exchange, []).append(
                    instrument.tradingsymbol.upper()
                )
            self._sorted = {name: sorted(set(names)) for name, names in by_exchange.items()}
        names = self._sorted.get(exchange, [])
        wanted = tradingsymbol.upper()
        at = bisect.bisect_left(names, wanted)
        nearby = names[max(0, at - 25) : at + 25]
        # the same start, longer or shorter (INFY -> INFY26DECFUT), also counts
        matches = difflib.get_close_matches(wanted, nearby, n=3, cutoff=0.6)
        return tuple(self._folded[f"{exchange}:{name}"].symbol for name in matches)


# -- feeds: symbols to keys ----------------------------------------------------------------


def _one_pair(keys: object) -> bool:
    """Whether ``keys`` is one ``(segment, id)`` pair rather than a collection of keys."""
    return (
        isinstance(keys, tuple)
        and len(keys) == 2
        and isinstance(keys[0], str)
        and ":" not in keys[0]
    )


def resolve_keys(
    keys: object, index: InstrumentIndex | None, check: Callable[[Any], list[Any]]
) -> list[Any]:
    """A feed's ``keys`` with each symbol (a str, ``"NSE:INFY"``) replaced by its key in
    ``index``, then ``check``-ed (the protocol's ``check_keys``: the broker's own errors).

    ``UnknownInstrument`` for a symbol without an exchange or unknown to ``index``;
    for a symbol when there is no ``index``, what ``check`` raises for it (``TypeError``
    or ``ValueError``) with the ``instruments=`` argument named. Nothing else changes:
    what ``check`` raises it raises.
    """
    if isinstance(keys, str | bytes | Mapping) or not isinstance(keys, Iterable) or _one_pair(keys):
        return check(keys)
    items = list(keys)
    if not any(isinstance(item, str) for item in items):
        return check(items)
    resolved: list[Any] = []
    for item in items:
        if not isinstance(item, str):
            resolved.append(item)
        elif index is not None:
            resolved.append(index.get(item).key)
        else:
            try:
                check([item])
            except (TypeError, ValueError) as exc:
                kind = TypeError if isinstance(exc, TypeError) else ValueError
                raise kind(
                    f"{exc}; to use symbols such as {item!r}, give the feed an instrument "
                    "index: instruments=await client.instrument_index()"
                ) from None
            resolved.append(item)
    return check(resolved)


def check_index(index: object, feed_broker: str) -> InstrumentIndex | None:
    """A feed's ``instruments`` argument: None, or an :class:`InstrumentIndex` of the
    feed's broker (``TypeError`` / ``ValueError`` otherwise)."""
    if index is None:
        return None
    if not isinstance(index, InstrumentIndex):
        raise TypeError(f"instruments must be an InstrumentIndex, got {type(index).__name__}")
    if index.broker and index.broker != feed_broker:
        raise ValueError(
            f"instruments is {index.broker}'s index: a {feed_broker} feed needs its broker's "
            f"(await client.instrument_index() of a {feed_broker} client)"
        )
    return index


# -- quote results --------------------------------------------------------------------------


class Quotes(dict[K, V]):
    """A quote call's answer: a dict keyed like the request, and ``missing``: what was
    asked for but left out of the broker's answer (an instrument the broker does not know
    or has no quote for), in the order asked. Empty when every instrument was answered;
    when none was, the call raised ``UnknownInstrument`` instead."""

    __slots__ = ("missing",)

    def __init__(self, items: Iterable[tuple[K, V]] = (), missing: Sequence[K] = ()) -> None:
        super().__init__(items)
        self.missing: tuple[K, ...] = tuple(missing)

    def __repr__(self) -> str:
        return f"Quotes({dict.__repr__(self)}, missing={list(self.missing)!r})"


def answered(answer: Mapping[K, V], asked: Iterable[K], broker: str) -> Quotes[K, V]:
    """A quote call's result: ``answer`` with ``missing`` set to what was ``asked`` but
    not answered; raises :func:`missing_error` when nothing asked was answered."""
    wanted = list(dict.fromkeys(asked))
    missing = [key for key in wanted if key not in answer]
    if wanted and len(missing) == len(wanted):
        raise missing_error(missing, broker)
    return Quotes(answer.items(), missing)


def missing_error(missing: Sequence[object], broker: str) -> UnknownInstrument:
    """The error of a quote call that got nothing back for any instrument asked."""
    names = [str(item) for item in missing]
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return UnknownInstrument(
        f"{broker.capitalize()} has no quote for any instrument asked: {shown}",
        symbols=tuple(names),
        broker=broker,
    )


# -- the cache: memory, disk, once a day ---------------------------------------------------


def default_cache_directory() -> Path:
    """``$AIO_TRADER_CACHE_DIR`` if set, else the user's cache directory (platformdirs)
    followed by ``instruments``."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override)
    base = platformdirs.user_cache_dir("aio-trader", appauthor=False)
    return Path(base) / "instruments"


def cache_directory(value: object) -> Path | None:
    """A client's ``instrument_cache`` argument as a directory: ``True`` the default
    (:func:`default_cache_directory`), ``False``/``None`` no disk cache (memory only), a
    path that directory. ``TypeError`` for anything else."""
    if value is True:
        return default_cache_directory()
    if value is False or value is None:
        return None
    if isinstance(value, str | os.PathLike):
        if not os.fspath(value):
            raise ValueError("instrument_cache must not be an empty path")
        return Path(value)
    raise TypeError(f"instrument_cache must be a bool or a path, got {type(value).__name__}")


#: When the day's instrument dump is out (IST): Kite regenerates its dump before 08:30 and
#: asks for one download a day "at around 08:30 AM"; the same hour serves Dhan's scrip
#: master (published before the market opens).
DUMP_TIME: Final = datetime.time(8, 30)


def dump_day(now: datetime.datetime | None = None) -> datetime.date:
    """The day of the newest instrument dump at ``now`` (aware; default: the current
    time): the IST date from 08:30 IST (:data:`DUMP_TIME`) on, the day before until then.
    A dump fetched at 07:00 is the previous day's and is fetched again after 08:30; one
    fetched at 23:00 still serves until 08:30 the next morning."""
    if now is None:
        now = datetime.datetime.now(IST)
    elif now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("dump_day needs an aware datetime")
    local = now.astimezone(IST)
    shift = datetime.timedelta(hours=DUMP_TIME.hour, minutes=DUMP_TIME.minute)
    return (local - shift).date()


def _dump_row(instrument: Instrument) -> list[Any]:
    key = list(instrument.key) if isinstance(instrument.key, tuple) else instrument.key
    return [
        instrument.exchange,
        instrument.tradingsymbol,
        key,
        instrument.name,
        instrument.instrument_type,
        instrument.underlying,
        None if instrument.expiry is None else instrument.expiry.isoformat(),
        instrument.strike,
        instrument.lot_size,
        instrument.tick_size,
    ]


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a str, got {type(value).__name__}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _load_row(row: Any) -> Instrument:
    if not isinstance(row, list) or len(row) != 10:
        raise ValueError("a row is not a list of 10 values")
    exchange, tradingsymbol, key, name, kind, underlying, expiry, strike, lot, tick = row
    if isinstance(key, list) and len(key) == 2:
        key = (_str(key[0]), _str(key[1]))
    elif isinstance(key, bool) or not isinstance(key, int):
        raise ValueError("a key is neither an int nor a pair of strs")
    if isinstance(lot, bool) or not isinstance(lot, int):
        raise ValueError("a lot size is not an int")
    return Instrument(
        exchange=_str(exchange),
        tradingsymbol=_str(tradingsymbol),
        key=key,
        name=_str(name),
        instrument_type=_str(kind),
        underlying=None if underlying is None else _str(underlying),
        expiry=None if expiry is None else datetime.date.fromisoformat(_str(expiry)),
        strike=None if strike is None else _number(strike),
        lot_size=lot,
        tick_size=_number(tick),
    )


class IndexCache:
    """One client's instrument index: in memory, on disk, downloaded once a day.

    ``broker`` and ``source`` (the dump's URL) name the cache file, so two hosts (a
    sandbox and the real broker) never share one. ``directory``: where the file lives
    (None: memory only). :meth:`get` does the rest.
    """

    def __init__(self, broker: str, source: str, directory: Path | None) -> None:
        self.broker = broker
        self.source = source
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        self.path = None if directory is None else directory / f"{broker}-{digest}.json"
        self._index: InstrumentIndex | None = None
        self._lock: anyio.Lock | None = None
        self._downloads = 0

    async def get(
        self, download: Callable[[], Awaitable[list[Instrument]]], refresh: bool = False
    ) -> InstrumentIndex:
        """Today's index: from memory, else from the file, else ``download()`` (then
        written to the file). ``refresh``: download regardless, unless another caller's
        download finished while this one waited. One caller at a time downloads; the others
        wait and share its index.

        Cancellation: propagates; a download cancelled before it finished leaves the memory
        and the file as they were (the file is replaced atomically, in a worker thread that
        finishes its write even when cancelled: never half a file).
        """
        if self._lock is None:
            self._lock = anyio.Lock()
        downloads = self._downloads
        async with self._lock:
            today = dump_day()
            current = self._index
            if refresh and self._downloads != downloads and current is not None:
                return current
            if not refresh and current is not None and current.day == today:
                return current
            if not refresh and self.path is not None:
                cached = await anyio.to_thread.run_sync(self._read, today)
                if cached is not None:
                    self._index = cached
                    return cached
            instruments = await download()
            index = InstrumentIndex(instruments, broker=self.broker, day=today)
            if self.path is not None:
                await anyio.to_thread.run_sync(self._write, index)
            self._index = index
            self._downloads += 1
            return index

    def _read(self, today: datetime.date) -> InstrumentIndex | None:
        """The file's index if it is today's; None when absent or stale; a corrupt file
        is removed (and logged)."""
        path = self.path
        assert path is not None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read the instrument cache %s: %s", path, exc)
            return None
        try:
            record = json.loads(data.decode("utf-8"))
            if not isinstance(record, dict) or record.get("format") != _FORMAT:
                raise ValueError("unknown format")
            if record.get("broker") != self.broker or record.get("source") != self.source:
                raise ValueError("written for another broker or host")
            day = datetime.date.fromisoformat(_str(record.get("day")))
            rows = record.get("instruments")
            if not isinstance(rows, list):
                raise ValueError("no instrument list")
            if day != today:
                log.debug("instrument cache %s is from %s: downloading today's", path, day)
                return None
            instruments = [_load_row(row) for row in rows]
        except (ValueError, TypeError, RecursionError) as exc:
            log.warning(
                "discarding the corrupt instrument cache %s (%s): downloading again", path, exc
            )
            path.unlink(missing_ok=True)
            return None
        return InstrumentIndex(instruments, broker=self.broker, day=day)

    def _write(self, index: InstrumentIndex) -> None:
        """Replace the file atomically (a temporary file in the same directory, then
        ``os.replace``); a failure to write is logged, the index is kept in memory."""
        path = self.path
        assert path is not None
        assert index.day is not None
        record = {
            "format": _FORMAT,
            "broker": self.broker,
            "source": self.source,
            "day": index.day.isoformat(),
            "instruments": [_dump_row(instrument) for instrument in index],
        }
        partial: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, partial = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(record, file, separators=(",", ":"))
            os.replace(partial, path)
            partial = None
        except OSError as exc:
            log.warning("cannot write the instrument cache %s: %s", path, exc)
        finally:
            if partial is not None:
                Path(partial).unlink(missing_ok=True)

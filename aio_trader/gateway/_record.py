"""Recordings: a session's raw frames, with their receive times, in a Parquet file.

The frames file (one row per frame, in order) has the columns ``received``
(``timestamp[us, UTC]``: when the frame was received), ``connection`` (int16), ``seq``
(int64: the gateway's sequence number, or the row number for a direct recording), ``kind``
(``"binary"`` or ``"text"``) and ``data`` (binary: the frame's bytes unchanged, a text
frame's UTF-8). :class:`aio_trader.replay.ReplayFeed` plays it back.

Optionally a second file gets one row per decoded tick (``received``, ``seq``,
``instrument_token``, ``mode``, prices, volumes, OHLC, OI, ``exchange_timestamp``...), for
analysis in pandas, polars or DuckDB.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import time
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
    raise ImportError("recordings need pyarrow: pip install 'aio-trader[gateway]'") from exc

import anyio

from aio_trader.kite import Tick, decode_frame

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["FRAME_SCHEMA", "TICK_SCHEMA", "Recorder", "record"]

log = logging.getLogger(__name__)

FRAME_SCHEMA: Final = pa.schema(
    [
        ("received", pa.timestamp("us", tz="UTC")),
        ("connection", pa.int16()),
        ("seq", pa.int64()),
        ("kind", pa.string()),
        ("data", pa.binary()),
    ]
)

#: Tick fields as columns: (name, type, how to read it from a tick).
_TICK_COLUMNS: Final[tuple[tuple[str, Any], ...]] = (
    ("instrument_token", pa.int64()),
    ("mode", pa.string()),
    ("last_price", pa.float64()),
    ("last_traded_quantity", pa.int64()),
    ("average_traded_price", pa.float64()),
    ("volume_traded", pa.int64()),
    ("total_buy_quantity", pa.int64()),
    ("total_sell_quantity", pa.int64()),
    ("open", pa.float64()),
    ("high", pa.float64()),
    ("low", pa.float64()),
    ("close", pa.float64()),
    ("change", pa.float64()),
    ("oi", pa.int64()),
    ("last_trade_time", pa.timestamp("s", tz="UTC")),
    ("exchange_timestamp", pa.timestamp("s", tz="UTC")),
)
TICK_SCHEMA: Final = pa.schema(
    [("received", pa.timestamp("us", tz="UTC")), ("seq", pa.int64()), *_TICK_COLUMNS]
)


def _tick_row(tick: Tick) -> dict[str, Any]:
    ohlc = getattr(tick, "ohlc", None)
    row: dict[str, Any] = {"instrument_token": tick.instrument_token, "mode": tick.mode}
    for name, _ in _TICK_COLUMNS[2:]:
        if name in ("open", "high", "low", "close"):
            row[name] = getattr(ohlc, name, None) if ohlc is not None else None
        else:
            row[name] = getattr(tick, name, None)
    return row


class Recorder:
    """Writes frames to a Parquet file (and, optionally, decoded ticks to a second one).

    ::

        with Recorder("session.parquet", ticks="ticks.parquet") as rec:
            rec.write(frame_bytes, received=time.time(), connection=0)

    Rows are buffered and written ``row_group`` at a time; :meth:`close` writes the rest
    and the file's footer (a file not closed cannot be read back). Writing is synchronous
    and fast (in-memory buffering); the file is written in row groups.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        ticks: str | os.PathLike[str] | None = None,
        row_group: int = 10_000,
    ) -> None:
        """Open ``path`` for writing (replaced if it exists). ``ValueError`` for a
        ``row_group`` below 1."""
        if row_group < 1:
            raise ValueError(f"row_group must be >= 1, got {row_group!r}")
        self.path = os.fspath(path)
        self.ticks_path = None if ticks is None else os.fspath(ticks)
        self.row_group = row_group
        self.frames = 0
        self.ticks = 0
        self._rows: dict[str, list[Any]] = {name: [] for name in FRAME_SCHEMA.names}
        self._tick_rows: list[dict[str, Any]] = []
        self._writer: Any = pq.ParquetWriter(self.path, FRAME_SCHEMA)
        self._tick_writer: Any = (
            None if self.ticks_path is None else pq.ParquetWriter(self.ticks_path, TICK_SCHEMA)
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"<Recorder {self.path!r} frames={self.frames}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write(
        self,
        frame: bytes | bytearray | str,
        received: float | None = None,
        connection: int = 0,
        seq: int | None = None,
    ) -> None:
        """Add one frame (``bytes``: binary, ``str``: text) received at ``received`` (Unix
        seconds; default now) on ``connection``. ``seq`` defaults to the row number (from 1).

        Raises ``RuntimeError`` once closed.
        """
        if self._closed:
            raise RuntimeError("the recorder is closed")
        when = time.time() if received is None else received
        self.frames += 1
        number = self.frames if seq is None else seq
        rows = self._rows
        rows["received"].append(int(when * 1_000_000))
        rows["connection"].append(connection)
        rows["seq"].append(number)
        if isinstance(frame, str):
            rows["kind"].append("text")
            rows["data"].append(frame.encode())
        else:
            rows["kind"].append("binary")
            rows["data"].append(bytes(frame))
            if self._tick_writer is not None:
                stamp = int(when * 1_000_000)
                for tick in decode_frame(frame):
                    row = _tick_row(tick)
                    row["received"], row["seq"] = stamp, number
                    self._tick_rows.append(row)
                    self.ticks += 1
        if len(rows["seq"]) >= self.row_group:
            self._flush()

    def _flush(self) -> None:
        if self._rows["seq"]:
            self._writer.write_table(pa.table(self._rows, schema=FRAME_SCHEMA))
            self._rows = {name: [] for name in FRAME_SCHEMA.names}
        if self._tick_writer is not None and self._tick_rows:
            table = pa.Table.from_pylist(_tick_times(self._tick_rows), schema=TICK_SCHEMA)
            self._tick_writer.write_table(table)
            self._tick_rows = []

    def close(self) -> None:
        """Write what is buffered and close the file(s). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._flush()
        finally:
            self._writer.close()
            if self._tick_writer is not None:
                self._tick_writer.close()


def _tick_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aware datetimes as UTC seconds for the timestamp columns."""
    for row in rows:
        for name in ("last_trade_time", "exchange_timestamp"):
            value = row.get(name)
            if isinstance(value, datetime.datetime):
                row[name] = int(value.timestamp())
    return rows


async def record(
    path: str | os.PathLike[str],
    *,
    feed: Any = None,
    redis: Any = None,
    prefix: str = "aio_trader",
    start: Literal["new", "oldest"] = "new",
    frames: int | None = None,
    ticks: str | os.PathLike[str] | None = None,
) -> int:
    """Record frames to ``path`` until ``frames`` were written (None: until cancelled, or the
    feed ends); returns how many were written.

    The source is either ``feed``, an entered :class:`~aio_trader.kite.RawKiteFeed` (its
    frames, with their receive times and connections), or ``redis`` (a URL or an entered
    coredis client) with a gateway's ``prefix``: the gateway's stream, from the next frame
    published (``start="new"``) or the oldest Redis keeps (``"oldest"``), with the
    gateway's receive times, connections and sequence numbers. Reading Redis does not
    join a consumer group and asks for no instruments: it records what the gateway's
    consumers asked for. ``ticks`` also writes one row per decoded tick there.

    Cancellation: the file is completed (closed with everything received so far) and the
    cancellation propagates. Raises ``ValueError`` unless exactly one source is given.
    """
    if (feed is None) == (redis is None):
        raise ValueError("give feed= (a RawKiteFeed) or redis= (a gateway's Redis), not both")
    with Recorder(path, ticks=ticks) as recorder:
        if feed is not None:
            async for frame in feed:
                recorder.write(frame.data, frame.received, frame.connection)
                if frames is not None and recorder.frames >= frames:
                    break
        else:
            await _record_redis(recorder, redis, prefix, start, frames)
        return recorder.frames


async def _record_redis(
    recorder: Recorder, redis: Any, prefix: str, start: str, frames: int | None
) -> None:
    from aio_trader.gateway._redis import RETRYABLE, check_redis, open_client
    from aio_trader.gateway._wire import Keys

    check_redis(redis)
    key = Keys(prefix).frames
    keyb = key.encode()
    async with contextlib.AsyncExitStack() as stack:
        client = await open_client(redis, stack)
        cursor: Any = b"0-0"
        if start == "new":
            last = await client.xrevrange(key, count=1)
            cursor = last[0].identifier if last else b"0-0"
        while frames is None or recorder.frames < frames:
            try:
                got = await client.xread({key: cursor}, count=512, block=1000)
            except RETRYABLE as exc:
                log.warning("recorder: Redis failed (%s); retrying", type(exc).__name__)
                await anyio.sleep(0.5)
                continue
            for entry in _entries(got, keyb):
                cursor = entry.identifier
                fields = entry.field_values
                if not fields:
                    continue
                data: bytes | str = fields[b"b"] if b"b" in fields else fields[b"t"].decode()
                recorder.write(data, float(fields[b"r"]), int(fields[b"c"]), int(fields[b"s"]))
                if frames is not None and recorder.frames >= frames:
                    return


def _entries(got: Any, key: bytes) -> Iterable[Any]:
    return got.get(key, ()) if got else ()

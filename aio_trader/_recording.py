"""The recording format: a session's raw frames, with their receive times and codec, in a
Parquet file. One writer (:class:`Recorder`), one reader (:class:`RecordingReader`).

The frames file (one row per frame, in order) has the columns ``received``
(``timestamp[us, UTC]``: when the frame was received), ``connection`` (int16), ``seq``
(int64: the gateway's sequence number, or the row number for a direct recording), ``kind``
(``"binary"`` or ``"text"``), ``data`` (binary: the frame's bytes unchanged, a text
frame's UTF-8) and ``codec`` (string: the name of the frame's codec,
:func:`aio_trader._codec.get_codec`). The file's metadata key ``aio_trader.codec`` names
the recorder's codec. A file written before codecs were named has no ``codec`` column:
its frames are Kite's.

Optionally a second file gets one row per decoded tick (``received``, ``seq``, then the
codec's :attr:`~aio_trader._codec.Codec.tick_columns`: for Kite ``instrument_token``,
``mode``, prices, volumes, OHLC, OI, ``exchange_timestamp``...), for analysis in pandas,
polars or DuckDB.

Needs pyarrow (``pip install 'aio-trader[gateway]'``).
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
    raise ImportError("recordings need pyarrow: pip install 'aio-trader[gateway]'") from exc

import attrs

from aio_trader._codec import DEFAULT_CODEC, Codec, get_codec

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["FRAME_SCHEMA", "RecordedFrame", "Recorder", "RecordingReader", "tick_schema"]

_METADATA_CODEC: Final = b"aio_trader.codec"

FRAME_SCHEMA: Final = pa.schema(
    [
        ("received", pa.timestamp("us", tz="UTC")),
        ("connection", pa.int16()),
        ("seq", pa.int64()),
        ("kind", pa.string()),
        ("data", pa.binary()),
        ("codec", pa.string()),
    ]
)

_COLUMN_TYPES: Final[dict[str, Any]] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "str": pa.string(),
    "time": pa.timestamp("s", tz="UTC"),
}


def tick_schema(codec: Codec) -> Any:
    """The schema of a ticks file for ``codec``'s records."""
    columns = [(name, _COLUMN_TYPES[kind]) for name, kind in codec.tick_columns]
    return pa.schema([("received", pa.timestamp("us", tz="UTC")), ("seq", pa.int64()), *columns])


@attrs.frozen
class RecordedFrame:
    """One frame of a recording: ``received_us`` (microseconds since the Unix epoch),
    ``connection``, ``seq``, ``text`` (a text frame, else binary), ``data`` (the frame's
    bytes; a text frame's UTF-8) and ``codec`` (the codec's name)."""

    received_us: int
    connection: int
    seq: int
    text: bool
    data: bytes
    codec: str

    @property
    def received(self) -> float:
        """When the frame was received, seconds since the Unix epoch."""
        return self.received_us / 1e6


class Recorder:
    """Writes frames to a Parquet file (and, optionally, decoded ticks to a second one).

    ::

        with Recorder("session.parquet", ticks="ticks.parquet") as rec:
            rec.write(frame_bytes, received=time.time(), connection=0)

    Rows are buffered and written ``row_group`` at a time; :meth:`close` writes the rest
    and the file's footer (a file not closed cannot be read back). Writing is synchronous
    and fast (in-memory buffering); the file is written in row groups. ``codec`` (a name
    or a registered codec) is the codec of the frames written without one; the ticks file
    is decoded with it (frames of another codec get no tick rows).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        ticks: str | os.PathLike[str] | None = None,
        row_group: int = 10_000,
        codec: Codec | str = DEFAULT_CODEC,
    ) -> None:
        """Open ``path`` for writing (replaced if it exists). ``ValueError`` for a
        ``row_group`` below 1 or an unknown codec."""
        if row_group < 1:
            raise ValueError(f"row_group must be >= 1, got {row_group!r}")
        self.codec = get_codec(codec)
        self.path = os.fspath(path)
        self.ticks_path = None if ticks is None else os.fspath(ticks)
        self.row_group = row_group
        self.frames = 0
        self.ticks = 0
        self._rows: dict[str, list[Any]] = {name: [] for name in FRAME_SCHEMA.names}
        self._tick_rows: list[dict[str, Any]] = []
        schema = FRAME_SCHEMA.with_metadata({_METADATA_CODEC: self.codec.name.encode()})
        self._schema = schema
        self._writer: Any = pq.ParquetWriter(self.path, schema)
        self._tick_schema = tick_schema(self.codec)
        self._tick_writer: Any = (
            None
            if self.ticks_path is None
            else pq.ParquetWriter(self.ticks_path, self._tick_schema)
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
        codec: str | None = None,
    ) -> None:
        """Add one frame (``bytes``: binary, ``str``: text) received at ``received`` (Unix
        seconds; default now) on ``connection``. ``seq`` defaults to the row number (from 1),
        ``codec`` (a name) to the recorder's.

        Raises ``RuntimeError`` once closed.
        """
        if self._closed:
            raise RuntimeError("the recorder is closed")
        when = time.time() if received is None else received
        self.frames += 1
        number = self.frames if seq is None else seq
        name = self.codec.name if codec is None else codec
        rows = self._rows
        stamp = int(when * 1_000_000)
        rows["received"].append(stamp)
        rows["connection"].append(connection)
        rows["seq"].append(number)
        rows["codec"].append(name)
        if isinstance(frame, str):
            rows["kind"].append("text")
            rows["data"].append(frame.encode())
        else:
            rows["kind"].append("binary")
            rows["data"].append(bytes(frame))
            if self._tick_writer is not None and name == self.codec.name:
                self._add_ticks(bytes(frame), stamp, number)
        if len(rows["seq"]) >= self.row_group:
            self._flush()

    def _add_ticks(self, frame: bytes, stamp: int, number: int) -> None:
        codec = self.codec
        for tick in codec.decode_binary(frame, _ignore):
            row = codec.tick_row(tick)
            if row is None:
                continue
            row["received"], row["seq"] = stamp, number
            self._tick_rows.append(row)
            self.ticks += 1

    def _flush(self) -> None:
        if self._rows["seq"]:
            self._writer.write_table(pa.table(self._rows, schema=self._schema))
            self._rows = {name: [] for name in FRAME_SCHEMA.names}
        if self._tick_writer is not None and self._tick_rows:
            rows = _tick_times(self._tick_rows)
            self._tick_writer.write_table(pa.Table.from_pylist(rows, schema=self._tick_schema))
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


def _ignore(_: object) -> None:
    """Malformed packets have no row in a ticks file (the frames file keeps them)."""


def _tick_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aware datetimes as UTC seconds for the timestamp columns."""
    for row in rows:
        for name, value in row.items():
            if isinstance(value, datetime.datetime):
                row[name] = int(value.timestamp())
    return rows


class RecordingReader:
    """Reads a recording back, frame by frame, in order (a blocking reader: run
    :meth:`open` in a worker thread from async code).

    ``total`` is the number of frames, ``codec`` the name of the recorder's codec.
    """

    def __init__(self, path: str | os.PathLike[str], *, batch_size: int = 4096) -> None:
        """Nothing is read before :meth:`open`. ``ValueError`` for a ``batch_size`` below 1."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        self.path = os.fspath(path)
        self.batch_size = batch_size
        self.total = 0
        self.codec = DEFAULT_CODEC
        self._file: Any = None
        self._has_codec = False

    def __repr__(self) -> str:
        return f"<RecordingReader {self.path!r} frames={self.total}>"

    def open(self) -> Self:
        """Open the file and read its footer. Raises ``OSError`` (or pyarrow's error) for a
        missing or unreadable file, ``ValueError`` for a file that is no recording."""
        file = pq.ParquetFile(self.path)
        schema = file.schema_arrow
        missing = {"received", "connection", "seq", "kind", "data"} - set(schema.names)
        if missing:
            file.close()
            raise ValueError(f"{self.path} is no recording: no {', '.join(sorted(missing))}")
        self._has_codec = "codec" in schema.names
        codec = (schema.metadata or {}).get(_METADATA_CODEC)
        if codec is not None:
            self.codec = codec.decode()
        self.total = file.metadata.num_rows
        self._file = file
        return self

    def __enter__(self) -> Self:
        return self.open() if self._file is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file. Idempotent."""
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def __iter__(self) -> Iterator[RecordedFrame]:
        """The frames, in order (``RuntimeError`` before :meth:`open`)."""
        if self._file is None:
            raise RuntimeError("open the recording first")
        columns = ["received", "connection", "seq", "kind", "data"]
        if self._has_codec:
            columns.append("codec")
        default = self.codec
        for batch in self._file.iter_batches(batch_size=self.batch_size, columns=columns):
            received = batch.column(0).cast("int64").to_pylist()
            codecs = batch.column(5).to_pylist() if self._has_codec else None
            rows = zip(
                received,
                batch.column(1).to_pylist(),
                batch.column(2).to_pylist(),
                batch.column(3).to_pylist(),
                batch.column(4).to_pylist(),
                strict=True,
            )
            for n, (at, connection, seq, kind, data) in enumerate(rows):
                codec = default if codecs is None else codecs[n] or default
                yield RecordedFrame(at, connection, seq, kind == "text", data, codec)

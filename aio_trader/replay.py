"""``ReplayFeed``: a recorded session played back through the feeder contract.

::

    async with ReplayFeed("session.parquet", speed=None) as feed:   # as fast as possible
        async for item in feed:          # the records the live feed yielded
            ...

A recording is a Parquet file of raw frames with their receive times (written by
:class:`aio_trader.gateway.Recorder` or :func:`aio_trader.gateway.record`). Each frame is
decoded with the live feed's codec, so the replay yields the same records, in the same
order: tick records and the text frames' records (order updates, errors, messages).

Without a subscription every recorded instrument is yielded as recorded. After
``subscribe`` only the subscribed instruments are, each cut down to its mode (the packet
of a poorer mode is a prefix of a richer one's); ticks recorded in a poorer mode than
asked are skipped (``stale_mode``), as :class:`aio_trader.gateway.RedisFeed` does.

``speed=1.0`` replays in real time (the gaps between receive times), ``2.0`` twice as fast,
``None`` as fast as possible. Needs pyarrow (``pip install 'aio-trader[gateway]'``).
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.lowlevel
import attrs

from aio_trader.abc import AbstractFeeder
from aio_trader.gateway._wire import FrameInfo, filter_frame
from aio_trader.kite import (
    FeedItem,
    MalformedPacket,
    Mode,
    decode_frame,
    decode_text,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ReplayFeed", "ReplayStatistics"]

_YIELD_EVERY: Final = 64


@attrs.frozen
class ReplayStatistics:
    """A snapshot of a replay's counters: ``frames`` frames read of ``total`` in the file,
    ``ticks`` tick records yielded or waiting, ``text_frames``, ``malformed`` packets or text
    frames skipped, ``stale_mode`` ticks skipped as recorded in a poorer mode than asked,
    ``subscribed`` instruments (0: everything)."""

    frames: int
    total: int
    ticks: int
    text_frames: int
    malformed: int
    stale_mode: int
    subscribed: int


class ReplayFeed(AbstractFeeder[int, FeedItem]):
    """A recording as a feed (see the module doc)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        speed: float | None = 1.0,
        default_mode: Mode | str = Mode.QUOTE,
    ) -> None:
        """Set up the replay; the file is opened by ``async with``.

        Raises ``ValueError`` for a ``speed`` that is not a finite number > 0 or None.
        """
        if speed is not None and not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be a finite number > 0 or None, got {speed!r}")
        self.path = os.fspath(path)
        self.speed = speed
        self.default_mode = Mode(default_mode)
        self._modes: dict[int, str] | None = None
        self._file: Any = None
        self._rows: Iterator[tuple[int, int, int, str, bytes]] | None = None
        self._pending: list[FeedItem] = []
        self._info: FrameInfo | None = None
        self._last: FrameInfo | None = None
        self._start: tuple[float, int] | None = None  # (monotonic, first receive time in us)
        self._served = 0
        self._frames = self._ticks = self._text = self._malformed = self._stale = 0
        self._total = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<ReplayFeed {self.path!r} speed={self.speed!r}>"

    async def __aenter__(self) -> Self:
        """Open the recording. Raises ``OSError`` (or pyarrow's error) for a missing or
        unreadable file, ``RuntimeError`` when entered twice. Cancellation: nothing is
        open when it propagates."""
        if self._file is not None or self._closed:
            raise RuntimeError("a ReplayFeed can be entered only once")
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:  # pragma: no cover
            raise ImportError("replays need pyarrow: pip install 'aio-trader[gateway]'") from exc
        self._file = await anyio.to_thread.run_sync(pq.ParquetFile, self.path)
        self._total = self._file.metadata.num_rows
        self._rows = self._iter_rows()
        return self

    async def aclose(self) -> None:
        """Stop the replay (``async for`` ends) and close the file. Idempotent.
        Cancellation: nothing to wait for."""
        self._closed = True
        self._pending.clear()
        if self._file is not None:
            self._file.close()
        await anyio.lowlevel.checkpoint()

    def _iter_rows(self) -> Iterator[tuple[int, int, int, str, bytes]]:
        columns = ["received", "connection", "seq", "kind", "data"]
        for batch in self._file.iter_batches(batch_size=4096, columns=columns):
            received = batch.column(0).cast("int64").to_pylist()
            yield from zip(
                received,
                batch.column(1).to_pylist(),
                batch.column(2).to_pylist(),
                batch.column(3).to_pylist(),
                batch.column(4).to_pylist(),
                strict=True,
            )

    # -- subscriptions ---------------------------------------------------------------------

    @property
    def subscriptions(self) -> dict[int, Mode] | None:
        """The subscribed instruments with their modes; None: everything recorded."""
        return None if self._modes is None else {t: Mode(m) for t, m in self._modes.items()}

    async def subscribe(self, tokens: Iterable[int], mode: Mode | str | None = None) -> None:
        """Yield only subscribed instruments from now on, ``tokens`` in ``mode``.
        Cancellation: the subscription is made (nothing to wait for)."""
        mode_ = (self.default_mode if mode is None else Mode(mode)).value
        if self._modes is None:
            self._modes = {}
        for token in _tokens(tokens):
            self._modes[token] = mode_
        await anyio.lowlevel.checkpoint()

    async def unsubscribe(self, tokens: Iterable[int]) -> None:
        """Stop yielding ``tokens``. Cancellation: as for :meth:`subscribe`."""
        if self._modes is None:
            self._modes = {}
        for token in _tokens(tokens):
            self._modes.pop(token, None)
        await anyio.lowlevel.checkpoint()

    async def set_mode(self, mode: Mode | str, tokens: Iterable[int]) -> None:
        """Switch subscribed ``tokens`` to ``mode``; ``ValueError`` for one not subscribed.
        Cancellation: as for :meth:`subscribe`."""
        mode_ = Mode(mode).value
        wanted = _tokens(tokens)
        if self._modes is None or any(t not in self._modes for t in wanted):
            raise ValueError("set_mode: subscribe the tokens first")
        for token in wanted:
            self._modes[token] = mode_
        await anyio.lowlevel.checkpoint()

    # -- iteration ---------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[FeedItem]:
        if self._rows is None and not self._closed:
            raise RuntimeError("enter the replay first: async with ReplayFeed(...) as feed")
        return self

    async def __anext__(self) -> FeedItem:
        """The next recorded item; waits for its time when ``speed`` is set.

        Ends (``StopAsyncIteration``) at the end of the recording or once closed.
        Cancellation: raises the backend's cancellation; nothing is lost (the item is
        yielded by the next call).
        """
        self._served += 1
        if self._served >= _YIELD_EVERY:
            self._served = 0
            await anyio.lowlevel.checkpoint()
        while not self._pending:
            if self._closed or self._rows is None:
                raise StopAsyncIteration
            row = next(self._rows, None)
            if row is None:
                raise StopAsyncIteration
            await self._pace(row[0])
            self._decode(row)
        self._last = self._info
        return self._pending.pop()

    @property
    def last_frame(self) -> FrameInfo | None:
        """The recorded frame the last item yielded came from (``entry_id`` is empty)."""
        return self._last

    async def _pace(self, received_us: int) -> None:
        if self.speed is None:
            return
        now = anyio.current_time()
        if self._start is None:
            self._start = (now, received_us)
            return
        due = self._start[0] + (received_us - self._start[1]) / 1e6 / self.speed
        if due > now:
            await anyio.sleep(due - now)

    def _decode(self, row: tuple[int, int, int, str, bytes]) -> None:
        received, connection, seq, kind, data = row
        self._frames += 1
        self._info = FrameInfo("", 0, seq, received / 1e6, connection)
        if kind == "text":
            self._text += 1
            record = decode_text(data)
            if isinstance(record, MalformedPacket):
                self._malformed += 1
            else:
                self._pending.append(record)
            return
        frame, _, stale = filter_frame(data, self._modes)
        self._stale += stale
        if frame is None:
            return
        ticks = decode_frame(frame, self._on_malformed)
        self._ticks += len(ticks)
        ticks.reverse()  # popped from the end: in packet order
        self._pending.extend(ticks)

    def _on_malformed(self, _: MalformedPacket) -> None:
        self._malformed += 1

    def statistics(self) -> ReplayStatistics:  # type: ignore[override]  # (feed-engine: until moved)
        """A frozen snapshot of the counters (see :class:`ReplayStatistics`)."""
        return ReplayStatistics(
            frames=self._frames,
            total=self._total,
            ticks=self._ticks,
            text_frames=self._text,
            malformed=self._malformed,
            stale_mode=self._stale,
            subscribed=0 if self._modes is None else len(self._modes),
        )


def _tokens(tokens: Iterable[int]) -> list[int]:
    if isinstance(tokens, int | str | bytes):
        raise ValueError(f"tokens must be an iterable of ints, got {type(tokens).__name__}")
    out = list(dict.fromkeys(tokens))
    for token in out:
        if not isinstance(token, int) or isinstance(token, bool) or not 0 < token <= 0xFFFFFFFF:
            raise ValueError(f"instrument tokens are positive 32-bit ints, got {token!r}")
    return out

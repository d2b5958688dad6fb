"""``ReplayFeed``: a recorded session played back through the feeder contract.

::

    async with ReplayFeed("session.parquet", speed=None) as feed:   # as fast as possible
        async for item in feed:          # the records the live feed yielded
            ...

A recording is a Parquet file of raw frames with their receive times and codec (written by
:class:`aio_trader.gateway.Recorder` or :func:`aio_trader.gateway.record`; the format is
:mod:`aio_trader._recording`'s). Each frame is decoded with the codec it was recorded with,
the live feed's, so the replay yields the same records, in the same order: tick records
and the text frames' records (order updates, errors, messages).

Without a subscription every recorded instrument is yielded as recorded. After
``subscribe`` only the subscribed instruments are, each cut down to its mode by the codec;
a tick recorded in a poorer mode than asked is yielded as recorded and counted
(``stale_mode``), as :class:`aio_trader.gateway.RedisFeed` does.

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

from aio_trader._codec import Codec, get_codec
from aio_trader.abc import AbstractFeeder
from aio_trader.gateway._wire import FrameInfo

if TYPE_CHECKING:
    from typing_extensions import Self

    from aio_trader._recording import RecordedFrame, RecordingReader
    from aio_trader.kite import FeedItem

__all__ = ["ReplayFeed", "ReplayStatistics"]

_YIELD_EVERY: Final = 64


@attrs.frozen
class ReplayStatistics:
    """A snapshot of a replay's counters: ``frames`` frames read of ``total`` in the file,
    ``ticks`` tick records yielded or waiting, ``text_frames``, ``malformed`` packets or text
    frames skipped, ``stale_mode`` ticks yielded as recorded in a poorer mode than asked,
    ``subscribed`` instruments (0: everything)."""

    frames: int
    total: int
    ticks: int
    text_frames: int
    malformed: int
    stale_mode: int
    subscribed: int


class ReplayFeed(AbstractFeeder[Any, "FeedItem"]):
    """A recording as a feed (see the module doc)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        speed: float | None = 1.0,
        default_mode: str | None = None,
        codec: Codec | str | None = None,
    ) -> None:
        """Set up the replay; the file is opened by ``async with``.

        ``codec`` (a name or a codec) checks the keys and modes subscribed; None: the
        recording's (known once entered). ``default_mode`` None is the codec's default
        (Kite: ``quote``). Each frame is decoded with the codec it was recorded with.

        Raises ``ValueError`` for a ``speed`` that is not a finite number > 0 or None, or
        an unknown codec.
        """
        if speed is not None and not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be a finite number > 0 or None, got {speed!r}")
        self.path = os.fspath(path)
        self.speed = speed
        self._default_mode = default_mode
        self.codec: Codec | None = None if codec is None else get_codec(codec)
        self._codecs: dict[str, Codec | None] = {}
        self._modes: dict[Any, str] | None = None
        self._file: RecordingReader | None = None
        self._rows: Iterator[RecordedFrame] | None = None
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
        from aio_trader._recording import RecordingReader  # needs pyarrow: says so

        reader = await anyio.to_thread.run_sync(RecordingReader(self.path).open)
        if self.codec is None:
            try:
                self.codec = get_codec(reader.codec)
            except ValueError:
                reader.close()
                raise
        self._file = reader
        self._total = reader.total
        self._rows = iter(reader)
        return self

    @property
    def default_mode(self) -> str:
        """The mode of a subscription that names none (the codec's, unless given)."""
        codec = self._codec()
        return codec.mode(codec.default_mode if self._default_mode is None else self._default_mode)

    def _codec(self) -> Codec:
        if self.codec is None:
            raise RuntimeError("enter the replay first: async with ReplayFeed(...) as feed")
        return self.codec

    async def aclose(self) -> None:
        """Stop the replay (``async for`` ends) and close the file. Idempotent.
        Cancellation: nothing to wait for."""
        self._closed = True
        self._pending.clear()
        if self._file is not None:
            self._file.close()
        await anyio.lowlevel.checkpoint()

    # -- subscriptions ---------------------------------------------------------------------

    @property
    def subscriptions(self) -> dict[Any, Any] | None:
        """The subscribed instruments with their modes; None: everything recorded."""
        if self._modes is None:
            return None
        mode = self._codec().mode
        return {key: mode(value) for key, value in self._modes.items()}

    async def subscribe(self, tokens: Iterable[Any], mode: str | None = None) -> None:
        """Yield only subscribed instruments from now on, ``tokens`` in ``mode``.
        ``RuntimeError`` before ``async with`` (the codec is the recording's).
        Cancellation: the subscription is made (nothing to wait for)."""
        codec = self._codec()
        mode_ = str(self.default_mode if mode is None else codec.mode(mode))
        wanted = codec.check_keys(tokens)
        if self._modes is None:
            self._modes = {}
        for token in wanted:
            self._modes[token] = mode_
        await anyio.lowlevel.checkpoint()

    async def unsubscribe(self, tokens: Iterable[Any]) -> None:
        """Stop yielding ``tokens``. Cancellation: as for :meth:`subscribe`."""
        wanted = self._codec().check_keys(tokens)
        if self._modes is None:
            self._modes = {}
        for token in wanted:
            self._modes.pop(token, None)
        await anyio.lowlevel.checkpoint()

    async def set_mode(self, mode: str, tokens: Iterable[Any]) -> None:
        """Switch subscribed ``tokens`` to ``mode``; ``ValueError`` for one not subscribed.
        Cancellation: as for :meth:`subscribe`."""
        codec = self._codec()
        mode_ = str(codec.mode(mode))
        wanted = codec.check_keys(tokens)
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
            await self._pace(row.received_us)
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

    def _decode(self, row: RecordedFrame) -> None:
        self._frames += 1
        self._info = FrameInfo("", 0, row.seq, row.received, row.connection)
        codec = self._codec_of(row.codec)
        if codec is None:
            self._malformed += 1
            return
        if row.text:
            self._text += 1
            record = codec.decode_text(row.data, self._on_malformed)
            if record is not None:
                self._pending.append(record)
            return
        cut = codec.cut(row.data, self._modes)
        self._stale += cut.poorer
        self._malformed += cut.malformed
        if cut.frame is None:
            return
        ticks = codec.decode_binary(cut.frame, self._on_malformed)
        self._ticks += len(ticks)
        ticks.reverse()  # popped from the end: in packet order
        self._pending.extend(ticks)

    def _codec_of(self, name: str) -> Codec | None:
        """The codec a frame was recorded with; None for one not registered here."""
        codec = self.codec
        if codec is not None and name == codec.name:
            return codec
        if name not in self._codecs:
            try:
                self._codecs[name] = get_codec(name)
            except ValueError:
                self._codecs[name] = None
        return self._codecs[name]

    def _on_malformed(self, _: object) -> None:
        self._malformed += 1

    def statistics(self) -> ReplayStatistics:
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

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
(``poorer_mode``), as :class:`~aio_trader.kite.KiteFeed` and
:class:`aio_trader.gateway.RedisFeed` do.

``speed=1.0`` replays in real time (the gaps between receive times), ``2.0`` twice as fast,
``None`` as fast as possible; ``feed.speed`` can be changed while it plays (``None``: the
rest at once). The replay starts once entered, like a live feed: ``subscriptions=`` given
to the constructor apply from the first frame, ``subscribe`` from the next frame read.
Items reach ``async for`` through the one channel of every feeder (:mod:`aio_trader.feed`):
in order, every receive a checkpoint, under the overflow policies of a live feed
(``lossless``, the default, reads the file only as fast as the consumer takes items).
Needs pyarrow (``pip install 'aio-trader[gateway]'``).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias

import anyio
import anyio.abc
import anyio.lowlevel

from aio_trader._codec import Codec, get_codec
from aio_trader._instruments import InstrumentIndex, check_index, resolve_keys
from aio_trader.abc import AbstractFeeder
from aio_trader.errors import ClientClosedError
from aio_trader.feed import Batches, FeedCounters, FeedStatistics, Overflow, make_channel
from aio_trader.feed._channel import EndOfFeed
from aio_trader.feed._engine import MISSING, keys_or_former
from aio_trader.gateway._wire import FrameInfo

if TYPE_CHECKING:
    from typing_extensions import Self

    from aio_trader._recording import RecordedFrame, RecordingReader
    from aio_trader.kite import FeedItem

__all__ = ["ReplayFeed", "ReplayStatistics"]

ReplayStatistics: TypeAlias = FeedStatistics
"""The statistics record of a :class:`ReplayFeed`: the one record of every feeder,
:class:`~aio_trader.feed.FeedStatistics`: ``frames`` frames read, ``ticks`` tick records
decoded, ``text_frames``, ``malformed`` packets or text frames skipped, ``poorer_mode``
ticks yielded as recorded in a poorer mode than asked (``stale_mode`` always 0: a richer
packet is cut down, never dropped), ``subscribed`` instruments (0:
everything), ``lag`` frames of the file not read yet."""

#: One item in the channel: the record and the frame it came from.
_Slot: TypeAlias = tuple[Any, FrameInfo]


class ReplayFeed(AbstractFeeder[Any, "FeedItem"]):
    """A recording as a feed (see the module doc)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        speed: float | None = 1.0,
        default_mode: str | None = None,
        codec: Codec | str | None = None,
        overflow: Overflow | str = Overflow.LOSSLESS,
        buffer_size: int = 10_000,
        subscriptions: Mapping[Any, str] | None = None,
        instruments: InstrumentIndex | None = None,
    ) -> None:
        """Set up the replay; the file is opened by ``async with``.

        ``codec`` (a name or a codec) checks the keys and modes subscribed; None: the
        recording's (known once entered). ``default_mode`` None is the codec's default
        (Kite: ``quote``). Each frame is decoded with the codec it was recorded with.
        ``overflow`` and ``buffer_size`` are a live feed's (at most ``buffer_size`` items
        wait). ``subscriptions`` (key -> mode; ``{}``: nothing until subscribed) apply from
        the first frame; None: every recorded instrument, as recorded, until ``subscribe``.

        ``instruments``: the recorded broker's :class:`~aio_trader.toolkit.InstrumentIndex`;
        with it ``subscriptions`` and the subscription methods also take symbols
        (``"NSE:INFY"``), resolved to keys (``UnknownInstrument`` for one it does not
        know; an index of another broker than the codec's: ``ValueError``, here when
        ``codec`` is given, else on entering).

        Raises ``ValueError`` for a ``speed`` that is not a finite number > 0 or None, a
        ``buffer_size`` below 1, an unknown overflow policy or codec.
        """
        _check_speed(speed)
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size!r}")
        self.path = os.fspath(path)
        self._speed = speed
        self._anchor: tuple[float, int] | None = None  # (clock, receive time in us) at speed
        self._speed_changed: anyio.Event | None = None
        self._initial = None if subscriptions is None else dict(subscriptions)
        self.overflow = Overflow(overflow)
        self.buffer_size = buffer_size
        self._default_mode = default_mode
        self.codec: Codec | None = None if codec is None else get_codec(codec)
        #: The index symbols are resolved through (None: keys only).
        self.instruments = check_index(
            instruments,
            self.codec.name if self.codec is not None else getattr(instruments, "broker", ""),
        )
        self._codecs: dict[str, Codec | None] = {}
        self._modes: dict[Any, str] | None = None
        self._file: RecordingReader | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        #: The producer's own scope (cancelling the task group's would cancel the body of
        #: the ``async with`` too).
        self._scope: anyio.CancelScope | None = None
        self._channel = make_channel(
            self.overflow, buffer_size, is_record=self._is_record, key=self._key
        )
        self._counters = FeedCounters(lag=-1)
        self._last: FrameInfo | None = None
        self._total = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<ReplayFeed {self.path!r} speed={self.speed!r}>"

    @property
    def speed(self) -> float | None:
        """The replay's speed (1.0: real time; None: as fast as possible). Setting it while
        the replay waits for a frame's time takes effect at once, from where the replay is
        (after ``None``: from the next frame). ``ValueError`` for one that is not a finite
        number > 0 or None."""
        return self._speed

    @speed.setter
    def speed(self, speed: float | None) -> None:
        _check_speed(speed)
        old, anchor = self._speed, self._anchor
        if anchor is not None and old is not None and speed is not None:
            # go on from where the replay is now: the same speed changes nothing
            now = anyio.current_time()
            self._anchor = (now, round(anchor[1] + (now - anchor[0]) * old * 1e6))
        else:
            self._anchor = None  # timing restarts from the next frame
        self._speed = speed
        changed = self._speed_changed
        if changed is not None:
            self._speed_changed = anyio.Event()
            changed.set()

    def _is_record(self, slot: Any) -> bool:
        return self._key(slot) is None

    def _key(self, slot: Any) -> Any:
        codec = self.codec
        return None if codec is None else codec.key_of(slot[0])

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Open the recording; the replay starts when it is first read.

        Raises ``OSError`` (or pyarrow's error) for a missing or unreadable file,
        ``ValueError`` for a file that is no recording or of an unknown codec,
        ``RuntimeError`` when entered twice. Cancellation: nothing is open when it
        propagates."""
        if self._stack is not None or self._closed:
            raise RuntimeError("a ReplayFeed can be entered only once")
        from aio_trader._recording import RecordingReader  # needs pyarrow: says so

        reader = await anyio.to_thread.run_sync(RecordingReader(self.path).open)
        stack = contextlib.AsyncExitStack()
        try:
            stack.callback(reader.close)
            if self.codec is None:
                self.codec = get_codec(reader.codec)
            check_index(self.instruments, self.codec.name)
            if self._initial is not None:
                codec = self.codec
                initial = {
                    self._check_keys([key], codec)[0]: mode for key, mode in self._initial.items()
                }
                keys = codec.check_keys(initial)
                self._modes = {key: str(codec.mode(initial[key])) for key in keys}
            self._speed_changed = anyio.Event()
            self._scope = anyio.CancelScope()
            self._file = reader
            self._total = self._counters.lag = reader.total
            self._channel.open()
            stack.callback(self._channel.dispose)  # after the producer ended
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            tg.start_soon(self._produce, iter(reader), self._scope, name=f"replay {self.path}")
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """:meth:`aclose`, then end the replay's task and close the file."""
        await self.aclose()
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def aclose(self) -> None:
        """Stop the replay (``async for`` ends). Idempotent. The file is closed when the
        ``async with`` block is left. Cancellation: nothing to wait for."""
        self._closed = True
        self._channel.close()
        if self._scope is not None:
            self._scope.cancel()
        await anyio.lowlevel.checkpoint()

    @property
    def default_mode(self) -> str:
        """The mode of a subscription that names none (the codec's, unless given)."""
        codec = self._codec()
        return codec.mode(codec.default_mode if self._default_mode is None else self._default_mode)

    def _codec(self) -> Codec:
        if self.codec is None or self._closed or self._stack is None:
            raise ClientClosedError("enter the replay first: async with ReplayFeed(...) as feed")
        return self.codec

    def _check_keys(self, keys: object, codec: Codec) -> list[Any]:
        """The codec's keys of ``keys``, symbols resolved through ``instruments``."""
        return resolve_keys(keys, self.instruments, codec.check_keys)

    # -- subscriptions ---------------------------------------------------------------------

    @property
    def subscriptions(self) -> dict[Any, Any] | None:
        """The subscribed instruments with their modes; None: everything recorded."""
        if self._modes is None or self.codec is None:
            return None
        mode = self.codec.mode
        return {key: mode(value) for key, value in self._modes.items()}

    async def subscribe(
        self, keys: Iterable[Any] = MISSING, mode: str | None = None, *, tokens: Any = MISSING
    ) -> None:
        """Yield only subscribed instruments from the next frame read on, ``keys``
        (``tokens=``: the former name) in ``mode``. ``ClientClosedError`` (a
        ``RuntimeError``) before ``async with`` and after it (the codec is the
        recording's). Cancellation: the subscription is made."""
        codec = self._codec()
        mode_ = str(self.default_mode if mode is None else codec.mode(mode))
        wanted = self._check_keys(keys_or_former(keys, tokens, "subscribe", "tokens"), codec)
        if self._modes is None:
            self._modes = {}
        for token in wanted:
            self._modes[token] = mode_
        await anyio.lowlevel.checkpoint()

    async def unsubscribe(self, keys: Iterable[Any] = MISSING, *, tokens: Any = MISSING) -> None:
        """Stop yielding ``keys`` (``tokens=``: the former name). Raises and cancels as
        :meth:`subscribe`."""
        wanted = self._check_keys(
            keys_or_former(keys, tokens, "unsubscribe", "tokens"), self._codec()
        )
        if self._modes is None:
            self._modes = {}
        for token in wanted:
            self._modes.pop(token, None)
        await anyio.lowlevel.checkpoint()

    async def set_mode(
        self, mode: str, keys: Iterable[Any] = MISSING, *, tokens: Any = MISSING
    ) -> None:
        """Switch subscribed ``keys`` (``tokens=``: the former name) to ``mode``;
        ``ValueError`` for one not subscribed. Raises and cancels as :meth:`subscribe`."""
        codec = self._codec()
        mode_ = str(codec.mode(mode))
        wanted = self._check_keys(keys_or_former(keys, tokens, "set_mode", "tokens"), codec)
        if self._modes is None or any(t not in self._modes for t in wanted):
            raise ValueError("set_mode: subscribe the tokens first")
        for token in wanted:
            self._modes[token] = mode_
        await anyio.lowlevel.checkpoint()

    # -- iteration ---------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[FeedItem]:
        """The replay's items; ``ClientClosedError`` before ``async with`` and after it
        (once closed inside it, the iteration ends)."""
        if self._stack is None:
            raise ClientClosedError("enter the replay first: async with ReplayFeed(...) as feed")
        return self

    async def __anext__(self) -> FeedItem:
        """The next recorded item, in order; waits for its time when ``speed`` is set.
        Every call is a checkpoint.

        Ends (``StopAsyncIteration``) at the end of the recording or once closed.
        Cancellation: raises the backend's cancellation; nothing is lost (the item is
        yielded by the next call).
        """
        item, info = await self._channel.get()
        if type(item) is EndOfFeed:
            raise item.end(self._channel)
        self._last = info
        return item  # type: ignore[no-any-return]

    def batches(self, max_items: int = 1000) -> AsyncIterator[list[FeedItem]]:
        """The items in lists: waits for one, then takes those already waiting (up to
        ``max_items``), one checkpoint per list. ``last_frame`` is the last item's frame.

        ``ValueError`` for ``max_items`` below 1, ``ClientClosedError`` before
        ``async with``. Cancellation: as for ``async for``.
        """
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items!r}")
        self.__aiter__()
        return _Unwrapped(self, Batches(self._channel, max_items))

    @property
    def last_frame(self) -> FrameInfo | None:
        """The recorded frame the last item yielded came from (``entry_id`` is empty)."""
        return self._last

    def statistics(self) -> FeedStatistics:
        """A frozen snapshot of the counters (see :data:`ReplayStatistics`)."""
        return self._counters.snapshot(self._channel, len(self._modes or ()))

    # -- the producer ------------------------------------------------------------------------

    async def _produce(self, rows: Iterator[RecordedFrame], scope: anyio.CancelScope) -> None:
        with scope:
            await self._produce_rows(rows)

    async def _produce_rows(self, rows: Iterator[RecordedFrame]) -> None:
        channel = self._channel
        if channel.closed:
            return
        closed = (anyio.ClosedResourceError, anyio.BrokenResourceError)
        error: BaseException | None = None
        with channel.sender() as send:
            try:
                for row in rows:
                    await self._wait_for(row.received_us)
                    await self._frame(send, row)
            except closed:
                return  # the replay was closed: nobody reads any more
            except Exception as exc:  # noqa: BLE001 - an unreadable file: handed to the reader
                error = exc
            with contextlib.suppress(*closed):  # after every item: ends ``async for`` when read
                await channel.put_record(send, (EndOfFeed(error), None))

    async def _wait_for(self, received_us: int) -> None:
        """Wait for the time of a frame received at ``received_us``, at the current speed;
        a change of speed wakes the wait."""
        while (speed := self._speed) is not None:
            now = anyio.current_time()
            if self._anchor is None:
                self._anchor = (now, received_us)
                return
            due = self._anchor[0] + (received_us - self._anchor[1]) / 1e6 / speed
            if due <= now:
                return
            changed = self._speed_changed
            assert changed is not None, "entered"
            with anyio.move_on_after(due - now):
                await changed.wait()

    async def _frame(self, send: Any, row: RecordedFrame) -> None:
        c = self._counters
        c.frames += 1
        c.lag = self._total - c.frames
        c.bytes += len(row.data)
        c.last_message = row.received
        info = FrameInfo("", 0, row.seq, row.received, row.connection)
        codec = self._codec_of(row.codec)
        if codec is None:
            c.malformed += 1
            return
        if row.text:
            c.text_frames += 1
            record = codec.decode_text(row.data, self._on_malformed)
            if record is not None:
                c.order_updates += codec.is_order_update(record)
                await self._channel.put_record(send, (record, info))
            return
        cut = codec.cut(row.data, self._modes)
        c.poorer_mode += cut.poorer
        c.malformed += cut.malformed
        if cut.frame is None:
            return
        ticks = codec.decode_binary(cut.frame, self._on_malformed)
        c.ticks += len(ticks)
        await self._channel.put_items(send, [(tick, info) for tick in ticks])

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
        self._counters.malformed += 1


class _Unwrapped:
    """:meth:`ReplayFeed.batches`' iterator: the channel's lists without the frame infos."""

    __slots__ = ("_batches", "_feed")

    def __init__(self, feed: ReplayFeed, batches: Batches[_Slot]) -> None:
        self._feed, self._batches = feed, batches

    def __aiter__(self) -> _Unwrapped:
        return self

    async def __anext__(self) -> list[Any]:
        batch = await self._batches.__anext__()
        end = batch[-1][0]
        if type(end) is EndOfFeed:  # the last item: nothing comes after it
            del batch[-1]
            stop = end.end(self._feed._channel)  # the next call ends (this one, if empty)
            if not batch:
                raise stop
        self._feed._last = batch[-1][1]
        return [item for item, _ in batch]


def _check_speed(speed: float | None) -> None:
    if speed is not None and not (speed > 0 and math.isfinite(speed)):
        raise ValueError(f"speed must be a finite number > 0 or None, got {speed!r}")

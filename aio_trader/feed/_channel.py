"""The one channel between a feed's producers and its reader, and the feeds' statistics.

Every feeder (``KiteFeed``, ``RawKiteFeed``, ``RedisFeed``, ``ReplayFeed``, the next
brokers' feeds) hands its items to ``async for`` through a channel built here by
:func:`make_channel`, under one of three :class:`Overflow` policies:

- ``lossless``: an anyio memory object stream holding at most ``size`` items (counted by
  the channel; a frame's items travel through it as one piece). When it is full, a
  producer waits until the reader took half of them (a socket reader then stops reading:
  TCP flow control slows the server down; nothing is lost).
- ``drop_oldest``: the stream is bounded at ``size``; when it is full the channel takes the
  oldest item out of it through its own receive clone (an item is dropped and counted in
  ``dropped``). Records (``is_record``) are never dropped: one taken out is kept aside and
  delivered first (it is older than everything in the stream); past ``size`` records
  waiting, a producer of records waits, as in ``lossless``.
- ``conflate``: a dict of the newest item per key (``key``: any hashable; Kite's is the
  instrument token) plus a stream of keys: a new item replaces the waiting one in its place
  in line (counted in ``dropped``). At most one item per key waits (whatever ``size``).
  Records go through the key stream in their place, never dropped; past ``size`` of them
  waiting, a producer of records waits.

Producers each take a send clone (:meth:`Channel.sender`, one per connection or reading
task) and put a frame's items with :meth:`Channel.put_items` and a record with
:meth:`Channel.put_record`. The reader calls :meth:`Channel.get` (every call a checkpoint:
a busy ``async for`` body never starves the producers, and a cancel scope around the loop
ends it on time) or :meth:`Channel.get_batch` (one checkpoint per list of the items already
waiting). ``Channel`` is itself an async iterator of items; :class:`Batches` iterates lists.

**Acknowledgements** (``ack``): a producer whose source wants to know when the items it
put were read (``RedisFeed`` acknowledges a Redis stream entry once its items were
consumed) calls :meth:`Channel.put_ack` after the items with a token of its own; in
``lossless`` the channel calls ``ack(token)`` once every item put before it was handed out
and the reader asked for more (the next :meth:`~Channel.get` or
:meth:`~Channel.get_batch`), or when the channel is closed with those items read. A token
is not an item: it takes no room (``size`` counts items), is not counted in ``len()``
(a feed's ``buffered``) and no reader sees it. In
``drop_oldest`` and ``conflate`` items may be dropped anyway: ``ack(token)`` is called at
once.

:class:`FeedStatistics` is the one statistics record of every feeder;
:class:`FeedCounters` the mutable counts a feeder keeps and snapshots into it.
"""

from __future__ import annotations

import collections
import datetime
import enum
import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Final, Generic, TypeAlias, TypeVar

import anyio
import anyio.lowlevel
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from aio_trader._time import IST

__all__ = [
    "Batches",
    "Channel",
    "EndOfFeed",
    "FeedCounters",
    "FeedStatistics",
    "Overflow",
    "Sender",
    "make_channel",
    "never_a_record",
]

ItemT = TypeVar("ItemT")

#: A producer's send clone (:meth:`Channel.sender`).
Sender: TypeAlias = MemoryObjectSendStream[Any]


class Overflow(str, enum.Enum):
    """What a feed does when the consumer is slower than the items (see the module doc)."""

    LOSSLESS = "lossless"
    DROP_OLDEST = "drop_oldest"
    CONFLATE = "conflate"

    def __str__(self) -> str:
        return str(self.value)


# -- statistics -------------------------------------------------------------------------


@attrs.frozen
class FeedStatistics:
    """A snapshot of a feed's counters (``feed.statistics()``), totals over all connections.

    ``frames`` frames with ticks (binary frames; for a gateway consumer or a replay, the
    frames read), ``ticks`` tick packets decoded (for a raw feed: announced), ``bytes``
    bytes of every frame received (text included), ``heartbeats`` heartbeat frames,
    ``text_frames`` text frames (``order_updates`` of them order updates), ``malformed``
    packets or text frames skipped, ``dropped`` items dropped or conflated by the overflow
    policy, ``stale_mode`` ticks dropped because they came in a richer mode than asked
    (before a switch to a poorer mode took effect), ``poorer_mode`` ticks delivered although
    they came in a poorer mode than asked (before a switch to a richer mode took effect:
    for an illiquid instrument the only price for a while), ``reconnects`` reconnection
    attempts after a drop (a gateway consumer: Redis errors retried), ``connections``
    connections open now, ``subscribed`` instruments subscribed, ``buffered`` items
    waiting to be read, ``last_message_time`` when the last frame of any kind arrived (aware, IST).

    Sources with a position also report: ``duplicates`` frames skipped as delivered twice
    by the source, ``gaps`` gap records yielded (``missed_frames`` frames they reported
    missed), ``acked`` source entries acknowledged, ``lag`` frames known to wait at the
    source after the last one read (-1: unknown, or a live socket).
    """

    frames: int
    ticks: int
    bytes: int
    heartbeats: int
    text_frames: int
    order_updates: int
    malformed: int
    dropped: int
    stale_mode: int
    reconnects: int
    connections: int
    subscribed: int
    buffered: int
    last_message_time: datetime.datetime | None
    duplicates: int = 0
    gaps: int = 0
    missed_frames: int = 0
    acked: int = 0
    lag: int = -1
    poorer_mode: int = 0


@attrs.define
class FeedCounters:
    """The mutable counts behind :class:`FeedStatistics` (a feeder bumps them in place).

    ``last_message`` is ``time.time()`` of the last frame. :meth:`snapshot` adds what the
    counters do not hold (the channel's drops and length, the subscription count).
    """

    frames: int = 0
    ticks: int = 0
    bytes: int = 0
    heartbeats: int = 0
    text_frames: int = 0
    order_updates: int = 0
    malformed: int = 0
    stale_mode: int = 0
    reconnects: int = 0
    connections: int = 0
    duplicates: int = 0
    gaps: int = 0
    missed_frames: int = 0
    acked: int = 0
    lag: int = -1
    poorer_mode: int = 0
    last_message: float | None = None

    def snapshot(self, channel: Channel[Any], subscribed: int) -> FeedStatistics:
        """A frozen :class:`FeedStatistics` of these counts and ``channel``'s."""
        last = self.last_message
        return FeedStatistics(
            frames=self.frames,
            ticks=self.ticks,
            bytes=self.bytes,
            heartbeats=self.heartbeats,
            text_frames=self.text_frames,
            order_updates=self.order_updates,
            malformed=self.malformed,
            dropped=channel.dropped,
            stale_mode=self.stale_mode,
            reconnects=self.reconnects,
            connections=self.connections,
            subscribed=subscribed,
            buffered=len(channel),
            last_message_time=None if last is None else datetime.datetime.fromtimestamp(last, IST),
            duplicates=self.duplicates,
            gaps=self.gaps,
            missed_frames=self.missed_frames,
            acked=self.acked,
            lag=self.lag,
            poorer_mode=self.poorer_mode,
        )


# -- the channel ------------------------------------------------------------------------


def never_a_record(item: object) -> bool:
    """The default ``is_record``: every item may be dropped or conflated."""
    return False


class _Ack:
    """An acknowledgement token waiting in the stream behind the items it covers."""

    __slots__ = ("token",)

    def __init__(self, token: object) -> None:
        self.token = token


class _Record:
    """A record in ``conflate``'s key stream (keys are any hashable: a record is wrapped)."""

    __slots__ = ("item",)

    def __init__(self, item: object) -> None:
        self.item = item


class EndOfFeed:
    """An in-band last item: a producer that ends (a recording's end, a wrapped feed's)
    puts it after its last items, so a reader gets every item before the end.

    A reader that takes it raises ``end_of_feed.end(channel)``: the channel is closed
    (with ``error``) and the result is what to raise (``StopAsyncIteration``, or
    ``error`` as itself).
    """

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def end(self, channel: Channel[Any]) -> BaseException:
        channel.close(self.error)
        return StopAsyncIteration() if self.error is None else self.error


class Channel(Generic[ItemT]):
    """``lossless``: one memory object stream holding at most ``size`` items; producers
    wait for room.

    A frame's items go through the stream as one piece (a slice of them), not one by
    one; the reader takes a piece into its ``head`` and hands the items out of it, each
    :meth:`get` still a checkpoint. The channel counts the items itself (the stream is
    unbounded): when ``size`` wait, a producer waits until the reader has taken half of
    them, then adds items again without waiting. So a producer ahead of its reader wakes
    once per ``size // 2`` items, not once per item (a wake per item, with its own
    checkpoint, cost about as much as the item).

    Producers each use their own send clone (:meth:`sender`); the reader is ``async for``
    (:meth:`get`: every call a checkpoint). :meth:`close` ends the stream at once, dropping
    what waits; readers then get ``StopAsyncIteration`` or the error it was closed with.
    Build one with :func:`make_channel`.
    """

    def __init__(
        self,
        size: int,
        is_record: Callable[[object], bool] = never_a_record,
        key: Callable[[Any], Hashable] | None = None,
        ack: Callable[[Any], None] | None = None,
        *,
        stream_size: float = math.inf,
    ) -> None:
        self.size = size
        #: Items dropped or conflated by the policy.
        self.dropped = 0
        self._is_record = is_record
        self._key = key
        self._ack = ack
        self._acks: list[Any] = []  # tokens due at the next get
        self._stream_size = stream_size
        self._send: Sender | None = None
        self._receive: MemoryObjectReceiveStream[Any] | None = None
        self._closed = False
        self._error: BaseException | None = None
        self._items = 0  # lossless: items in the stream
        self._resume: anyio.Event | None = None  # lossless: set when producers may go on
        self._low = size // 2  # lossless: producers go on once at most this many wait
        self._head: collections.deque[Any] = collections.deque()  # lossless: taken, not read

    def open(self) -> None:
        """Create the stream (on the feed's entry: nothing is open before)."""
        self._send, self._receive = anyio.create_memory_object_stream[Any](self._stream_size)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def dispose(self) -> None:
        """Close the receive side too, once no producer is left (the feed's exit)."""
        self.close()
        if self._receive is not None:
            self._receive.close()

    def sender(self) -> Sender:
        """A send clone for one producer (close it when the producer ends)."""
        assert self._send is not None, "opened on entry"
        return self._send.clone()

    def __len__(self) -> int:
        return self._items

    async def put_items(self, send: Sender, items: Sequence[ItemT]) -> None:
        """Add one frame's items; when ``size`` wait, waits until the reader took half of
        them. Once closed, adds nothing.

        Cancellation: the items before the one waiting are in, the rest are not.
        """
        start, count = 0, len(items)
        while start < count:
            room = self.size - self._items
            if room <= 0 or self._closed:
                if not await self._wait_for_room():
                    return
                continue
            piece = items[start : start + room]  # a copy: the caller may reuse its list
            send.send_nowait(piece)
            self._items += len(piece)
            start += len(piece)

    async def put_record(self, send: Sender, record: ItemT) -> None:
        """Add a record (never dropped nor conflated); waits for room as :meth:`put_items`.

        Cancellation: nothing was added.
        """
        full = self._items >= self.size or self._closed
        if full and not await self._wait_for_room():
            return
        send.send_nowait((record,))
        self._items += 1

    async def _wait_for_room(self) -> bool:
        """Wait until at most half of ``size`` items wait; ``False`` once closed.

        Cancellation: nothing changes."""
        while self._items >= self.size and not self._closed:
            if self._resume is None:
                self._resume = anyio.Event()
            await self._resume.wait()
        return not self._closed

    def _taken(self, count: int) -> None:
        """``count`` items left the stream: producers may go on once half of it is free."""
        self._items -= count
        if self._resume is not None and self._items <= self._low:
            self._resume.set()
            self._resume = None

    async def put_ack(self, send: Sender, token: object) -> None:
        """Have ``ack(token)`` called once the items put before it were read (see the module
        doc). Without an ``ack`` callback this does nothing; the policies that may drop
        items call it at once.

        Cancellation: nothing was added (the token is never acknowledged).
        """
        self._acknowledge(token)

    def _acknowledge(self, token: object) -> None:
        if self._ack is not None:
            self._ack(token)

    async def get(self) -> ItemT:
        """The next item, in arrival order; a checkpoint, waits when there is none.

        Raises ``StopAsyncIteration`` once closed, or the error it was closed with.
        Cancellation: raises the backend's cancellation, the channel unchanged.
        """
        if self._closed or self._receive is None:
            raise self._end()
        head = self._head
        if head:
            await anyio.lowlevel.checkpoint()
            if self._closed:
                raise self._end()
        if not head:  # (or another reader emptied it meanwhile)
            try:
                piece = await self._receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):  # closed while waiting
                raise self._end() from None
            if self._closed:  # handed over, then closed before this task ran: dropped
                raise self._end()
            head.extend(piece)
        item: ItemT = head.popleft()
        self._items -= 1  # self._taken(1), inline: this is the per-item path
        if self._resume is not None and self._items <= self._low:
            self._resume.set()
            self._resume = None
        return item

    # ``async for item in channel``: ``get`` itself (one coroutine per item, not two). A
    # subclass that overrides ``get`` sets this again.
    __anext__ = get

    async def _next(self) -> Any:
        """The next thing in the stream (the policies' own ``get`` build on it)."""
        if self._closed or self._receive is None:
            raise self._end()
        try:
            piece = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):  # closed while waiting
            raise self._end() from None
        if self._closed:  # handed over, then closed before this task ran: dropped
            raise self._end()
        return piece

    async def get_batch(self, max_items: int) -> list[ItemT]:
        """The next items in arrival order: waits for one (a checkpoint, as :meth:`get`),
        then takes those already waiting, up to ``max_items`` in all, without waiting again.

        Ends and raises as :meth:`get`. Cancellation: raises the backend's cancellation,
        the channel unchanged (only the wait for the first item can be cancelled).
        """
        batch = [await self.get()]
        if max_items > 1:
            self._take_waiting(batch, max_items)
        return batch

    def _take_waiting(self, batch: list[ItemT], max_items: int) -> None:
        """Append the items already waiting to ``batch``, until it holds ``max_items``."""
        assert self._receive is not None, "get() returned an item: opened"
        start, head = len(batch), self._head
        while len(batch) < max_items:
            if not head:
                piece = self._piece()
                if piece is None:
                    break
                head.extend(piece)
            need = max_items - len(batch)
            if len(head) <= need:
                batch.extend(head)
                head.clear()
            else:
                batch.extend([head.popleft() for _ in range(need)])
        self._taken(len(batch) - start)

    def _piece(self) -> Any:
        """The next piece of items already in the stream, ``None`` if there is none."""
        assert self._receive is not None
        try:
            return self._receive.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream):
            return None

    def _end(self) -> BaseException:
        return self._error if self._error is not None else StopAsyncIteration()

    def __aiter__(self) -> Channel[ItemT]:
        return self

    def close(self, error: BaseException | None = None) -> None:
        """End the stream: readers get ``error`` (or ``StopAsyncIteration``) at once; what
        still waits is dropped; waiting producers return."""
        if self._closed:
            return
        self._closed, self._error = True, error
        if self._resume is not None:
            self._resume.set()
            self._resume = None
        if self._send is None or self._receive is None:
            return  # never opened
        self._send.close()  # the producers' clones close as their tasks end
        self._drain()
        self._head.clear()
        self._items = 0

    def _drain(self) -> None:
        assert self._receive is not None
        while True:  # free what waits (waiting senders are being cancelled)
            try:
                self._receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream):
                break


class _AckingLossless(Channel[ItemT]):
    """``lossless`` with acknowledgements: a token put after items waits in the stream
    behind them; reaching it means they were handed out (see the module doc).

    The tokens are not items: they take no room, do not count in ``len()`` (``buffered``)
    and no reader sees them."""

    async def put_ack(self, send: Sender, token: object) -> None:
        """Have ``ack(token)`` called once the items put before it were read and the reader
        asked for more; never waits (the token takes no room)."""
        if not self._closed:
            send.send_nowait(_Ack(token))

    def _flush_acks(self) -> None:
        acks, self._acks = self._acks, []
        for token in acks:
            self._acknowledge(token)

    async def get(self) -> ItemT:
        if self._acks:
            self._flush_acks()
        head = self._head
        if head:
            await anyio.lowlevel.checkpoint()
            if self._closed:
                raise self._end()
        while not head:  # (or another reader emptied it meanwhile)
            piece = await self._next()
            if type(piece) is _Ack:
                self._acknowledge(piece.token)  # the items before it were handed out
            else:
                head.extend(piece)
        self._taken(1)
        return head.popleft()  # type: ignore[no-any-return]

    __anext__ = get

    def _piece(self) -> Any:
        while True:
            piece = super()._piece()
            if type(piece) is not _Ack:
                return piece
            self._acks.append(piece.token)  # its items are in this batch: at the next ask

    def close(self, error: BaseException | None = None) -> None:
        """End the stream as :meth:`Channel.close`, after acknowledging what was read (the
        tokens due and those at the head of the stream); what waits stays unacknowledged."""
        if self._closed:
            return
        self._flush_acks()
        if self._receive is not None and not self._head:
            while True:
                try:
                    item = self._receive.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
                if type(item) is not _Ack:
                    break  # an item never read: what follows stays unacknowledged
                self._acknowledge(item.token)
        super().close(error)


class _RecordsBounded(Channel[ItemT]):
    """A channel that never drops records but holds at most ``size`` of them waiting: past
    that, ``put_record`` waits for one to be read. Acknowledges at once (``put_ack``)."""

    def __init__(
        self,
        size: int,
        is_record: Callable[[object], bool] = never_a_record,
        key: Callable[[Any], Hashable] | None = None,
        ack: Callable[[Any], None] | None = None,
        *,
        stream_size: float = math.inf,
    ) -> None:
        super().__init__(size, is_record, key, ack, stream_size=stream_size)
        self._records = 0
        self._room = anyio.Event()

    def __len__(self) -> int:
        if self._receive is None:
            return 0
        return self._receive.statistics().current_buffer_used

    def _taken(self, count: int) -> None:
        pass  # producers never wait for items here (they drop or conflate)

    def _take_waiting(self, batch: list[ItemT], max_items: int) -> None:
        """Append the items already waiting to ``batch`` (one item per stream entry)."""
        assert self._receive is not None, "get() returned an item: opened"
        receive, append = self._receive.receive_nowait, batch.append
        try:
            for _ in range(max_items - len(batch)):
                append(receive())
        except (anyio.WouldBlock, anyio.EndOfStream):
            pass

    async def _reserve_record(self) -> bool:
        """Wait for room for one more record and count it; ``False`` once closed.

        Cancellation: nothing counted."""
        while self._records >= self.size and not self._closed:
            if self._room.is_set():
                self._room = anyio.Event()
            await self._room.wait()
        if self._closed:
            return False
        self._records += 1
        return True

    def _taken_record(self) -> None:
        self._records -= 1
        self._room.set()

    def close(self, error: BaseException | None = None) -> None:
        super().close(error)
        self._room.set()


class _DropOldest(_RecordsBounded[ItemT]):
    """``drop_oldest``: when the stream is full, its oldest item is taken out through the
    channel's own receive clone; an item is dropped, a record kept aside and served first.
    At most ``size`` records wait (in the stream or aside); past that ``put_record`` waits."""

    def __init__(
        self,
        size: int,
        is_record: Callable[[object], bool] = never_a_record,
        key: Callable[[Any], Hashable] | None = None,
        ack: Callable[[Any], None] | None = None,
    ) -> None:
        super().__init__(size, is_record, key, ack, stream_size=size)
        self._oldest: MemoryObjectReceiveStream[Any] | None = None
        self._aside: collections.deque[ItemT] = collections.deque()

    def open(self) -> None:
        super().open()
        assert self._receive is not None
        self._oldest = self._receive.clone()

    def dispose(self) -> None:
        super().dispose()
        if self._oldest is not None:
            self._oldest.close()

    def __len__(self) -> int:
        return super().__len__() + len(self._aside)

    def _push(self, send: Sender, item: ItemT) -> None:
        while True:
            try:
                send.send_nowait(item)
                return
            except anyio.WouldBlock:
                assert self._oldest is not None, "opened on entry"
                oldest = self._oldest.receive_nowait()  # full, so there is one
                if self._is_record(oldest):
                    self._aside.append(oldest)
                else:
                    self.dropped += 1

    async def put_items(self, send: Sender, items: Sequence[ItemT]) -> None:
        """Add one frame's items, dropping the oldest; never waits."""
        for item in items:
            self._push(send, item)

    async def put_record(self, send: Sender, record: ItemT) -> None:
        """Add a record; waits while ``size`` records wait. Cancellation: nothing added."""
        if await self._reserve_record():
            self._push(send, record)

    async def get(self) -> ItemT:
        if self._aside and not self._closed:
            await anyio.lowlevel.checkpoint()
            if self._aside and not self._closed:
                item = self._aside.popleft()
                self._taken_record()
                return item
        item = await self._next()
        if self._is_record(item):
            self._taken_record()
        return item

    __anext__ = get

    def _take_waiting(self, batch: list[ItemT], max_items: int) -> None:
        aside = self._aside
        while aside and len(batch) < max_items:  # older than everything in the stream
            batch.append(aside.popleft())
            self._taken_record()
        start = len(batch)
        super()._take_waiting(batch, max_items)
        is_record = self._is_record
        for n in range(start, len(batch)):
            if is_record(batch[n]):
                self._taken_record()

    def close(self, error: BaseException | None = None) -> None:
        super().close(error)
        self._aside.clear()


class _Conflate(_RecordsBounded[ItemT]):
    """``conflate``: a dict of the newest item per key plus a stream of keys (a key is sent
    once, when it has no item waiting); records go through the key stream in their place,
    wrapped (keys are any hashable)."""

    def __init__(
        self,
        size: int,
        is_record: Callable[[object], bool] = never_a_record,
        key: Callable[[Any], Hashable] | None = None,
        ack: Callable[[Any], None] | None = None,
    ) -> None:
        if key is None:
            raise ValueError("the conflate policy needs a key function (the item's instrument)")
        super().__init__(size, is_record, key, ack, stream_size=math.inf)
        self._key_of: Callable[[Any], Hashable] = key
        self._latest: dict[Hashable, ItemT] = {}

    async def put_items(self, send: Sender, items: Sequence[ItemT]) -> None:
        """Add one frame's items, each replacing its key's waiting one; never waits."""
        latest, key_of = self._latest, self._key_of
        for item in items:
            key = key_of(item)
            if key in latest:
                self.dropped += 1
                latest[key] = item
            else:
                latest[key] = item
                send.send_nowait(key)

    async def put_record(self, send: Sender, record: ItemT) -> None:
        """Add a record in its place; waits while ``size`` records wait. Cancellation:
        nothing added."""
        if await self._reserve_record():
            send.send_nowait(_Record(record))

    async def get(self) -> ItemT:
        key: Any = await self._next()
        if type(key) is _Record:
            self._taken_record()
            return key.item  # type: ignore[return-value]
        return self._latest.pop(key)

    __anext__ = get

    def _take_waiting(self, batch: list[ItemT], max_items: int) -> None:
        assert self._receive is not None, "get() returned an item: opened"
        receive, latest = self._receive.receive_nowait, self._latest
        try:
            for _ in range(max_items - len(batch)):
                key = receive()
                if type(key) is _Record:
                    self._taken_record()
                    batch.append(key.item)  # type: ignore[arg-type]
                else:
                    batch.append(latest.pop(key))
        except (anyio.WouldBlock, anyio.EndOfStream):
            pass

    def close(self, error: BaseException | None = None) -> None:
        super().close(error)
        self._latest.clear()


class Batches(Generic[ItemT]):
    """``feed.batches()``' iterator: one :meth:`Channel.get_batch` per step."""

    __slots__ = ("_channel", "_max_items")

    def __init__(self, channel: Channel[ItemT], max_items: int) -> None:
        self._channel = channel
        self._max_items = max_items

    def __aiter__(self) -> Batches[ItemT]:
        return self

    async def __anext__(self) -> list[ItemT]:
        return await self._channel.get_batch(self._max_items)


_CHANNELS: Final[dict[Overflow, type[Channel[Any]]]] = {
    Overflow.LOSSLESS: Channel,
    Overflow.DROP_OLDEST: _DropOldest,
    Overflow.CONFLATE: _Conflate,
}


def make_channel(
    overflow: Overflow | str,
    size: int,
    *,
    is_record: Callable[[object], bool] = never_a_record,
    key: Callable[[Any], Hashable] | None = None,
    ack: Callable[[Any], None] | None = None,
) -> Channel[Any]:
    """A channel under ``overflow`` holding up to ``size`` items (see the module doc).

    ``is_record(item)`` tells the items never dropped nor conflated (order updates, errors,
    gaps) from ticks; ``key(item)`` an item's conflation key (any hashable; needed by
    ``conflate``: ``ValueError`` without it); ``ack(token)`` is called for the tokens of
    :meth:`Channel.put_ack`. Call ``open()`` on the feed's entry, ``dispose()`` on its exit.
    """
    policy = Overflow(overflow)
    if policy is Overflow.LOSSLESS and ack is not None:
        return _AckingLossless(size, is_record, key, ack)
    return _CHANNELS[policy](size, is_record, key, ack)

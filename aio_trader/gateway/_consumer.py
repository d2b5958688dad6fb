"""``RedisFeed``: a gateway's frames read from Redis, through the same contract as ``KiteFeed``.

::

    async with RedisFeed(redis="redis://localhost:6379", name="strategy-1") as feed:
        await feed.subscribe([408065, 884737], mode="full")
        async for item in feed:        # the same records as KiteFeed: ticks, OrderUpdate...
            ...

A consumer asks for instruments through Redis (its wishes, with a heartbeat); the gateway
subscribes the union of all live consumers' wishes, in the richest mode asked. Each consumer
sees only its own instruments, each in its own mode (a richer packet is cut down: Kite's
packet layouts are prefixes of one another), and every text frame (order updates, errors,
messages), as :class:`~aio_trader.kite.KiteFeed` would. Ticks of a poorer mode than asked
(while the gateway's mode switch is under way) are dropped and counted (``stale_mode``).

**Delivery guarantee** (``overflow="lossless"``, the default): at least once, in order, per
named consumer. Each name is a Redis consumer group; a frame's entry is acknowledged once
every item of it was yielded and the next item was asked for (acknowledgements are sent in
batches, before each read from Redis, every ``heartbeat`` seconds and on close). After a
restart under the same name the feed first yields again the frames it had read but not
acknowledged (so a frame may be yielded twice, whole, never a part of one twice unless the
whole frame is), then continues with the frames published since. A frame published twice
(the gateway retried an append whose reply was lost) is skipped (``duplicates``).

**Gaps are never silent.** Frames carry sequence numbers. If the stream was trimmed past a
consumer's position (it was away or behind longer than the gateway's ``retention``), the
feed yields a :class:`FeedGap` record with the number of frames missed before the next item,
and counts them (``statistics().gaps``, ``missed_frames``). A stream that was reset (Redis
lost its data) yields a ``FeedGap`` with ``missed=None`` (unknown).

**Slow consumers** (:class:`~aio_trader.kite.Overflow`): ``lossless`` reads Redis only as
fast as the consumer takes items (at most ``buffer_size`` ticks wait in memory): the backlog
waits in Redis, up to its retention. ``drop_oldest`` and ``conflate`` read on regardless and
keep the newest ticks (``drop_oldest``) or the newest tick per instrument (``conflate``),
counted in ``dropped``; they acknowledge at read, so a restart resumes after what was read.
Text records and gaps are never dropped.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from aio_trader._time import IST
from aio_trader.abc import AbstractFeeder
from aio_trader.backoff import Backoff
from aio_trader.gateway._redis import (
    RETRYABLE,
    DuplicateGroupError,
    RedisError,
    ResponseError,
    check_redis,
    open_client,
)
from aio_trader.gateway._wire import FrameInfo, Keys, filter_frame
from aio_trader.kite import (
    FeedError,
    FeedItem,
    FeedStatistics,
    MalformedPacket,
    Mode,
    OrderUpdate,
    Overflow,
    decode_frame,
    decode_text,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["FeedGap", "RedisFeed", "RedisFeedItem", "RedisFeedStatistics"]

log = logging.getLogger(__name__)

#: The consumer's name inside its group (one reader per group: the group is the name).
_CONSUMER: Final = "feed"
_REDIS_BACKOFF: Final = Backoff(base=0.05, factor=2.0, cap=2.0, max_attempts=None)
_YIELD_EVERY: Final = 64


@attrs.frozen
class FeedGap:
    """Frames the consumer will never see: the stream was trimmed past its position.

    ``missed`` frames (``None``: unknown, the stream was reset) were published between the
    frame ``after_seq`` (the last one this consumer read, ``None`` if unknown) and
    ``next_seq``, the next one it reads, in the gateway's ``epoch``.
    """

    missed: int | None
    after_seq: int | None
    next_seq: int
    epoch: int


#: What :class:`RedisFeed` yields: :data:`~aio_trader.kite.FeedItem`, or a :class:`FeedGap`.
RedisFeedItem: TypeAlias = FeedItem | FeedGap


@attrs.frozen
class RedisFeedStatistics(FeedStatistics):
    """A snapshot of a consumer's counters (``feed.statistics()``).

    The fields of :class:`~aio_trader.kite.FeedStatistics`, counted on the frames read from
    Redis (``frames`` binary frames read, ``ticks`` ticks decoded for this consumer,
    ``heartbeats`` always 0: the gateway does not publish them, ``reconnects`` Redis errors
    retried, ``connections`` 1 while the last Redis call succeeded), and: ``duplicates``
    frames skipped as published twice, ``gaps`` :class:`FeedGap` records, ``missed_frames``
    frames they reported missed, ``acked`` entries acknowledged, ``lag`` entries in the stream
    after the last one read (at the last heartbeat; -1 unknown). (The fields are
    :class:`~aio_trader.feed.FeedStatistics`' own now: the one statistics record.)
    """


@attrs.define
class _Counters:
    frames: int = 0
    ticks: int = 0
    bytes: int = 0
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
    last_message: float | None = None


#: One buffered item: the record, the frame it came from, the entry to acknowledge once it
#: was consumed (the last item of a frame, lossless only).
_Slot: TypeAlias = tuple[Any, FrameInfo, Any]


class _Buffer:
    """Ticks under an overflow policy, plus records that are never dropped (they go first)."""

    def __init__(self, policy: Overflow, size: int) -> None:
        self.policy, self.size, self.dropped = policy, size, 0
        self.records: collections.deque[_Slot] = collections.deque()
        self.ticks: collections.deque[_Slot] = collections.deque(
            maxlen=size if policy is Overflow.DROP_OLDEST else None
        )
        self.latest: collections.OrderedDict[int, _Slot] = collections.OrderedDict()
        self._readable = anyio.Event()
        self._writable = anyio.Event()
        self._served = 0
        self.closed = False
        self.error: BaseException | None = None

    def __len__(self) -> int:
        return len(self.records) + len(self.ticks) + len(self.latest)

    async def put_ticks(self, slots: list[_Slot]) -> None:
        """Add one frame's ticks; ``lossless`` waits for room (a frame goes in whole once
        the buffer is empty). Cancellation: nothing was added."""
        if self.policy is Overflow.CONFLATE:
            before = len(self.latest)
            for slot in slots:
                token = slot[0].instrument_token
                self.latest.pop(token, None)
                self.latest[token] = slot
            self.dropped += before + len(slots) - len(self.latest)
        elif self.policy is Overflow.DROP_OLDEST:
            self.dropped += max(len(self.ticks) + len(slots) - self.size, 0)
            self.ticks.extend(slots)
        else:
            while self.ticks and len(self.ticks) + len(slots) > self.size and not self.closed:
                if self._writable.is_set():
                    self._writable = anyio.Event()
                await self._writable.wait()
            self.ticks.extend(slots)
        self._readable.set()

    def put_record(self, slot: _Slot) -> None:
        self.records.append(slot)
        self._readable.set()

    async def get(self) -> _Slot:
        self._served += 1
        if self._served >= _YIELD_EVERY:
            self._served = 0
            await anyio.lowlevel.checkpoint()
        while True:
            if self.records:
                return self.records.popleft()
            if self.ticks:
                slot = self.ticks.popleft()
                if not self.ticks or len(self.ticks) <= self.size // 2:
                    self._writable.set()
                return slot
            if self.latest:
                return self.latest.popitem(last=False)[1]
            if self.closed:
                if self.error is not None:
                    raise self.error
                raise StopAsyncIteration
            self._writable.set()
            if self._readable.is_set():
                self._readable = anyio.Event()
            await self._readable.wait()

    def close(self, error: BaseException | None = None) -> None:
        """End the stream: what waits is dropped (unacknowledged: a restart yields it)."""
        if not self.closed:
            self.closed, self.error = True, error
            self.records.clear()
            self.ticks.clear()
            self.latest.clear()
        self._readable.set()
        self._writable.set()


class RedisFeed(AbstractFeeder[int, RedisFeedItem]):
    """A named consumer of a :class:`~aio_trader.gateway.Gateway`'s stream (see the module doc)."""

    def __init__(
        self,
        redis: Any = "redis://127.0.0.1:6379",
        name: str = "default",
        *,
        prefix: str = "aio_trader",
        default_mode: Mode | str = Mode.QUOTE,
        overflow: Overflow | str = Overflow.LOSSLESS,
        buffer_size: int = 10_000,
        heartbeat: float = 1.0,
        timeout: float = 5.0,
        start: Literal["new", "oldest"] = "new",
        batch: int = 256,
        block: float = 1.0,
    ) -> None:
        """Set up the consumer; nothing connects before ``async with``.

        ``redis`` is a ``redis://`` URL (the feed opens and closes its own client) or a
        coredis client the caller has entered. ``name`` is the consumer's identity: its
        consumer group, its wishes, its position (a second feed under a live name shares
        and splits its stream: give each process its own name). ``prefix`` must be the
        gateway's. The feed heartbeats every ``heartbeat`` seconds; the gateway stops
        counting its wishes ``timeout`` seconds after the last one. A name never seen
        before starts with the frames published from now on (``start="new"``) or with the
        oldest one Redis keeps (``"oldest"``). ``batch`` entries are read per round trip,
        waiting at most ``block`` seconds for new ones.

        Raises ``ValueError`` for bad settings.
        """
        check_redis(redis)
        if not name or any(c.isspace() for c in name) or ":" in name:
            raise ValueError(f"name must be a non-empty word without ':', got {name!r}")
        if buffer_size < 1 or batch < 1:
            raise ValueError("buffer_size and batch must be >= 1")
        for what, value in (("heartbeat", heartbeat), ("timeout", timeout), ("block", block)):
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{what} must be a finite number of seconds > 0, got {value!r}")
        if timeout <= heartbeat:
            raise ValueError("timeout must be longer than heartbeat")
        if start not in ("new", "oldest"):
            raise ValueError(f"start must be 'new' or 'oldest', got {start!r}")
        self._redis_arg = redis
        self.name = name
        self.keys = Keys(prefix)
        self.default_mode = Mode(default_mode)
        self.overflow = Overflow(overflow)
        self.buffer_size = buffer_size
        self.heartbeat = heartbeat
        self.timeout = timeout
        self.start = start
        self.batch = batch
        self.block = block
        self._redis: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        #: The tasks' own cancel scopes (cancelling the task group's would cancel the body of
        #: the ``async with`` too).
        self._scopes: list[anyio.CancelScope] = []
        self._modes: dict[int, str] = {}
        self._counters = _Counters()
        self._buffer = _Buffer(self.overflow, buffer_size)
        self._acks: list[Any] = []
        self._ack_next: Any = None
        self._inflight: set[Any] = set()
        self._last: FrameInfo | None = None
        #: (epoch, seq) of the newest frame read by this process, and as last persisted.
        self._read: tuple[int, int] | None = None
        self._pos: tuple[int, int] | None = None
        self._pos_saved: tuple[int, int] | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._stack is not None else "not started"
        return f"<RedisFeed name={self.name!r} prefix={self.keys.prefix!r} {state}>"

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Connect, join the consumer group (created at the first use of the name), announce
        the consumer and start reading. Returns once registered.

        Raises ``RuntimeError`` when entered twice, Redis's error when it cannot be reached.
        Cancellation: what was opened is closed, then the cancellation propagates.
        """
        if self._stack is not None or self._closed:
            raise RuntimeError("a RedisFeed can be entered only once")
        stack = contextlib.AsyncExitStack()
        try:
            self._redis = await open_client(self._redis_arg, stack)
            await self._join()
            await self._announce()
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            tg.start_soon(self._scoped, self._read_loop, name=f"redis-feed-{self.name}-read")
            tg.start_soon(self._scoped, self._heartbeat_loop, name=f"redis-feed-{self.name}-hb")
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
        """:meth:`close`, then end the tasks and close the client (if the feed opened it)."""
        await self.close()
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def aclose(self) -> None:
        """Acknowledge what was consumed, withdraw the consumer's wishes (the gateway drops
        what nobody else wants), stop reading; ``async for`` ends. Idempotent.

        The consumer group stays: the same name resumes where this one stopped. The tasks
        end and the connection closes when the ``async with`` block is left. Cancellation:
        the cleanup runs anyway (shielded; Redis errors are logged and ignored).
        """
        if self._closed:
            return
        self._closed = True
        self._buffer.close()
        for scope in self._scopes:
            scope.cancel()
        if self._ack_next is not None:
            self._acks.append(self._ack_next)
            self._ack_next = None
        if self._redis is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                await self._say_goodbye()
            except (*RETRYABLE, RedisError) as exc:
                log.warning("consumer %s: could not say goodbye (%s)", self.name,
                            type(exc).__name__)  # fmt: skip

    async def _scoped(self, task: Callable[[], Awaitable[None]]) -> None:
        scope = anyio.CancelScope()
        self._scopes.append(scope)
        if self._closed:
            scope.cancel()
        with scope:
            await task()

    async def _say_goodbye(self) -> None:
        keys, redis = self.keys, self._redis
        await self._flush()
        async with redis.pipeline(transaction=False) as pipe:
            pipe.delete([keys.alive(self.name), keys.wants(self.name)])
            pipe.srem(keys.consumers, [self.name])
            pipe.incr(keys.wishes)

    # -- registration ------------------------------------------------------------------

    async def _join(self) -> None:
        keys, redis = self.keys, self._redis
        # a name used before has its group already: it resumes
        with contextlib.suppress(DuplicateGroupError):
            start = "$" if self.start == "new" else "0"
            await redis.xgroup_create(keys.frames, self.name, identifier=start, mkstream=True)
        pos = await redis.hget(keys.pos, self.name)
        if pos:
            epoch, seq = pos.split(b":")
            self._pos = self._pos_saved = (int(epoch), int(seq))

    async def _announce(self) -> None:
        keys = self.keys
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete([keys.wants(self.name)])
            pipe.set(keys.alive(self.name), b"1", px=int(self.timeout * 1000))
            pipe.sadd(keys.consumers, [self.name])
            pipe.incr(keys.wishes)
        self._counters.connections = 1

    # -- subscriptions -----------------------------------------------------------------

    @property
    def subscriptions(self) -> dict[int, Mode]:
        """A copy of this consumer's instruments with their modes."""
        return {token: Mode(mode) for token, mode in self._modes.items()}

    async def subscribe(self, tokens: Iterable[int], mode: Mode | str | None = None) -> None:
        """Ask for ``tokens`` in ``mode`` (default: ``default_mode``); already subscribed
        tokens switch to ``mode``.

        Frames read from the call on are filtered with the new wishes; ticks arrive once
        the gateway has subscribed them (at its next refresh, within its ``poll`` seconds).
        Raises ``ValueError`` for a bad token or mode, ``RuntimeError`` before ``async with``,
        Redis's error if it cannot be reached. Cancellation: the wishes are kept locally and
        may or may not have reached Redis (the next subscribe call writes them all again).
        """
        mode_ = self.default_mode if mode is None else Mode(mode)
        wanted = _check_tokens(tokens)
        self._check_open()
        for token in wanted:
            self._modes[token] = mode_.value
        await self._write_wishes()

    async def unsubscribe(self, tokens: Iterable[int]) -> None:
        """Stop receiving ``tokens`` (tokens not subscribed are ignored). Cancellation: as
        for :meth:`subscribe`."""
        wanted = _check_tokens(tokens)
        self._check_open()
        for token in wanted:
            self._modes.pop(token, None)
        await self._write_wishes()

    async def set_mode(self, mode: Mode | str, tokens: Iterable[int]) -> None:
        """Switch subscribed ``tokens`` to ``mode``; ``ValueError`` for a token not subscribed
        (nothing changes then). Cancellation: as for :meth:`subscribe`."""
        mode_ = Mode(mode)
        wanted = _check_tokens(tokens)
        missing = [t for t in wanted if t not in self._modes]
        if missing:
            raise ValueError(
                f"set_mode: {len(missing)} token(s) not subscribed (first: {missing[0]}); "
                "subscribe them first"
            )
        self._check_open()
        for token in wanted:
            self._modes[token] = mode_.value
        await self._write_wishes()

    def _check_open(self) -> None:
        if self._stack is None or self._closed:
            raise RuntimeError("enter the feed first: async with RedisFeed(...) as feed")

    async def _write_wishes(self) -> None:
        keys = self.keys
        modes = dict(self._modes)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete([keys.wants(self.name)])
            if modes:
                pipe.hset(keys.wants(self.name), {str(t): m for t, m in modes.items()})
            pipe.set(keys.alive(self.name), b"1", px=int(self.timeout * 1000))
            pipe.incr(keys.wishes)

    # -- iteration -----------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[RedisFeedItem]:
        """The stream; ``RuntimeError`` before ``async with``."""
        if self._stack is None and not self._closed:
            raise RuntimeError("enter the feed before reading it: async with RedisFeed(...)")
        return self

    async def __anext__(self) -> RedisFeedItem:
        """The next item; waits for one.

        Asking for it acknowledges the frame of the previous item if that was its last.
        Ends (``StopAsyncIteration``) once the feed is closed. Cancellation: raises the
        backend's cancellation, nothing is lost (the item stays buffered).
        """
        if self._ack_next is not None:
            self._acks.append(self._ack_next)
            self._ack_next = None
        item, info, ack = await self._buffer.get()
        self._last = info
        self._ack_next = ack
        return item  # type: ignore[no-any-return]

    @property
    def last_frame(self) -> FrameInfo | None:
        """Where the last item yielded came from (its frame's entry, sequence number,
        receive time and connection), ``None`` before the first."""
        return self._last

    def statistics(self) -> RedisFeedStatistics:
        """A frozen snapshot of the counters (see :class:`RedisFeedStatistics`)."""
        c = self._counters
        last = c.last_message
        return RedisFeedStatistics(
            frames=c.frames,
            ticks=c.ticks,
            bytes=c.bytes,
            heartbeats=0,
            text_frames=c.text_frames,
            order_updates=c.order_updates,
            malformed=c.malformed,
            dropped=self._buffer.dropped,
            stale_mode=c.stale_mode,
            reconnects=c.reconnects,
            connections=c.connections,
            subscribed=len(self._modes),
            buffered=len(self._buffer),
            last_message_time=None if last is None else datetime.datetime.fromtimestamp(last, IST),
            duplicates=c.duplicates,
            gaps=c.gaps,
            missed_frames=c.missed_frames,
            acked=c.acked,
            lag=c.lag,
        )

    # -- reading -------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            await self._read_forever()
        except Exception as exc:  # noqa: BLE001 - handed to the reader of the feed
            log.error("consumer %s stopped: %s", self.name, type(exc).__name__)
            self._buffer.close(exc)

    async def _read_forever(self) -> None:
        lossless = self.overflow is Overflow.LOSSLESS
        attempts = _REDIS_BACKOFF.attempts()
        key = self.keys.frames
        keyb = key.encode()
        pending = lossless  # first, what this name read before but never acknowledged
        cursor: Any = b"0"
        while True:
            try:
                await self._flush()
                if pending:
                    got = await self._redis.xreadgroup(
                        self.name, _CONSUMER, {key: cursor}, count=self.batch
                    )
                else:
                    got = await self._redis.xreadgroup(
                        self.name,
                        _CONSUMER,
                        {key: ">"},
                        count=self.batch,
                        block=int(self.block * 1000),
                        noack=None if lossless else True,
                    )
                attempts.succeeded()
                self._counters.connections = 1
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning(
                    "consumer %s: the stream or its group vanished; joining anew", self.name
                )
                await self._redis.xgroup_create(key, self.name, identifier="0", mkstream=True)
                pending, cursor = lossless, b"0"
                continue
            except RETRYABLE as exc:
                self._counters.reconnects += 1
                self._counters.connections = 0
                attempts.failed()
                log.warning(
                    "consumer %s: Redis failed (%s); retrying in %.3g s",
                    self.name,
                    type(exc).__name__,
                    attempts.delay,
                )
                await attempts.sleep()
                pending, cursor = lossless, b"0"  # a lost reply left entries pending
                continue
            entries = got.get(keyb, ()) if got else ()
            if pending:
                if not entries:
                    pending = False
                    continue
                cursor = entries[-1].identifier
            await self._take(entries, pending=pending, lossless=lossless)

    async def _take(self, entries: Any, *, pending: bool, lossless: bool) -> None:
        c, buffer, modes = self._counters, self._buffer, self._modes
        for entry in entries:
            entry_id = entry.identifier
            if lossless and entry_id in self._inflight:
                continue  # re-read after a reconnect: already buffered
            fields = entry.field_values
            if not fields:
                # its entry was trimmed while it waited in the pending list
                self._done(entry_id, lossless)
                continue
            epoch, seq = int(fields[b"e"]), int(fields[b"s"])
            read = self._read
            if read is not None and read[0] == epoch and seq <= read[1]:
                c.duplicates += 1
                self._done(entry_id, lossless)
                continue
            if not pending:
                ref = read or self._pos
                if ref is not None and (ref[0] != epoch or seq > ref[1] + 1):
                    missed = seq - ref[1] - 1 if ref[0] == epoch else None
                    c.gaps += 1
                    c.missed_frames += missed or 0
                    log.warning("consumer %s: %s frames missed before seq %d", self.name,
                                "unknown" if missed is None else missed, seq)  # fmt: skip
                    gap = FeedGap(missed, ref[1] if ref[0] == epoch else None, seq, epoch)
                    info0 = FrameInfo(str(entry_id), epoch, seq, float(fields[b"r"]), 0)
                    buffer.put_record((gap, info0, None))
            if read is None or read[0] != epoch or seq > read[1]:
                self._read = (epoch, seq)
            c.last_message = time.time()
            info = FrameInfo(entry_id.decode(), epoch, seq, float(fields[b"r"]), int(fields[b"c"]))
            data = fields.get(b"b")
            if data is not None:
                c.frames += 1
                c.bytes += len(data)
                sub, _, stale = filter_frame(data, modes)
                c.stale_mode += stale
                ticks = decode_frame(sub, self._malformed) if sub is not None else []
                if not ticks:
                    self._done(entry_id, lossless)
                    continue
                c.ticks += len(ticks)
                ack = entry_id if lossless else None
                if lossless:
                    self._inflight.add(entry_id)
                slots: list[_Slot] = [(tick, info, None) for tick in ticks]
                slots[-1] = (ticks[-1], info, ack)
                await buffer.put_ticks(slots)
                continue
            text = fields.get(b"t", b"")
            c.text_frames += 1
            c.bytes += len(text)
            record = decode_text(text)
            if isinstance(record, MalformedPacket):
                self._malformed(record)
                self._done(entry_id, lossless)
                continue
            if isinstance(record, OrderUpdate):
                c.order_updates += 1
            elif isinstance(record, FeedError):
                log.warning("the ticker sent an error: %s", record.message)
            if lossless:
                self._inflight.add(entry_id)
            buffer.put_record((record, info, entry_id if lossless else None))

    def _done(self, entry_id: Any, lossless: bool) -> None:
        """Nothing of this entry is for the consumer: acknowledge it with the next batch."""
        if lossless:
            self._inflight.add(entry_id)  # a re-read after a reconnect skips it
            self._acks.append(entry_id)

    def _malformed(self, bad: MalformedPacket) -> None:
        self._counters.malformed += 1
        log.warning("skipped a malformed frame: %s (offset %d)", bad.reason, bad.offset)

    async def _flush(self) -> None:
        """Send the acknowledgements and the position (one round trip; nothing if none)."""
        acks, read = self._acks, self._read
        if not acks and read == self._pos_saved:
            return
        self._acks = []
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                if acks:
                    pipe.xack(self.keys.frames, self.name, acks)
                if read is not None:
                    pipe.hset(self.keys.pos, {self.name: b"%d:%d" % read})
        except BaseException:
            self._acks = acks + self._acks  # acknowledging twice is harmless
            raise
        self._inflight.difference_update(acks)
        self._counters.acked += len(acks)
        self._pos_saved = read

    async def _heartbeat_loop(self) -> None:
        keys, ttl = self.keys, int(self.timeout * 1000)
        while True:
            await anyio.sleep(self.heartbeat)
            try:
                await self._redis.set(keys.alive(self.name), b"1", px=ttl)
                await self._flush()
                last = await self._redis.xrevrange(keys.frames, count=1)
                read = self._read
                if last and read is not None and int(last[0].field_values[b"e"]) == read[0]:
                    self._counters.lag = max(int(last[0].field_values[b"s"]) - read[1], 0)
            except RETRYABLE as exc:
                log.info("consumer %s: heartbeat failed (%s)", self.name, type(exc).__name__)


def _check_tokens(tokens: Iterable[int]) -> list[int]:
    if isinstance(tokens, int | str | bytes):
        raise ValueError(f"tokens must be an iterable of ints, got {type(tokens).__name__}")
    out = list(dict.fromkeys(tokens))
    for token in out:
        if not isinstance(token, int) or isinstance(token, bool) or not 0 < token <= 0xFFFFFFFF:
            raise ValueError(f"instrument tokens are positive 32-bit ints, got {token!r}")
    return out

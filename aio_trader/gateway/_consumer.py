"""``RedisFeed``: a gateway's frames read from Redis, through the same contract as ``KiteFeed``.

::

    async with RedisFeed(redis="redis://localhost:6379", name="strategy-1") as feed:
        await feed.subscribe([408065, 884737], mode="full")
        async for item in feed:        # the same records as KiteFeed: ticks, OrderUpdate...
            ...

A consumer asks for instruments through Redis (its wishes, with a heartbeat); the gateway
subscribes the union of all live consumers' wishes, in the richest mode asked. Each consumer
sees only its own instruments, each in its own mode (a richer packet is cut down by the
codec each stream entry names: :meth:`aio_trader._codec.Codec.cut`), and every text frame
(order updates, errors, messages), decoded by the entry's codec, as the broker's own feed
(:class:`~aio_trader.kite.KiteFeed`) would yield them. A tick that comes in a poorer mode
than asked (while the gateway's mode switch is under way) is delivered as the poorer record
and counted (``poorer_mode``, as ``KiteFeed`` does): for an illiquid instrument it may be
the only price for minutes.

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

import contextlib
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

from aio_trader._codec import DEFAULT_CODEC, Codec, Malformed, get_codec
from aio_trader._instruments import InstrumentIndex, check_index, resolve_keys
from aio_trader.abc import AbstractFeeder
from aio_trader.backoff import Backoff
from aio_trader.errors import ClientClosedError
from aio_trader.feed import Batches, FeedCounters, FeedStatistics, Overflow, make_channel
from aio_trader.feed._engine import MISSING, keys_or_former
from aio_trader.gateway._redis import (
    RETRYABLE,
    DuplicateGroupError,
    RedisError,
    ResponseError,
    check_redis,
    open_client,
)
from aio_trader.gateway._wire import FrameInfo, Keys, entry_codec

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["FeedGap", "RedisFeed", "RedisFeedItem", "RedisFeedStatistics"]

log = logging.getLogger(__name__)

#: The consumer's name inside its group (one reader per group: the group is the name).
_CONSUMER: Final = "feed"
_REDIS_BACKOFF: Final = Backoff(base=0.05, factor=2.0, cap=2.0, max_attempts=None)


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


if TYPE_CHECKING:
    from aio_trader.kite import FeedItem

    #: What :class:`RedisFeed` yields: the codec's records (Kite:
    #: :data:`~aio_trader.kite.FeedItem`), or a :class:`FeedGap`.
    RedisFeedItem: TypeAlias = FeedItem | FeedGap


def __getattr__(name: str) -> Any:
    # ``RedisFeedItem`` names Kite's records: built on first use, so that importing this
    # module imports no broker
    if name == "RedisFeedItem":
        from aio_trader.kite import FeedItem

        alias = FeedItem | FeedGap
        globals()[name] = alias
        return alias
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


RedisFeedStatistics: TypeAlias = FeedStatistics
"""The statistics record of a :class:`RedisFeed`: the one record of every feeder,
:class:`~aio_trader.feed.FeedStatistics`, counted on the frames read from Redis
(``frames`` binary frames read, ``ticks`` ticks decoded for this consumer, ``heartbeats``
always 0: the gateway does not publish them, ``reconnects`` Redis errors retried,
``connections`` 1 while the last Redis call succeeded, ``poorer_mode`` ticks delivered in
a poorer mode than asked, ``stale_mode`` always 0: a richer packet is cut down, never
dropped), with ``duplicates`` frames skipped as published twice,
``gaps`` :class:`FeedGap` records, ``missed_frames`` frames they reported missed,
``acked`` entries acknowledged, ``lag`` entries in the stream after the last one read
(at the last heartbeat; -1 unknown)."""

#: One item in the channel: the record and the frame it came from.
_Slot: TypeAlias = tuple[Any, FrameInfo]


class RedisFeed(AbstractFeeder[Any, "RedisFeedItem"]):
    """A named consumer of a :class:`~aio_trader.gateway.Gateway`'s stream (see the module doc)."""

    def __init__(
        self,
        redis: Any = "redis://127.0.0.1:6379",
        name: str = "default",
        *,
        prefix: str = "aio_trader",
        default_mode: str | None = None,
        overflow: Overflow | str = Overflow.LOSSLESS,
        buffer_size: int = 10_000,
        heartbeat: float = 1.0,
        timeout: float = 5.0,
        start: Literal["new", "oldest"] = "new",
        batch: int = 256,
        block: float = 1.0,
        codec: Codec | str = DEFAULT_CODEC,
        instruments: InstrumentIndex | None = None,
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
        waiting at most ``block`` seconds for new ones. ``codec`` (a name or a codec: the
        gateway's) checks the keys and modes subscribed; ``default_mode`` None is its
        default (Kite: ``quote``). Each entry is decoded with the codec it names.
        ``instruments``: the broker's :class:`~aio_trader.toolkit.InstrumentIndex`; with
        it the subscription methods also take symbols (``"NSE:INFY"``), resolved to keys
        before any I/O (``UnknownInstrument`` for one it does not know).

        Raises ``ValueError`` for bad settings (an index of another broker than the
        codec's included).
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
        self.codec = get_codec(codec)
        #: The index symbols are resolved through (None: keys only).
        self.instruments = check_index(instruments, self.codec.name)
        self.default_mode = self.codec.mode(
            self.codec.default_mode if default_mode is None else default_mode
        )
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
        self._modes: dict[Any, str] = {}
        #: codec name (bytes, as in the entries) -> codec
        self._codecs: dict[bytes, Codec | None] = {self.codec.name.encode(): self.codec}
        self._counters = FeedCounters(lag=-1)
        key_of = self.codec.key_of
        self._channel = make_channel(
            self.overflow,
            buffer_size,
            is_record=lambda slot: key_of(slot[0]) is None,  # type: ignore[index]
            key=lambda slot: key_of(slot[0]),
            # lossless: the channel says when an entry's items were consumed (``put_ack``);
            # the others read with NOACK
            ack=self._consumed if self.overflow is Overflow.LOSSLESS else None,
        )
        #: Entries to acknowledge with the next round trip.
        self._acks: list[Any] = []
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
            self._channel.open()
            stack.callback(self._channel.dispose)  # after the tasks ended
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
        try:
            await self.close()
        finally:  # whatever close() raised, the tasks end in the task that started them
            stack, self._stack = self._stack, None
            if stack is not None:
                await stack.aclose()

    async def aclose(self) -> None:
        """Acknowledge what was consumed, withdraw the consumer's wishes (the gateway drops
        what nobody else wants), stop reading; ``async for`` ends. Idempotent.

        The consumer group stays: the same name resumes where this one stopped. The tasks
        end and the connection closes when the ``async with`` block is left. Cancellation:
        the cleanup is tried anyway (shielded; Redis errors are logged and ignored). When
        the ``async with`` block itself is left by a cancellation, the client's
        connections may be closed already: the goodbye is then logged as not said, and
        the consumer's wishes stay in Redis until its heartbeat times out (``timeout``),
        as after a crash; the tasks end and the client closes all the same.
        """
        if self._closed:
            return
        self._closed = True
        self._channel.close()  # acknowledges the entries whose items were consumed
        for scope in self._scopes:
            scope.cancel()
        if self._redis is None:
            return
        with anyio.CancelScope(shield=True):
            try:
                await self._say_goodbye()
            # ClosedResourceError: left by a cancellation, the client's connections may
            # be closed already (their tasks run in the cancelled scope)
            except (*RETRYABLE, RedisError, anyio.ClosedResourceError) as exc:
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
    def subscriptions(self) -> dict[Any, Any]:
        """A copy of this consumer's instruments with their modes."""
        mode = self.codec.mode
        return {key: mode(value) for key, value in self._modes.items()}

    async def subscribe(
        self, keys: Iterable[Any] = MISSING, mode: str | None = None, *, tokens: Any = MISSING
    ) -> None:
        """Ask for ``keys`` (instrument tokens; ``tokens=``: the former name) in ``mode``
        (default: ``default_mode``); already subscribed ones switch to ``mode``.

        Frames read from the call on are filtered with the new wishes; ticks arrive once
        the gateway has subscribed them (at its next refresh, within its ``poll`` seconds).
        Raises ``ValueError`` for a bad token or mode, ``ClientClosedError`` (a
        ``RuntimeError``) before ``async with`` and after it,
        Redis's error if it cannot be reached. Cancellation: the wishes are kept locally and
        may or may not have reached Redis (the next subscribe call writes them all again).
        """
        mode_ = str(self.default_mode if mode is None else self.codec.mode(mode))
        wanted = self._check_keys(keys_or_former(keys, tokens, "subscribe", "tokens"))
        self._check_open()
        for token in wanted:
            self._modes[token] = mode_
        await self._write_wishes()

    async def unsubscribe(self, keys: Iterable[Any] = MISSING, *, tokens: Any = MISSING) -> None:
        """Stop receiving ``keys`` (``tokens=``: the former name; keys not subscribed are
        ignored). Cancellation: as for :meth:`subscribe`."""
        wanted = self._check_keys(keys_or_former(keys, tokens, "unsubscribe", "tokens"))
        self._check_open()
        for token in wanted:
            self._modes.pop(token, None)
        await self._write_wishes()

    async def set_mode(
        self, mode: str, keys: Iterable[Any] = MISSING, *, tokens: Any = MISSING
    ) -> None:
        """Switch subscribed ``keys`` (``tokens=``: the former name) to ``mode``;
        ``ValueError`` for a key not subscribed (nothing changes then). Cancellation: as
        for :meth:`subscribe`."""
        mode_ = str(self.codec.mode(mode))
        wanted = self._check_keys(keys_or_former(keys, tokens, "set_mode", "tokens"))
        self._check_open()
        missing = [t for t in wanted if t not in self._modes]
        if missing:
            raise ValueError(
                f"set_mode: {len(missing)} token(s) not subscribed (first: {missing[0]}); "
                "subscribe them first"
            )
        for token in wanted:
            self._modes[token] = mode_
        await self._write_wishes()

    def _check_open(self) -> None:
        if self._stack is None or self._closed:
            raise ClientClosedError("enter the feed first: async with RedisFeed(...) as feed")

    def _check_keys(self, keys: object) -> list[Any]:
        """The codec's keys of ``keys``, symbols resolved through ``instruments``."""
        return resolve_keys(keys, self.instruments, self.codec.check_keys)

    async def _write_wishes(self) -> None:
        keys = self.keys
        modes = dict(self._modes)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete([keys.wants(self.name)])
            if modes:
                text = self.codec.key_text
                pipe.hset(keys.wants(self.name), {text(k): m for k, m in modes.items()})
            pipe.set(keys.alive(self.name), b"1", px=int(self.timeout * 1000))
            pipe.incr(keys.wishes)

    # -- iteration -----------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[RedisFeedItem]:
        """The stream; ``ClientClosedError`` before ``async with`` and after it (once
        closed inside it, the iteration ends)."""
        if self._stack is None:
            raise ClientClosedError("enter the feed before reading it: async with RedisFeed(...)")
        return self

    async def __anext__(self) -> RedisFeedItem:
        """The next item, in arrival order; waits for one. Every call is a checkpoint.

        Asking for it acknowledges the frame of the previous item if that was its last.
        Ends (``StopAsyncIteration``) once the feed is closed. Cancellation: raises the
        backend's cancellation, nothing is lost (the item stays buffered).
        """
        item, self._last = await self._channel.get()
        return item  # type: ignore[no-any-return]

    def batches(self, max_items: int = 1000) -> AsyncIterator[list[RedisFeedItem]]:
        """The items in lists: waits for one, then takes those already waiting (up to
        ``max_items``), one checkpoint per list. ``last_frame`` is the last item's frame.

        ``ValueError`` for ``max_items`` below 1, ``ClientClosedError`` before ``async with``.
        Cancellation: as for ``async for``.
        """
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items!r}")
        self.__aiter__()
        return _Unwrapped(self, Batches(self._channel, max_items))

    @property
    def last_frame(self) -> FrameInfo | None:
        """Where the last item yielded came from (its frame's entry, sequence number,
        receive time and connection), ``None`` before the first."""
        return self._last

    def statistics(self) -> FeedStatistics:
        """A frozen snapshot of the counters (see :data:`RedisFeedStatistics`)."""
        return self._counters.snapshot(self._channel, len(self._modes))

    # -- reading -------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            await self._read_forever()
        except Exception as exc:  # noqa: BLE001 - handed to the reader of the feed
            log.error("consumer %s stopped: %s", self.name, type(exc).__name__)
            self._channel.close(exc)

    async def _read_forever(self) -> None:
        with self._channel.sender() as send:
            await self._read_entries(send)

    async def _read_entries(self, send: Any) -> None:
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
            await self._take(send, entries, pending=pending, lossless=lossless)

    async def _take(self, send: Any, entries: Any, *, pending: bool, lossless: bool) -> None:
        c, channel, modes = self._counters, self._channel, self._modes
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
                    info0 = FrameInfo(entry_id.decode(), epoch, seq, float(fields[b"r"]), 0)
                    await channel.put_record(send, (gap, info0))
            if read is None or read[0] != epoch or seq > read[1]:
                self._read = (epoch, seq)
            c.last_message = time.time()
            info = FrameInfo(entry_id.decode(), epoch, seq, float(fields[b"r"]), int(fields[b"c"]))
            codec = self._codec_of(fields)
            if codec is None:
                c.malformed += 1
                self._done(entry_id, lossless)
                continue
            data = fields.get(b"b")
            if data is not None:
                c.frames += 1
                c.bytes += len(data)
                cut = codec.cut(data, modes)
                c.poorer_mode += cut.poorer
                if cut.malformed:
                    c.malformed += cut.malformed
                    log.warning("skipped %d malformed part(s) of a frame", cut.malformed)
                sub = cut.frame
                ticks = codec.decode_binary(sub, self._malformed) if sub is not None else []
                if not ticks:
                    self._done(entry_id, lossless)
                    continue
                c.ticks += len(ticks)
                if lossless:
                    self._inflight.add(entry_id)
                await channel.put_items(send, [(tick, info) for tick in ticks])
                await channel.put_ack(send, entry_id)
                continue
            text = fields.get(b"t", b"")
            c.text_frames += 1
            c.bytes += len(text)
            record = codec.decode_text(text, self._malformed)
            if record is None:
                self._done(entry_id, lossless)
                continue
            if codec.is_order_update(record):
                c.order_updates += 1
            if lossless:
                self._inflight.add(entry_id)
            await channel.put_record(send, (record, info))
            await channel.put_ack(send, entry_id)

    def _consumed(self, entry_id: Any) -> None:
        """The channel's ``ack``: every item of the entry was consumed (lossless)."""
        self._acks.append(entry_id)

    def _done(self, entry_id: Any, lossless: bool) -> None:
        """Nothing of this entry is for the consumer: acknowledge it with the next batch."""
        if lossless:
            self._inflight.add(entry_id)  # a re-read after a reconnect skips it
            self._acks.append(entry_id)

    def _codec_of(self, fields: dict[bytes, bytes]) -> Codec | None:
        """The codec an entry names (found in the registry the first time); None for a
        name nobody registered in this process (logged once, its entries skipped)."""
        name = fields.get(b"k", b"")
        try:
            return self._codecs[name]
        except KeyError:
            pass
        try:
            codec: Codec | None = get_codec(entry_codec(fields))
        except ValueError as exc:
            log.error("consumer %s: %s; its frames are skipped", self.name, exc)
            codec = None
        self._codecs[name] = codec
        return codec

    def _malformed(self, bad: Malformed) -> None:
        self._counters.malformed += 1
        log.warning("skipped a malformed part of a frame: %s", bad.reason)

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


class _Unwrapped:
    """:meth:`RedisFeed.batches`' iterator: the channel's lists without the frame infos."""

    __slots__ = ("_batches", "_feed")

    def __init__(self, feed: RedisFeed, batches: Batches[_Slot]) -> None:
        self._feed, self._batches = feed, batches

    def __aiter__(self) -> _Unwrapped:
        return self

    async def __anext__(self) -> list[Any]:
        batch = await self._batches.__anext__()
        self._feed._last = batch[-1][1]
        return [item for item, _ in batch]

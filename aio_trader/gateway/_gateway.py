"""``Gateway``: one process owns a broker's feed and publishes every frame to a Redis stream.

::

    async with Gateway(api_key="...", access_token="...", redis="redis://localhost:6379"):
        await anyio.sleep_forever()

By default the gateway runs Kite's :class:`~aio_trader.kite.RawKiteFeed` (up to 3
connections x 3000 instruments); any broker's raw feed runs the same way (``feed=``, with
its ``codec=``). It appends every binary frame (bytes unchanged, with its receive time,
connection index and codec name) and every text frame (order updates, errors, messages) to
one Redis stream, ``{prefix}:frames``, trimmed to about ``retention`` entries
(``MAXLEN ~``). It subscribes on the broker what the live consumers
(:class:`~aio_trader.gateway.RedisFeed`) ask for: the union of their instruments, each in
the richest mode asked, and unsubscribes what nobody wants any more. A consumer whose
heartbeat stops counts no more after its ``timeout``.

**Losing nothing.** The feed runs ``lossless``: while Redis cannot take frames (it restarts,
the network drops) the gateway retries the same batch (same sequence numbers) with backoff,
the feed's buffer fills, and TCP flow control slows Kite down. A batch whose reply was lost
may land twice: consumers skip a sequence number they have seen. A restarted gateway
continues the stream's numbering, so consumers see no gap across it (Kite's frames sent
while no gateway ran are not in Redis: nobody received them).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream

from aio_trader._codec import DEFAULT_CODEC, Codec, get_codec, richest
from aio_trader.backoff import Backoff
from aio_trader.errors import AioTraderError
from aio_trader.gateway._redis import RETRYABLE, PureToken, check_redis, open_client
from aio_trader.gateway._wire import Keys, entry_fields

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Gateway", "GatewayStatistics"]

log = logging.getLogger(__name__)

#: Frames appended to Redis in one round trip at most.
_BATCH: Final = 512
#: Redis retries: 0.05 s doubling up to 2 s, without end (Redis comes back, or the user stops).
_REDIS_BACKOFF: Final = Backoff(base=0.05, factor=2.0, cap=2.0, max_attempts=None)


@attrs.frozen
class GatewayStatistics:
    """A snapshot of a gateway's counters (``gateway.statistics()``).

    ``frames`` binary frames and ``text_frames`` text frames published, ``published`` entries
    appended (retries included), ``batches`` round trips, ``redis_errors`` failed round trips
    (retried), ``epoch``/``seq`` the numbering of the last entry, ``queued`` frames received
    but not yet in Redis, ``consumers`` live consumers at the last refresh, ``instruments``
    subscribed on the broker, ``connections`` feed connections open, ``last_publish_time`` (Unix
    seconds) of the last successful append, ``consumer_lag`` frames the slowest live
    consumer has still to read (at the last refresh; its position is saved with its
    acknowledgements, so this lags by up to a heartbeat).
    """

    frames: int
    text_frames: int
    published: int
    batches: int
    redis_errors: int
    epoch: int
    seq: int
    queued: int
    consumers: int
    instruments: int
    connections: int
    last_publish_time: float | None
    consumer_lag: int


@attrs.define
class _Counters:
    frames: int = 0
    text_frames: int = 0
    published: int = 0
    batches: int = 0
    redis_errors: int = 0
    last_publish: float | None = None


class Gateway(anyio.abc.AsyncResource):
    """A broker's feed published to Redis Streams for any number of :class:`RedisFeed`
    consumers.

    See the module documentation for what is published and how nothing is lost.
    """

    def __init__(
        self,
        api_key: str | None = None,
        access_token: str | None = None,
        *,
        user_id: str | None = None,
        enctoken: str | None = None,
        root: str | None = None,
        redis: Any = "redis://127.0.0.1:6379",
        prefix: str = "aio_trader",
        retention: int = 1_000_000,
        refresh: float = 1.0,
        poll: float = 0.05,
        feed_options: Mapping[str, Any] | None = None,
        feed: Any = None,
        codec: Codec | str | None = None,
    ) -> None:
        """Set up the gateway; nothing connects before ``async with``.

        Without ``feed``, the gateway runs Kite's :class:`~aio_trader.kite.RawKiteFeed`:
        credentials and ``root`` are its own (``root``: e.g. the sandbox's ``ticker_url``);
        ``feed_options`` more of its keyword arguments (``backoff``, ``watchdog``...; the
        overflow policy is always ``lossless``). ``feed`` is any broker's raw feed instead,
        not entered yet (the gateway enters and closes it): it yields frames with ``data``
        (``bytes`` or ``str``), ``received`` and ``connection``, subscribes with
        ``subscribe(keys, mode)`` / ``unsubscribe(keys)``, tells its ``subscriptions``, and
        should run ``lossless``. ``codec`` (a name or a codec; default the feed's ``codec``
        attribute, or ``"kite"`` for Kite's feed) names the frames' format in every entry
        and reads the consumers' wishes.
        ``redis`` is a ``redis://`` URL (the gateway opens and closes its own client) or a
        coredis client the caller has entered (``Redis``, ``RedisCluster``, a Sentinel's
        primary). ``prefix`` names the keys (one gateway per prefix, see the module doc of
        ``aio_trader.gateway._wire``). ``retention`` is the stream's approximate length.
        Consumers' wishes are read every ``refresh`` seconds, and at once (within ``poll``
        seconds) when a consumer changes them.

        Raises ``ValueError`` for bad settings or credentials (credentials together with
        ``feed``, a ``feed`` without a codec, an unknown codec), ``TypeError`` for a
        ``redis`` that is neither a URL nor a coredis client.
        """
        check_redis(redis)
        if retention < 1:
            raise ValueError(f"retention must be >= 1 entries, got {retention!r}")
        if not (refresh > 0 and math.isfinite(refresh)) or not (poll > 0 and math.isfinite(poll)):
            raise ValueError("refresh and poll must be finite numbers of seconds > 0")
        if not prefix or any(c.isspace() for c in prefix):
            raise ValueError(f"prefix must be a non-empty word, got {prefix!r}")
        if feed is None:
            from aio_trader.kite import RawKiteFeed  # the default broker, loaded only here

            options = dict(feed_options or {})
            options["overflow"] = "lossless"
            feed = RawKiteFeed(
                api_key,
                access_token,
                user_id=user_id,
                enctoken=enctoken,
                root=root,
                **options,
            )
            codec = DEFAULT_CODEC if codec is None else codec
        else:
            given = (api_key, access_token, user_id, enctoken, root, feed_options)
            if any(value is not None for value in given):
                raise ValueError("give feed= or the Kite feed's credentials and options, not both")
            codec = getattr(feed, "codec", None) if codec is None else codec
            if codec is None:
                raise ValueError("name the frames' codec: Gateway(feed=..., codec='...')")
        self.codec = get_codec(codec)
        self._codec_name = self.codec.name.encode()
        self._feed: Any = feed
        self._redis_arg = redis
        self.keys = Keys(prefix)
        self.retention = retention
        self.refresh = refresh
        self.poll = poll
        self._redis: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._counters = _Counters()
        self._epoch = 0
        self._seq = 0
        self._consumers: frozenset[str] = frozenset()
        self._consumer_lag = 0
        self._wishes_seen: bytes | None = None
        self._queued = 0
        self._closed = False
        self._send: anyio.abc.ObjectSendStream[Any] | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._stack is not None else "not started"
        return f"<Gateway prefix={self.keys.prefix!r} feed={self._feed!r} {state}>"

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Connect to Redis, continue the stream's numbering, connect the feed, start
        publishing and following the consumers' wishes.

        Raises ``RuntimeError`` when entered twice; Redis's error when it cannot be reached
        at entry; the feed's fatal errors (``TokenException``...) as the feed raises them.
        Cancellation: everything opened so far is closed, then the cancellation propagates.
        """
        if self._stack is not None or self._closed:
            raise RuntimeError("a Gateway can be entered only once")
        stack = contextlib.AsyncExitStack()
        try:
            self._redis = await open_client(self._redis_arg, stack)
            await self._continue_numbering()
            send, receive = anyio.create_memory_object_stream[Any](10_000)
            stack.callback(receive.close)  # last on exit, after the tasks ended (or never ran)
            stack.callback(send.close)
            self._send = send
            await stack.enter_async_context(self._feed)
            # the tasks' group inside the feed's: on exit the tasks are stopped and have
            # ended before the feed closes (a closed feed refuses subscribe/unsubscribe)
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)  # runs first on exit
            await self._refresh_once(force=True)
            tg.start_soon(self._read_feed, send, name="gateway-feed")
            tg.start_soon(self._publish, receive, name="gateway-publish")
            tg.start_soon(self._follow_wishes, name="gateway-wishes")
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def aclose(self) -> None:
        """Stop publishing, close the feed and the Redis client (if the gateway opened it).

        Frames received but not yet appended are lost (they were never in Redis).
        Idempotent. Cancellation: everything is closed anyway (shielded).
        """
        self._closed = True
        stack, self._stack = self._stack, None
        if stack is not None:
            try:
                # best effort: left by a cancellation, the client's connections may be
                # closed already (their tasks run in the cancelled scope)
                with (
                    anyio.CancelScope(shield=True),
                    contextlib.suppress(*RETRYABLE, anyio.ClosedResourceError),
                ):
                    await self._redis.hset(self.keys.gateway, {"state": "stopped"})
            finally:
                await stack.aclose()  # task groups end in the task that opened them: no shield

    # -- what it exposes -----------------------------------------------------------------

    @property
    def feed(self) -> Any:
        """The feed the gateway owns (subscriptions follow the consumers: read only)."""
        return self._feed

    @property
    def subscriptions(self) -> dict[Any, Any]:
        """What the gateway has subscribed on the broker: key -> mode."""
        return dict(self._feed.subscriptions)

    @property
    def consumers(self) -> frozenset[str]:
        """The live consumers' names at the last refresh."""
        return self._consumers

    def statistics(self) -> GatewayStatistics:
        c = self._counters
        return GatewayStatistics(
            frames=c.frames,
            text_frames=c.text_frames,
            published=c.published,
            batches=c.batches,
            redis_errors=c.redis_errors,
            epoch=self._epoch,
            seq=self._seq,
            queued=self._queued,
            consumers=len(self._consumers),
            instruments=len(self._feed.subscriptions),
            connections=self._feed.statistics().connections,
            last_publish_time=c.last_publish,
            consumer_lag=self._consumer_lag,
        )

    async def refresh_now(self) -> None:
        """Read the consumers' wishes and (un)subscribe on the broker accordingly, now.

        Raises Redis's error if it cannot be reached. Cancellation: the subscriptions sent
        so far stay; the next refresh completes the rest.
        """
        if self._stack is None:
            raise RuntimeError("enter the gateway first: async with Gateway(...)")
        await self._refresh_once(force=True)

    # -- numbering ---------------------------------------------------------------------

    async def _continue_numbering(self) -> None:
        last = await self._redis.xrevrange(self.keys.frames, count=1)
        if last:
            fields = last[0].field_values
            self._epoch, self._seq = int(fields[b"e"]), int(fields[b"s"])
            log.info("continuing the stream at epoch %d, seq %d", self._epoch, self._seq)
        else:
            self._epoch, self._seq = time.time_ns() // 1000, 0

    # -- tasks -------------------------------------------------------------------------

    async def _read_feed(self, send: anyio.abc.ObjectSendStream[Any]) -> None:
        async with send:
            try:
                async for frame in self._feed:
                    self._queued += 1
                    await send.send(frame)
            except AioTraderError as exc:
                # the feed stopped for good (TokenException, FeedClosedError): it raises the
                # error itself out of the gateway's ``async with``, as itself
                log.error("the feed stopped: %s", type(exc).__name__)

    async def _publish(self, receive: MemoryObjectReceiveStream[Any]) -> None:
        async with receive:
            while True:
                try:
                    first = await receive.receive()
                except anyio.EndOfStream:
                    return
                batch = [first]
                while len(batch) < _BATCH:
                    try:
                        batch.append(receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                await self._append(self._entries(batch))
                self._queued -= len(batch)

    def _entries(self, batch: list[Any]) -> list[dict[bytes, bytes]]:
        epoch, codec, c = str(self._epoch).encode(), self._codec_name, self._counters
        entries = []
        for frame in batch:
            self._seq += 1
            data = frame.data
            if isinstance(data, str):
                c.text_frames += 1
            else:
                c.frames += 1
            entries.append(
                entry_fields(epoch, self._seq, frame.received, frame.connection, codec, data)
            )
        return entries

    async def _append(self, entries: list[dict[bytes, bytes]]) -> None:
        """Append the entries, retrying the same entries until Redis takes them."""
        attempts = _REDIS_BACKOFF.attempts()
        key, retention = self.keys.frames, self.retention
        while True:
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for fields in entries:
                        pipe.xadd(
                            key,
                            fields,
                            trim_strategy=PureToken.MAXLEN,
                            threshold=retention,
                            trim_operator=PureToken.APPROXIMATELY,
                        )
            except RETRYABLE as exc:
                self._counters.redis_errors += 1
                attempts.failed()
                log.warning(
                    "Redis refused %d frames (%s); retrying in %.3g s",
                    len(entries),
                    type(exc).__name__,
                    attempts.delay,
                )
                await attempts.sleep()
                continue
            c = self._counters
            c.published += len(entries)
            c.batches += 1
            c.last_publish = time.time()
            return

    async def _follow_wishes(self) -> None:
        last_full = time.monotonic()
        while True:
            await anyio.sleep(self.poll)
            force = time.monotonic() - last_full >= self.refresh
            try:
                if await self._refresh_once(force=force):
                    last_full = time.monotonic()
            except RETRYABLE as exc:
                log.info("reading the consumers' wishes failed (%s)", type(exc).__name__)

    async def _refresh_once(self, *, force: bool) -> bool:
        """Apply the consumers' wishes if they changed (or ``force``); True if it read them."""
        keys, redis = self.keys, self._redis
        version = await redis.get(keys.wishes)
        if not force and version == self._wishes_seen:
            return False
        self._wishes_seen = version
        names = sorted(n.decode() for n in await redis.smembers(keys.consumers))
        wants: dict[Any, str] = {}
        codec = self.codec
        alive: list[str] = []
        if names:
            async with redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.exists([keys.alive(name)])
                    pipe.hgetall(keys.wants(name))
                pipe.hmget(keys.pos, names)
            results: tuple[Any, ...] = pipe.results or ()
            lag = 0
            for i, pos in enumerate(results[-1]):
                if pos and results[2 * i]:  # a live consumer's saved position
                    epoch, seq = (int(part) for part in pos.split(b":"))
                    if epoch == self._epoch:
                        lag = max(lag, self._seq - seq)
            self._consumer_lag = lag
            for i, name in enumerate(names):
                if not results[2 * i]:
                    continue
                alive.append(name)
                for field, value in results[2 * i + 1].items():
                    mode = value.decode()
                    try:
                        key = codec.parse_key(field.decode())
                    except ValueError:
                        continue  # not a key of this codec: nobody can have asked for it
                    if mode in codec.modes:
                        wants[key] = richest(codec, wants.get(key), mode)
        self._consumers = frozenset(alive)
        await self._apply(wants)
        await redis.hset(
            keys.gateway,
            {
                "state": "running",
                "heartbeat": repr(time.time()),
                "consumers": str(len(alive)),
                "instruments": str(len(wants)),
                "frames": str(self._counters.frames + self._counters.text_frames),
                "seq": str(self._seq),
                "queued": str(self._queued),
            },
        )
        return True

    async def _apply(self, wants: dict[Any, str]) -> None:
        current = {key: str(mode) for key, mode in self._feed.subscriptions.items()}
        gone = [token for token in current if token not in wants]
        if gone:
            log.info("unsubscribing %d instruments nobody wants", len(gone))
            await self._feed.unsubscribe(gone)
        by_mode: dict[str, list[Any]] = {}
        for token, mode in wants.items():
            if current.get(token) != mode:
                by_mode.setdefault(mode, []).append(token)
        for mode, tokens in by_mode.items():
            log.info("subscribing %d instruments in %s mode", len(tokens), mode)
            await self._feed.subscribe(tokens, mode)

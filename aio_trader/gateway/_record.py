"""Recording a gateway's stream or a raw feed: :func:`record`.

The format (one writer, one reader) lives in :mod:`aio_trader._recording`;
:class:`~aio_trader._recording.Recorder` is re-exported here as
``aio_trader.gateway.Recorder``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from typing import Any, Literal

import anyio

from aio_trader._codec import DEFAULT_CODEC, Codec, get_codec
from aio_trader._recording import Recorder
from aio_trader.gateway._redis import RETRYABLE, check_redis, open_client
from aio_trader.gateway._wire import Keys, entry_codec

__all__ = ["Recorder", "record"]

log = logging.getLogger(__name__)


async def record(
    path: str | os.PathLike[str],
    *,
    feed: Any = None,
    redis: Any = None,
    prefix: str = "aio_trader",
    start: Literal["new", "oldest"] = "new",
    frames: int | None = None,
    ticks: str | os.PathLike[str] | None = None,
    codec: Codec | str = DEFAULT_CODEC,
) -> int:
    """Record frames to ``path`` until ``frames`` were written (None: until cancelled, or the
    feed ends); returns how many were written.

    The source is either ``feed``, an entered raw feed (:class:`~aio_trader.kite.RawKiteFeed`,
    :class:`~aio_trader.dhan.RawDhanFeed`: its frames, with their receive times and
    connections, in ``codec``: ``"dhan"`` for Dhan's), or ``redis`` (a
    URL or an entered coredis client) with a gateway's ``prefix``: the gateway's stream,
    from the next frame published (``start="new"``) or the oldest Redis keeps
    (``"oldest"``), with the gateway's receive times, connections, sequence numbers and
    each entry's codec. Reading Redis does not join a consumer group and asks for no
    instruments: it records what the gateway's consumers asked for. ``ticks`` also writes
    one row per decoded tick there (of the frames in ``codec``).

    Cancellation: the file is completed (closed with everything received so far) and the
    cancellation propagates. Raises ``ValueError`` unless exactly one source is given.
    """
    if (feed is None) == (redis is None):
        raise ValueError("give feed= (a raw feed) or redis= (a gateway's Redis), not both")
    with Recorder(path, ticks=ticks, codec=get_codec(codec)) as recorder:
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
                received, connection = float(fields[b"r"]), int(fields[b"c"])
                recorder.write(data, received, connection, int(fields[b"s"]), entry_codec(fields))
                if frames is not None and recorder.frames >= frames:
                    return


def _entries(got: Any, key: bytes) -> Iterable[Any]:
    return got.get(key, ()) if got else ()

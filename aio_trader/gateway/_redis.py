"""The one boundary to coredis: opening a client, and which of its errors a retry can heal."""

from __future__ import annotations

import contextlib
from typing import Any, Final

try:
    import coredis
    import coredis.exceptions
except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
    raise ImportError(
        "the gateway needs coredis and pyarrow: pip install 'aio-trader[gateway]'"
    ) from exc

__all__ = [
    "RETRYABLE",
    "DuplicateGroupError",
    "PureToken",
    "RedisError",
    "ResponseError",
    "check_redis",
    "open_client",
]

PureToken = coredis.PureToken
RedisError = coredis.exceptions.RedisError
ResponseError = coredis.exceptions.ResponseError
DuplicateGroupError = coredis.exceptions.StreamDuplicateConsumerGroupError

#: What a Redis call may fail with that heals by itself (the server restarting, a network
#: blip): the loops log it and try again after a delay.
RETRYABLE: Final = (
    coredis.exceptions.ConnectionError,
    coredis.exceptions.BusyLoadingError,
    coredis.exceptions.TryAgainError,
    OSError,
    TimeoutError,
)


def check_redis(redis: object) -> None:
    if not isinstance(redis, str) and not isinstance(redis, coredis.client.Client):
        raise TypeError(
            f"redis must be a redis:// URL or a coredis client, got {type(redis).__name__}"
        )
    if isinstance(redis, str) and not redis.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("redis must be a redis://, rediss:// or unix:// URL or a coredis client")


async def open_client(redis: Any, stack: contextlib.AsyncExitStack) -> Any:
    """A coredis client: ``redis`` itself when it is one (the caller has entered it), or a
    new one for a URL, entered on ``stack`` (closed with it)."""
    if isinstance(redis, str):
        client = coredis.Redis.from_url(redis, decode_responses=False)
        await stack.enter_async_context(client)
        return client
    return redis

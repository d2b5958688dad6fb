"""The HTTP transport of ``AsyncRequest``: httpx's, on a network backend whose
"is this idle connection still usable?" check is cheap.

Why: before every request and after every response, httpcore's connection pool asks each
of its connections whether it has expired, and an idle HTTP/1.1 connection answers by
asking its stream ``get_extra_info("is_readable")`` (a server that closed it, or sent
something unasked, makes the socket readable: the connection is then dropped, never
reused). On asyncio httpcore's stream looks the socket up through anyio's typed
attributes on every call (a dict of lambdas built each time) and then builds, registers
and polls a new ``select.poll`` object: with 50 callers on 10 connections that was about
a fifth of the client's CPU per ``ltp``.

``_Stream`` answers the same question the same way (the socket is readable now, by a
zero-timeout ``poll``; a socket that is gone counts as readable, so its connection is
dropped), with the socket and its ``poll`` object found once, when the connection opens.
Everything else is the wrapped stream's. Closed-connection detection is therefore
unchanged: a stale keep-alive connection is dropped before a request is written to it,
which is what keeps a non-idempotent order from being sent on a dead connection (see
``aio_trader.http`` and tests/test_http.py).

The one reach into httpx: its transport keeps its httpcore pool as ``_pool``, replaced
here by an equal pool with this backend (tests/test_http.py checks the pool's streams
are ours, so a httpx that renames it fails a test, not silently).
"""

from __future__ import annotations

import select
import ssl
import sys
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
import sniffio

__all__ = ["Transport"]

#: ``select.poll`` where it exists (not on Windows): else httpcore's own check is used.
_POLL = sys.platform != "win32" and hasattr(select, "poll")


class _Stream(httpcore.AsyncNetworkStream):
    """A network stream with a cheap ``is_readable``; the rest is ``inner``'s."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._poll: Any = None
        self._gone = False  # no socket to ask: readable (its connection is dropped)
        if _POLL:
            sock = inner.get_extra_info("socket")
            fd = -1 if sock is None else sock.fileno()
            if fd < 0:
                self._gone = True
            else:
                self._poll = select.poll()
                self._poll.register(fd, select.POLLIN)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        self._poll, self._gone = None, True
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            if self._gone:
                return True
            if self._poll is not None:
                # POLLIN, or POLLHUP/POLLERR/POLLNVAL on a socket closed or gone: readable.
                return bool(self._poll.poll(0))
        return self._inner.get_extra_info(info)


def _native_backend() -> httpcore.AsyncNetworkBackend:
    """httpcore's backend for the running event loop, as httpcore itself picks it: its trio
    backend under trio (about 7% less CPU per sequential call than anyio's there), its
    anyio backend otherwise (``sniffio`` names the running library, as anyio itself asks)."""
    if sniffio.current_async_library() == "trio":
        return httpcore.TrioBackend()
    return httpcore.AnyIOBackend()


class _Backend(httpcore.AsyncNetworkBackend):
    """httpcore's backend for the running loop (``_native_backend``), its streams wrapped
    in ``_Stream``."""

    @property
    def _backend(self) -> httpcore.AsyncNetworkBackend:
        return _native_backend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _Stream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return _Stream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class Transport(httpx.AsyncHTTPTransport):
    """httpx's default transport (HTTP/1.1, TLS from the environment's settings, no
    retries) on ``_Backend``, with ``limits``."""

    def __init__(self, limits: httpx.Limits) -> None:
        ssl_context = httpx.create_ssl_context(trust_env=True)  # ~20 ms: made once
        super().__init__(verify=ssl_context, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=_Backend(),
        )

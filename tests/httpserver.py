"""A scripted HTTP/1.1 server on loopback (raw anyio TCP), for transport tests.

Each connection carries one request; the server records it, then plays the next
scripted action (or the default): answer, drop the connection, or never answer.
Exact control over failures that a real framework would smooth over.
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from typing import Any

import anyio
import attrs
from anyio.abc import SocketAttribute, SocketStream, TaskStatus
from anyio.streams.buffered import BufferedByteReceiveStream

REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 429: "Too Many Requests"}


@attrs.frozen
class Recorded:
    """One request as the server received it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    time: float

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]


@attrs.frozen
class Reply:
    """Answer with this status, body and content type."""

    status: int = 200
    body: bytes = b'{"status": "success", "data": {}}'
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class Drop:
    """Read the whole request, then close the connection without answering."""


@attrs.frozen
class Stall:
    """Read the whole request and never answer (until the client goes away)."""


Action = Reply | Drop | Stall


def kite_error(status: int, error_type: str, message: str) -> Reply:
    """A Kite error answer."""
    body = {"status": "error", "message": message, "error_type": error_type}
    return Reply(status, json.dumps(body).encode())


def json_reply(data: Any, status: int = 200) -> Reply:
    """A Kite success answer with ``data``."""
    return Reply(status, json.dumps({"status": "success", "data": data}).encode())


class HTTPServer:
    """Scripted server: ``script(...)`` queues actions, ``requests`` records what came."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.default: Action = Reply()
        self._script: deque[Action] = deque()
        self._arrived = anyio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *actions: Action) -> None:
        """Play ``actions`` for the next requests, in order, then the default."""
        self._script.extend(actions)

    async def wait_for_requests(self, count: int) -> None:
        """Return once ``count`` requests have arrived."""
        while len(self.requests) < count:
            await self._arrived.wait()

    async def serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(SocketAttribute.local_port)
        async with listener:
            task_status.started()
            await listener.serve(self._handle)

    async def _handle(self, stream: SocketStream) -> None:
        # The client going away mid-exchange is not an error: there is nothing to answer.
        gone = (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, OSError)
        async with stream:
            with contextlib.suppress(*gone):
                await self._exchange(stream)

    async def _exchange(self, stream: SocketStream) -> None:
        reader = BufferedByteReceiveStream(stream)
        head = await reader.receive_until(b"\r\n\r\n", 65536)
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await reader.receive_exactly(length) if length else b""
        self.requests.append(Recorded(method, target, headers, body, anyio.current_time()))
        self._arrived.set()
        self._arrived = anyio.Event()
        action = self._script.popleft() if self._script else self.default
        if isinstance(action, Drop):
            return
        if isinstance(action, Stall):
            while True:
                await stream.receive()
        extra = "".join(f"{name}: {value}\r\n" for name, value in action.headers)
        reason = REASONS.get(action.status, "Status")
        await stream.send(
            f"HTTP/1.1 {action.status} {reason}\r\n"
            f"Content-Type: {action.content_type}\r\n"
            f"Content-Length: {len(action.body)}\r\n"
            f"Connection: close\r\n{extra}\r\n".encode("latin-1")
            + action.body
        )

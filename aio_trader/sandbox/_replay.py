"""The sandbox ticker serving a recording (``SandboxConfig(replay="session.parquet")``,
``aio-trader sandbox --replay session.parquet``) instead of its simulated market.

Each connection plays the recording from its start, in real time (the gaps between the
recorded receive times), and then again from the start, so a client that connects late
still gets every frame.
Binary frames are cut down to the connection's subscriptions, each instrument in the mode
it asked for (a recorded packet of a richer mode is truncated; a poorer one is skipped, as
Kite would not send it); frames left empty are not sent. Text frames (order postbacks,
errors, messages) are sent as recorded. Heartbeats are sent while nothing else is.

Needs pyarrow (the ``gateway`` extra). The recording is read once per path and kept.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any, Final

import anyio

from aio_trader.gateway._wire import filter_frame

if TYPE_CHECKING:
    from aio_trader.sandbox._kite._ticker import _Connection

__all__ = ["load_recording", "send_recording"]

log = logging.getLogger(__name__)

_HEARTBEAT: Final = b"\x00"
_HEARTBEAT_INTERVAL: Final = 1.0


@functools.lru_cache(maxsize=4)
def load_recording(path: str) -> tuple[tuple[float, bool, bytes], ...]:
    """The recording's frames: (seconds since its first frame, is text, bytes)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover
        raise ImportError("replaying needs pyarrow: pip install 'aio-trader[gateway]'") from exc
    table = pq.read_table(path, columns=["received", "kind", "data"])
    received = table.column("received").cast("int64").to_pylist()
    first = received[0] if received else 0
    kinds = table.column("kind").to_pylist()
    data = table.column("data").to_pylist()
    return tuple(
        ((r - first) / 1e6, k == "text", d) for r, k, d in zip(received, kinds, data, strict=True)
    )


async def send_recording(connection: _Connection) -> None:
    """The connection's tick task while replaying: the recording, in time, over and over."""
    config: Any = connection.state.config
    frames = await anyio.to_thread.run_sync(load_recording, str(config.replay))
    speed = 1.0
    stats = connection.state.stats
    if not frames:
        log.warning("sandbox replay: %s holds no frames", config.replay)
    while True:
        start = last_sent = anyio.current_time()
        for offset, is_text, data in frames:
            due = start + offset / speed
            while True:  # heartbeats while waiting for the frame's time
                now = anyio.current_time()
                if due <= now:
                    break
                if now - last_sent >= _HEARTBEAT_INTERVAL:
                    if not await connection._send_bytes(_HEARTBEAT):
                        return
                    last_sent = now
                await anyio.sleep(min(due - now, last_sent + _HEARTBEAT_INTERVAL - now))
            if is_text:
                sent = await connection._send_text(data.decode())
            else:
                frame, count, _ = filter_frame(data, connection.subscriptions.modes)
                if frame is None:
                    continue
                sent = await connection._send_bytes(frame)
                stats.ws_frames_sent += 1
                stats.ws_ticks_sent += max(count, 0)
            if not sent:
                return
            last_sent = anyio.current_time()
        if not frames:
            await anyio.sleep(_HEARTBEAT_INTERVAL)
            if not await connection._send_bytes(_HEARTBEAT):
                return

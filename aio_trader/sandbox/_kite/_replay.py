"""The sandbox ticker serving a recording (``SandboxConfig(replay="session.parquet")``,
``aio-trader sandbox --replay session.parquet``) instead of its simulated market.

Each connection plays the recording from its start, in real time (the gaps between the
recorded receive times), and then again from the start, so a client that connects late
still gets every frame.
Binary frames are cut down to the connection's subscriptions by Kite's codec
(:meth:`aio_trader.kite._codec.KiteCodec.cut`), each instrument in the mode it asked for (a
recorded packet of a richer mode is truncated; a poorer one is sent as recorded, as Kite
sends it before a mode switch took effect); frames left empty are not sent. Text frames
(order postbacks, errors, messages) are sent as recorded. Heartbeats are sent while
nothing else is. Frames recorded with another codec than Kite's are not sent.

Needs pyarrow (the ``gateway`` extra). The recording is read once per path (through
:class:`aio_trader._recording.RecordingReader`) and kept.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any, Final

import anyio

from aio_trader.kite._codec import CODEC

if TYPE_CHECKING:
    from aio_trader.sandbox._kite._ticker import _Connection

__all__ = ["load_recording", "send_recording"]

log = logging.getLogger(__name__)

_HEARTBEAT: Final = b"\x00"
_HEARTBEAT_INTERVAL: Final = 1.0


@functools.lru_cache(maxsize=4)
def load_recording(path: str) -> tuple[tuple[float, bool, bytes], ...]:
    """The recording's Kite frames: (seconds since its first frame, is text, bytes)."""
    from aio_trader._recording import RecordingReader  # needs pyarrow: says so

    with RecordingReader(path) as reader:
        frames = [frame for frame in reader if frame.codec == CODEC.name]
    first = frames[0].received_us if frames else 0
    return tuple(((f.received_us - first) / 1e6, f.text, f.data) for f in frames)


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
                cut = CODEC.cut(data, connection.subscriptions.modes)
                if cut.frame is None:
                    continue
                sent = await connection._send_bytes(cut.frame)
                stats.ws_frames_sent += 1
                stats.ws_ticks_sent += cut.kept
            if not sent:
                return
            last_sent = anyio.current_time()
        if not frames:
            await anyio.sleep(_HEARTBEAT_INTERVAL)
            if not await connection._send_bytes(_HEARTBEAT):
                return

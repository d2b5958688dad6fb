"""The sandbox's Dhan market feed serving a recording (``SandboxConfig(broker="dhan",
replay="session.parquet")``) instead of its simulated market.

Each market-feed connection plays the recording's binary messages from its start, in real
time (the gaps between the recorded receive times), and then again from the start, so a
client that connects late still gets every message. Each message is cut down to the
connection's subscriptions by Dhan's codec (:meth:`aio_trader.dhan._codec.DhanCodec.cut`),
each instrument in the mode it asked for (a full packet becomes a quote or ticker packet;
a poorer one is sent as recorded; previous close, OI and market status packets follow
their modes, a disconnect packet is never sent); messages left empty are not sent. The
recording's text messages (order updates) are not replayed: the order-update socket
serves the sandbox's own orders. The 20-level depth socket and messages recorded with
another codec than Dhan's are not replayed.

Needs pyarrow (the ``gateway`` extra). The recording is read once per path (through
:class:`aio_trader._recording.RecordingReader`) and kept.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.lowlevel

from aio_trader.dhan._codec import CODEC

if TYPE_CHECKING:
    from aio_trader.sandbox._dhan._feed import _Connection

__all__ = ["load_recording", "send_recording"]

log = logging.getLogger(__name__)

#: How long a connection waits before playing a recording with no message again.
_IDLE: Final = 1.0


@functools.lru_cache(maxsize=4)
def load_recording(path: str) -> tuple[tuple[float, bytes], ...]:
    """The recording's Dhan binary messages: (seconds since its first frame, bytes)."""
    from aio_trader._recording import RecordingReader  # needs pyarrow: says so

    with RecordingReader(path) as reader:
        frames = [f for f in reader if f.codec == CODEC.name]
    first = frames[0].received_us if frames else 0
    return tuple(((f.received_us - first) / 1e6, f.data) for f in frames if not f.text)


async def send_recording(connection: _Connection) -> None:
    """The connection's tick task while replaying: the recording, in time, over and over."""
    config: Any = connection.state.config
    messages = await anyio.to_thread.run_sync(load_recording, str(config.replay))
    stats = connection.state.stats
    if not messages:
        log.warning("sandbox dhan replay: %s holds no Dhan market messages", config.replay)
    while True:
        start = anyio.current_time()
        for offset, data in messages:
            await anyio.sleep_until(start + offset)
            if connection.state.faults.ws_silence:
                continue
            cut = CODEC.cut(data, connection.modes)
            if cut.frame is None:
                continue
            if not await connection.send_bytes(cut.frame):
                return
            stats.ws_frames_sent += 1
            stats.ws_ticks_sent += cut.kept
        if not messages:
            await anyio.sleep(_IDLE)
        else:
            await anyio.lowlevel.checkpoint()  # between two rounds

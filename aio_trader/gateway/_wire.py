"""What the gateway writes to Redis and how a consumer reads it back (no I/O here).

Keys, for a gateway ``prefix`` (default ``aio_trader``):

============================ ==============================================================
``{prefix}:frames``          the stream: one entry per frame Kite sent, trimmed ``MAXLEN ~``
``{prefix}:consumers``       set of consumer names that ever asked for instruments
``{prefix}:alive:{name}``    a consumer's heartbeat (a key with a TTL: Redis's clock)
``{prefix}:wants:{name}``    hash ``instrument token -> mode`` a consumer asks for
``{prefix}:wishes``          a counter consumers bump when they change their wishes
``{prefix}:pos``             hash ``consumer name -> "epoch:seq"`` of the last frame it read
``{prefix}:gateway``         hash: the gateway's status (heartbeat, instruments, frames...)
============================ ==============================================================

A stream entry has the fields ``e`` (the gateway epoch: its first start on this stream),
``s`` (the frame's sequence number in the epoch, 1, 2, 3 ...: a gateway restart continues
it), ``r`` (receive time, seconds since the epoch, as the gateway's clock saw it), ``c`` (the
connection index) and either ``b`` (a binary frame, bytes unchanged) or ``t`` (a text frame,
UTF-8). Consumers count gaps and skip duplicates with ``e`` and ``s``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

from aio_trader.kite.constants import Mode

__all__ = [
    "MODE_RANK",
    "FrameInfo",
    "Keys",
    "filter_frame",
    "highest",
]

#: Modes from the least to the most data.
MODE_RANK: Final[dict[str, int]] = {Mode.LTP.value: 0, Mode.QUOTE.value: 1, Mode.FULL.value: 2}

_INDEX_LENGTHS: Final = frozenset((28, 32))
_KNOWN: Final = frozenset((8, 28, 32, 44, 184))
#: (mode, index?) -> packet length in that mode. A packet of a richer mode starts with the
#: packet of a poorer one (Kite's layout), so a downgrade is a truncation.
_LENGTH: Final[dict[tuple[str, bool], int]] = {
    ("ltp", False): 8,
    ("ltp", True): 8,
    ("quote", False): 44,
    ("quote", True): 28,
    ("full", False): 184,
    ("full", True): 32,
}


@attrs.frozen
class Keys:
    """The Redis keys of one gateway (see the module doc)."""

    prefix: str

    @property
    def frames(self) -> str:
        return f"{self.prefix}:frames"

    @property
    def consumers(self) -> str:
        return f"{self.prefix}:consumers"

    @property
    def wishes(self) -> str:
        return f"{self.prefix}:wishes"

    @property
    def pos(self) -> str:
        return f"{self.prefix}:pos"

    @property
    def gateway(self) -> str:
        return f"{self.prefix}:gateway"

    def alive(self, name: str) -> str:
        return f"{self.prefix}:alive:{name}"

    def wants(self, name: str) -> str:
        return f"{self.prefix}:wants:{name}"


@attrs.frozen
class FrameInfo:
    """Where an item came from: the stream entry of its frame.

    ``entry_id`` Redis's id of the entry, ``epoch`` and ``seq`` the gateway's numbering,
    ``received`` when the gateway received the frame (seconds since the Unix epoch),
    ``connection`` the index of the Kite connection it came on.
    """

    entry_id: str
    epoch: int
    seq: int
    received: float
    connection: int


def filter_frame(frame: bytes, modes: Mapping[int, str] | None) -> tuple[bytes | None, int, int]:
    """The packets of ``frame`` whose token is in ``modes``, cut down to its mode.

    Returns ``(frame or None when nothing is left, packets kept, packets dropped because
    they came in a poorer mode than asked)``. ``modes`` None keeps every packet as it is. A
    malformed frame is returned whole for the decoder to report.
    """
    if modes is None:
        return frame, -1, 0
    size = len(frame)
    if size < 2:
        return None, 0, 0
    count = frame[0] << 8 | frame[1]
    pos = 2
    kept: list[bytes] = []
    stale = 0
    cut = False
    get = modes.get
    for _ in range(count):
        if pos + 6 > size:
            return frame, -1, 0
        length = frame[pos] << 8 | frame[pos + 1]
        start = pos + 2
        end = start + length
        if end > size:
            return frame, -1, 0
        mode = get(int.from_bytes(frame[start : start + 4], "big"))
        if mode is not None:
            want = _LENGTH[mode, length in _INDEX_LENGTHS] if length in _KNOWN else length
            if length < want:
                stale += 1
            elif length == want:
                kept.append(frame[pos:end])
            else:
                kept.append(want.to_bytes(2, "big") + frame[start : start + want])
                cut = True
        pos = end
    if pos != size:
        return frame, -1, 0
    if not kept:
        return None, 0, stale
    if len(kept) == count and not cut:
        return frame, count, stale
    return len(kept).to_bytes(2, "big") + b"".join(kept), len(kept), stale


def highest(a: str | None, b: str) -> str:
    """The richer of two modes."""
    return b if a is None or MODE_RANK[b] > MODE_RANK[a] else a

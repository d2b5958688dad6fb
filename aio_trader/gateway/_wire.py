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
connection index), ``k`` (the name of the frame's codec, :func:`aio_trader._codec.get_codec`;
an entry without it is ``kite``'s, as gateways wrote them before codecs were named) and
either ``b`` (a binary frame, bytes unchanged) or ``t`` (a text frame, UTF-8). Consumers
count gaps and skip duplicates with ``e`` and ``s``, and decode with the entry's codec.
This module knows no broker's packet layout: cutting a frame is the codec's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

from aio_trader._codec import DEFAULT_CODEC

__all__ = [
    "FrameInfo",
    "Keys",
    "entry_codec",
    "entry_fields",
]

#: An argument not given (``subscribe(keys)`` or its former keyword ``tokens=``).

#: The codec field of an entry that names none.
_DEFAULT_CODEC: Final = DEFAULT_CODEC.encode()


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
    ``connection`` the index of the feed connection it came on.
    """

    entry_id: str
    epoch: int
    seq: int
    received: float
    connection: int


def entry_fields(
    epoch: bytes, seq: int, received: float, connection: int, codec: bytes, data: bytes | str
) -> dict[bytes, bytes]:
    """The fields of the stream entry of one frame (see the module doc)."""
    fields = {
        b"e": epoch,
        b"s": b"%d" % seq,
        b"r": repr(received).encode(),
        b"c": b"%d" % connection,
        b"k": codec,
    }
    if isinstance(data, str):
        fields[b"t"] = data.encode()
    else:
        fields[b"b"] = data
    return fields


def entry_codec(fields: Mapping[bytes, bytes]) -> str:
    """The name of the codec of an entry's frame."""
    return fields.get(b"k", _DEFAULT_CODEC).decode()

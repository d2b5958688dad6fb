"""The codec protocol: what the gateway, recordings and replays need to know of a broker's
wire format, and a registry of codecs by name.

A codec is pure (bytes in, records out, no I/O) and broker specific; everything that
carries frames without knowing their layout (the gateway's Redis stream, a recording, the
feeds reading them back) asks the codec named next to each frame. A binary frame is a
list of **packets**, each about one instrument **key** in one **mode**; a codec:

- names itself (``name``: ``"kite"``) and its modes, poorest first (``modes``), with the
  mode it subscribes in when none is given (``default_mode``);
- checks what users pass (:meth:`Codec.mode`, :meth:`Codec.check_keys`) and writes a key
  as text and back (:meth:`Codec.key_text`, :meth:`Codec.parse_key`: Redis hash fields);
- walks a frame's packets (:meth:`Codec.walk`), cuts one packet down to a poorer mode
  (:meth:`Codec.cut_packet`) and a whole frame down to the keys a consumer wants, each in
  its mode (:meth:`Codec.cut`);
- decodes a binary frame and a text frame into records (:meth:`Codec.decode_binary`,
  :meth:`Codec.decode_text`), tells a tick's key (:meth:`Codec.key_of`: ``None`` for a
  record that is no tick: an order update, an error) and an order update
  (:meth:`Codec.is_order_update`);
- lists the columns of a tick row for analysis files (:attr:`Codec.tick_columns`,
  :meth:`Codec.tick_row`).

The registry maps names to codecs lazily: ``"kite"`` is ``"aio_trader.kite._codec:CODEC"``
(``"dhan"``: ``"aio_trader.dhan._codec:CODEC"``), imported the first time
:func:`get_codec` is asked for it, so the modules that carry frames import no broker
package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal, Protocol, runtime_checkable

import attrs

__all__ = [
    "DEFAULT_CODEC",
    "Codec",
    "Cut",
    "Malformed",
    "Packet",
    "Walk",
    "get_codec",
    "register_codec",
    "richest",
    "text_record",
    "tick_row",
]

#: The codec of frames that do not name one (streams and recordings written before codecs
#: were named).
DEFAULT_CODEC: Final = "kite"

#: How a tick-row column is typed in an analysis file.
ColumnKind = Literal["int", "float", "str", "time"]


@attrs.frozen
class Packet:
    """One packet of a binary frame: its instrument ``key``, its ``mode`` (``None``: a
    layout the codec does not know), and where its bytes are in the frame
    (``frame[start:end]``, the packet without any length prefix)."""

    key: Hashable
    mode: str | None
    start: int
    end: int


@attrs.frozen
class Walk:
    """A frame's packets in order, and why its structure broke (``None``: it did not)
    after the last packet listed."""

    packets: tuple[Packet, ...]
    broken: str | None = None


@attrs.frozen
class Cut:
    """A frame cut down to what a consumer wants.

    ``frame`` holds the wanted packets, each cut to its wanted mode (``None``: nothing is
    left; the frame itself when nothing had to change). ``kept`` packets are in it, of
    which ``poorer`` came in a poorer mode than wanted (kept as they came: for an
    illiquid instrument the poorer tick may be the only price for minutes). ``malformed``
    parts of the frame were left out (a packet without a key, a broken structure).
    """

    frame: bytes | None
    kept: int
    poorer: int = 0
    malformed: int = 0


@runtime_checkable
class Malformed(Protocol):
    """What a codec reports for a part of a frame it could not decode."""

    @property
    def reason(self) -> str: ...


class Codec(Protocol):
    """A broker's frame format (see the module doc). Every method is pure; none does I/O."""

    @property
    def name(self) -> str:
        """The codec's registry name, written next to every frame (``"kite"``)."""
        ...

    @property
    def modes(self) -> tuple[str, ...]:
        """The subscription modes, from the least to the most data."""
        ...

    @property
    def default_mode(self) -> str:
        """The mode of a subscription that names none."""
        ...

    @property
    def tick_columns(self) -> tuple[tuple[str, ColumnKind], ...]:
        """The columns of :meth:`tick_row`, with their kinds."""
        ...

    def mode(self, value: object) -> str:
        """The mode ``value`` names, as the broker's mode object (a ``str``);
        ``ValueError`` for one the codec does not know."""
        ...

    def check_keys(self, keys: Iterable[Any]) -> list[Any]:
        """``keys`` without repeats, in order; ``ValueError`` for a key of the wrong shape
        or for a lone key instead of an iterable of them."""
        ...

    def key_text(self, key: Any) -> str:
        """A key as text (the inverse of :meth:`parse_key`)."""
        ...

    def parse_key(self, text: str | bytes) -> Any:
        """A key read back from :meth:`key_text`; ``ValueError`` for text that is none."""
        ...

    def walk(self, frame: bytes) -> Walk:
        """The packets of a binary frame, in order. Never raises: a broken structure ends
        the walk with its reason."""
        ...

    def cut_packet(self, packet: bytes, mode: str) -> bytes:
        """``packet`` (without a length prefix) as it would be in ``mode``: unchanged in
        its own mode, cut down in a poorer one. ``ValueError`` for a richer mode than the
        packet's, or a packet whose layout the codec does not know."""
        ...

    def cut(self, frame: bytes, wanted: Mapping[Any, str] | None) -> Cut:
        """The packets of ``frame`` whose key is in ``wanted``, each cut down to its mode
        (a packet in a poorer mode is kept as it is, and counted). ``wanted`` None keeps
        the frame as it is. A packet of a wanted key in a layout the codec does not know is
        kept as it is (the decoder reports it); a heartbeat (no packet) is ``frame=None``.
        Never raises."""
        ...

    def decode_binary(
        self, frame: bytes, on_malformed: Callable[[Malformed], None] | None = None
    ) -> list[Any]:
        """The tick records of a binary frame, in packet order; each malformed part is
        skipped and reported to ``on_malformed``. Never raises for any bytes."""
        ...

    def decode_text(
        self, data: str | bytes, on_malformed: Callable[[Malformed], None] | None = None
    ) -> Any | None:
        """The record of a text frame, or ``None`` when it is malformed (reported to
        ``on_malformed``). Never raises for any text."""
        ...

    def key_of(self, item: Any) -> Any | None:
        """The instrument key of a tick record; ``None`` for any other record (an order
        update, an error, a message: records a feed never drops)."""
        ...

    def is_order_update(self, item: Any) -> bool:
        """Whether ``item`` is an order update (counted in a feed's statistics)."""
        ...

    def tick_row(self, item: Any) -> dict[str, Any] | None:
        """A tick record as a row of :attr:`tick_columns` (times as aware datetimes or
        ``None``); ``None`` for a record that is no tick."""
        ...


def richest(codec: Codec, a: str | None, b: str) -> str:
    """The richer of two modes of ``codec`` (``a`` None: ``b``)."""
    modes = codec.modes
    return b if a is None or modes.index(b) > modes.index(a) else a


#: The tick columns a codec reads from a tick's ``ohlc`` record.
_OHLC: Final = frozenset(("open", "high", "low", "close"))


def tick_row(item: Any, columns: Sequence[tuple[str, ColumnKind]]) -> dict[str, Any]:
    """A tick's ``columns`` (a codec's ``tick_columns``), by name: the tick's attribute,
    None where it has none, the day's ``open``/``high``/``low``/``close`` from its
    ``ohlc`` record (None without one). Each codec's ``tick_row``."""
    ohlc = getattr(item, "ohlc", None)
    row: dict[str, Any] = {}
    for name, _ in columns:
        if name in _OHLC:
            row[name] = None if ohlc is None else getattr(ohlc, name)
        else:
            row[name] = getattr(item, name, None)
    return row


def text_record(
    record: Any, malformed: type[Any], on_malformed: Callable[[Malformed], None] | None
) -> Any | None:
    """A codec's ``decode_text`` answer for a decoded text frame: the record, or ``None``
    when the broker's decoder gave its ``malformed`` record (handed to ``on_malformed``)."""
    if isinstance(record, malformed):
        if on_malformed is not None:
            on_malformed(record)
        return None
    return record


#: name -> a codec, or "module:attribute" where one is found.
_REGISTRY: Final[dict[str, Codec | str]] = {
    "kite": "aio_trader.kite._codec:CODEC",
    "dhan": "aio_trader.dhan._codec:CODEC",
}


def register_codec(name: str, codec: Codec | str) -> None:
    """Make ``codec`` (or ``"module:attribute"``, imported on first use) known as ``name``.

    ``ValueError`` for an empty name or a target that is neither.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"a codec name is a non-empty string, got {name!r}")
    if isinstance(codec, str) and codec.count(":") != 1:
        raise ValueError(f"a codec target is 'module:attribute', got {codec!r}")
    _REGISTRY[name] = codec


def get_codec(codec: Codec | str) -> Codec:
    """The codec named ``codec`` (a codec is returned as it is).

    ``ValueError`` for a name nobody registered.
    """
    if not isinstance(codec, str):
        return codec
    found = _REGISTRY.get(codec)
    if found is None:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown codec {codec!r} (known: {known})")
    if isinstance(found, str):
        module, _, attribute = found.partition(":")
        found = getattr(importlib.import_module(module), attribute)
        _REGISTRY[codec] = found
    return found

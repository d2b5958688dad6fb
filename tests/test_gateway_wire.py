"""What the gateway writes to Redis (pure): keys, and entries that name their codec.

Cutting frames down to a consumer's modes is the codec's job now (``tests/test_codec.py``:
the examples that were here moved there, with poorer packets kept rather than dropped).
"""

from __future__ import annotations

from aio_trader.gateway._wire import Keys, entry_codec, entry_fields
from aio_trader.kite import encode_frame
from aio_trader.kite.ticks import LtpTick


def test_an_entry_names_its_codec_and_carries_the_frame_unchanged() -> None:
    data = encode_frame([LtpTick(408065, 1500.0)])
    fields = entry_fields(b"17", 3, 1700000000.25, 1, b"kite", data)
    assert fields == {
        b"e": b"17",
        b"s": b"3",
        b"r": b"1700000000.25",
        b"c": b"1",
        b"k": b"kite",
        b"b": data,
    }
    assert entry_codec(fields) == "kite"
    text = entry_fields(b"17", 4, 1.5, 0, b"dhan", '{"type": "order"}')
    assert text[b"t"] == b'{"type": "order"}'
    assert b"b" not in text
    assert entry_codec(text) == "dhan"


def test_an_entry_without_a_codec_is_kites() -> None:
    # streams written by gateways from before codecs were named
    assert entry_codec({b"e": b"1", b"s": b"1", b"r": b"1.0", b"c": b"0", b"b": b"\x00"}) == "kite"


def test_keys_of_a_prefix() -> None:
    keys = Keys("p")
    assert (keys.frames, keys.consumers, keys.wishes, keys.pos, keys.gateway) == (
        "p:frames", "p:consumers", "p:wishes", "p:pos", "p:gateway")  # fmt: skip
    assert (keys.alive("a"), keys.wants("a")) == ("p:alive:a", "p:wants:a")

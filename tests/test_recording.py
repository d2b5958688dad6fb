"""The recording format (``aio_trader._recording``): one writer, one reader, a codec per
frame; and ``ReplayFeed`` reading any codec's recording through them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import text_records, tick_lists

from aio_trader._codec import register_codec
from aio_trader._recording import FRAME_SCHEMA, RecordedFrame, Recorder, RecordingReader
from aio_trader.errors import ClientClosedError
from aio_trader.kite import (
    FeedMessage,
    LtpTick,
    Ohlc,
    OrderUpdate,
    QuoteTick,
    Tick,
    encode_frame,
    encode_text,
)
from aio_trader.kite._codec import CODEC
from aio_trader.replay import ReplayFeed

INFY, TCS = 408065, 2953217

#: A frame: (binary?, ticks or a text record).
frames = st.lists(
    st.one_of(tick_lists(4).map(lambda ts: encode_frame(ts)), text_records().map(encode_text)),
    max_size=12,
)


def read_all(path: Path) -> list[RecordedFrame]:
    with RecordingReader(path, batch_size=3) as reader:
        return list(reader)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
@given(frames, st.integers(1, 5))
def test_what_the_writer_wrote_the_reader_reads(
    tmp_path: Path, written: list[bytes | str], row_group: int
) -> None:
    path = tmp_path / "round.parquet"
    with Recorder(path, row_group=row_group) as recorder:
        for n, data in enumerate(written):
            recorder.write(data, received=1_700_000_000 + n / 4, connection=n % 3)
    assert recorder.frames == len(written)
    got = read_all(path)
    assert [f.data for f in got] == [d.encode() if isinstance(d, str) else d for d in written]
    assert [f.text for f in got] == [isinstance(d, str) for d in written]
    assert [f.seq for f in got] == list(range(1, len(written) + 1))
    assert [f.connection for f in got] == [n % 3 for n in range(len(written))]
    assert [f.received for f in got] == [1_700_000_000 + n / 4 for n in range(len(written))]
    assert {f.codec for f in got} <= {"kite"}


def test_each_frame_names_its_codec_and_the_file_its_recorder(tmp_path: Path) -> None:
    path = tmp_path / "codecs.parquet"
    data = encode_frame([LtpTick(INFY, 1.5)])
    with Recorder(path) as recorder:
        recorder.write(data, 1.0)
        recorder.write(b"\x00\x00", 2.0, codec="other", seq=40)
    with RecordingReader(path) as reader:
        assert (reader.codec, reader.total) == ("kite", 2)
        got = list(reader)
    assert got == [
        RecordedFrame(1_000_000, 0, 1, False, data, "kite"),
        RecordedFrame(2_000_000, 0, 40, False, b"\x00\x00", "other"),
    ]
    assert pq.read_schema(path).metadata[b"aio_trader.codec"] == b"kite"
    assert pq.read_schema(path).names == FRAME_SCHEMA.names


def test_a_recording_from_before_codecs_were_named_is_kites(tmp_path: Path) -> None:
    path = tmp_path / "old.parquet"
    data = encode_frame([LtpTick(INFY, 1.5)])
    old = pa.table(
        {
            "received": [1_000_000],
            "connection": [0],
            "seq": [1],
            "kind": ["binary"],
            "data": [data],
        },
        schema=pa.schema([f for f in FRAME_SCHEMA if f.name != "codec"]),
    )
    pq.write_table(old, path)
    assert read_all(path) == [RecordedFrame(1_000_000, 0, 1, False, data, "kite")]


def test_a_ticks_file_has_the_codec_columns(tmp_path: Path) -> None:
    path, ticks = tmp_path / "f.parquet", tmp_path / "t.parquet"
    records: list[Tick] = [LtpTick(INFY, 1.5), LtpTick(TCS, 2.5)]
    with Recorder(path, ticks=ticks) as recorder:
        recorder.write(encode_frame(records))
        recorder.write(encode_text(FeedMessage("x")))
        recorder.write(encode_frame([LtpTick(INFY, 9.0)]), codec="other")  # not decoded
    table = pq.read_table(ticks)
    assert table.column_names == ["received", "seq", *(n for n, _ in CODEC.tick_columns)]
    assert table.column("instrument_token").to_pylist() == [INFY, TCS]
    assert table.column("last_price").to_pylist() == [1.5, 2.5]
    assert recorder.ticks == 2


def test_misuse_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="row_group"):
        Recorder(tmp_path / "x.parquet", row_group=0)
    with pytest.raises(ValueError, match="unknown codec"):
        Recorder(tmp_path / "x.parquet", codec="nope")
    with pytest.raises(ValueError, match="batch_size"):
        RecordingReader(tmp_path / "x.parquet", batch_size=0)
    with pytest.raises(RuntimeError, match="open"):
        iter(RecordingReader(tmp_path / "x.parquet")).__next__()
    pq.write_table(pa.table({"a": [1]}), tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="no recording"):
        RecordingReader(tmp_path / "other.parquet").open()
    recorder = Recorder(tmp_path / "y.parquet")
    recorder.close()
    recorder.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        recorder.write(b"")


async def replay(path: Path, **kwargs: Any) -> tuple[list[Any], ReplayFeed]:
    async with ReplayFeed(path, speed=None, **kwargs) as feed:
        return [item async for item in feed], feed


async def test_replay_reads_a_recording_of_any_registered_codec(tmp_path: Path) -> None:
    register_codec("kite-renamed", CODEC)  # a broker whose frames happen to be Kite's
    path = tmp_path / "renamed.parquet"
    quote = QuoteTick(INFY, 1.5, 1, 1.5, 10, 1, 1, Ohlc(1.0, 2.0, 0.5, 1.25))
    update = OrderUpdate(order_id="7")
    with Recorder(path, codec="kite-renamed") as recorder:
        recorder.write(encode_frame([quote, LtpTick(TCS, 2.0)]))
        recorder.write(encode_text(update))
        recorder.write(b"\x00\x01\x00\x08" + bytes(8), codec="nobody-knows-me")
    items, feed = await replay(path)
    assert items == [quote, LtpTick(TCS, 2.0), update]
    assert feed.codec is CODEC
    stats = feed.statistics()
    assert (stats.frames, stats.ticks, stats.text_frames, stats.order_updates) == (3, 2, 1, 1)
    assert (stats.malformed, stats.lag) == (1, 0)  # the unknown codec's frame
    # cut down, or yielded poorer as recorded and counted
    items, feed = await replay(path, subscriptions={INFY: "ltp", TCS: "full"})
    assert items == [LtpTick(INFY, 1.5), LtpTick(TCS, 2.0), update]
    assert (feed.statistics().poorer_mode, feed.statistics().stale_mode) == (1, 0)


async def test_replay_before_entry_and_after_exit(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    with Recorder(path) as recorder:
        recorder.write(encode_frame([LtpTick(INFY, 1.5)]))
    feed = ReplayFeed(path)
    with pytest.raises(ClientClosedError):
        await feed.subscribe([INFY])
    async with feed:
        with pytest.raises(ValueError, match="tokens"):
            await feed.subscribe([0])
    with pytest.raises(ClientClosedError):
        await feed.subscribe([INFY])
    with pytest.raises(ClientClosedError):
        feed.__aiter__()
    with anyio.fail_after(5):
        batches = []
        async with ReplayFeed(path, speed=None) as again:
            async for batch in again.batches():
                batches.append(batch)
        assert batches == [[LtpTick(INFY, 1.5)]]

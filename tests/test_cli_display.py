"""What ``aio-trader stream`` and ``quote`` show: one row per instrument however it was
asked for, the tick count of each, volumes formatted alike in both."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from aio_trader._cli.group import main
from aio_trader._cli.market import QUOTE_COLUMNS, _Keyed
from aio_trader._cli.render import TickBoard, record_table, tick_cells
from aio_trader.kite._models import Quote
from aio_trader.kite.ticks import Ohlc, QuoteTick


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in ("KITE_API_KEY", "KITE_ACCESS_TOKEN", "KITE_ROOT", "KITE_TICKER_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_an_instrument_asked_twice_is_shown_once_with_its_tick_count(backend: str) -> None:
    result = CliRunner().invoke(
        main,
        [
            *("stream", "--sandbox", "--backend", backend, "--plain", "--count", "6"),
            *("NSE:NIFTY 50", "256265", "NSE:TCS"),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert lines[0] == "streaming NSE:NIFTY 50, NSE:TCS (quote mode)"
    assert not any(line.startswith("tick 256265 ") for line in lines)
    counts = r"stream finished: 6 ticks \(NSE:NIFTY 50 (\d+), NSE:TCS (\d+)\)"
    found = re.fullmatch(counts, lines[-1])
    assert found, lines[-1]
    assert sum(map(int, found.groups())) == 6
    shown = [line.split(" last=")[0] for line in lines if line.startswith("tick ")]
    assert set(shown) == {"tick NSE:NIFTY 50", "tick NSE:TCS"}


def test_the_live_table_has_a_tick_count_column() -> None:
    board = TickBoard({408065: "NSE:INFY", 2953217: "NSE:TCS"})
    tick = QuoteTick(
        instrument_token=408065,
        last_price=1500.0,
        last_traded_quantity=1,
        average_traded_price=1499.0,
        volume_traded=1_234_567,
        total_buy_quantity=10,
        total_sell_quantity=20,
        ohlc=Ohlc(open=1490.0, high=1510.0, low=1480.0, close=1495.0),
    )
    for _ in range(3):
        board.update(tick)
    console = Console(file=None, width=100, record=True)
    console.print(board.table("ticks"))
    text = console.export_text()
    assert re.search(r"┃ instrument +┃ +last ┃ .* ┃ # ┃", text)
    assert re.search(r"│ NSE:INFY +│ 1,500.00 │ .* │ 1,234,567 │ .* │ 3 │", text)
    assert re.search(r"│ NSE:TCS +│ .* │ 0 │", text)


def test_quote_and_stream_format_volumes_alike() -> None:
    volume = 1_234_567
    tick = QuoteTick(
        instrument_token=408065,
        last_price=1500.0,
        last_traded_quantity=1,
        average_traded_price=1499.0,
        volume_traded=volume,
        total_buy_quantity=10,
        total_sell_quantity=20,
        ohlc=Ohlc(open=1490.0, high=1510.0, low=1480.0, close=1495.0),
    )
    quote = Quote(instrument_token=408065, last_price=1500.0, volume=volume)
    console = Console(file=None, width=160, record=True)
    console.print(record_table("quotes", [_Keyed("NSE:INFY", quote)], QUOTE_COLUMNS))
    table = console.export_text()
    assert tick_cells(tick)["volume"] == "1,234,567"
    assert re.search(r"│ +1,234,567 │", table)  # right-aligned, like the numbers around it

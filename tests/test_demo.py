"""``aio-trader demo``: the README's first command, run headless as a real subprocess."""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys

import anyio
import pytest
from anyio.streams.text import TextReceiveStream
from rich.console import Console

from aio_trader._cli.demo import run_demo
from aio_trader._cli.render import LiveScreen, TickBoard
from aio_trader.sandbox import SandboxConfig

DEMO = [sys.executable, "-m", "aio_trader._cli", "demo"]
#: A hang guard only (the demo stops itself after --duration); never a speed assertion.
HANG_GUARD = 120


def order_ids(output: str, kind: str) -> list[str]:
    return re.findall(rf"^order placed: {kind} BUY 1 NSE:INFY .*-> (\d+)$", output, re.M)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_runs_headless_end_to_end(backend: str) -> None:
    """Not a terminal: plain lines. Login, profile, margins, ticks of the three instruments,
    both orders' updates over the WebSocket, positions, a clean exit."""
    done = subprocess.run(
        [*DEMO, "--backend", backend, "--duration", "5"],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"(on {backend})" in out
    assert "redirected with a request_token" in out
    assert re.search(r"^profile: AB1234 Sandbox User \(ZERODHA\)", out, re.M)
    assert re.search(r"^margins: equity net [\d,.]+, cash available [\d,.]+$", out, re.M)
    for label in ("NSE:INFY", "NSE:NIFTY 50", r"NFO:NIFTY\w+FUT"):
        assert re.search(rf"^tick {label} last=[\d,.]+ change=[+-][\d.]+% ", out, re.M), label
    # Full mode reaches the table: best bid and ask of the depth.
    assert re.search(r"^tick NSE:INFY .* bid=[\d,.]+ ask=[\d,.]+$", out, re.M)
    # ... once full mode took effect, no quote tick follows (issue 17: the quote ticks that
    # came before it, in Kite's default mode, are delivered now, no longer dropped)
    for label in ("NSE:INFY", r"NFO:\S+"):
        lines = re.findall(rf"^tick {label} .*$", out, re.M)
        full = next(n for n, line in enumerate(lines) if not line.endswith("bid=- ask=-"))
        assert all(not line.endswith("bid=- ask=-") for line in lines[full:]), label
    [market] = order_ids(out, "MARKET")
    [limit] = order_ids(out, r"LIMIT")
    assert re.search(
        # Kite books a protected market order as a LIMIT at the protected price.
        rf"^order update {market} (MARKET|LIMIT) BUY NSE:INFY COMPLETE filled 1/1 at",
        out,
        re.M,
    )
    assert f"order update {limit} LIMIT BUY NSE:INFY OPEN filled 0/1" in out
    assert re.search(r"^position: NSE:INFY CNC qty 1 avg [\d,.]+ pnl [+-]", out, re.M)
    assert f"order update {limit} LIMIT BUY NSE:INFY CANCELLED" in out
    assert re.search(r"^demo finished \(ran 5 s\): ticks NSE:INFY \d+, ", out, re.M)
    # The session's secrets are never shown.
    config = SandboxConfig()
    for secret in (config.access_token, config.api_secret, config.refresh_token):
        assert secret not in out + done.stderr


async def test_demo_stops_cleanly_on_sigint(anyio_backend: str) -> None:
    """Ctrl-C (SIGINT) cancels the demo: connections close, the sandbox stops, exit code 0."""
    command = [*DEMO, "--backend", anyio_backend, "--duration", "600", "--plain"]
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        text = ""
        with anyio.fail_after(HANG_GUARD):
            async for chunk in TextReceiveStream(process.stdout):
                text += chunk
                if re.search(r"^order update \d+ \w+ BUY NSE:INFY COMPLETE", text, re.M):
                    break
            process.send_signal(signal.SIGINT)
            text += "".join([chunk async for chunk in TextReceiveStream(process.stdout)])
            assert await process.wait() == 0
    assert re.search(r"^demo finished \(stopped by SIGINT\): ticks NSE:INFY \d+", text, re.M)


async def test_run_demo_live_view_shows_ticks_and_orders(anyio_backend: str) -> None:
    """The live view (rich ``Live``), in-process: the final frame has the tick table with
    every instrument and the orders table with both orders' last states."""
    out = io.StringIO()
    summary = await run_demo(3, backend=anyio_backend, live=True, out=out)
    text = out.getvalue()
    assert summary.signal is None
    assert set(summary.ticks) == {"NSE:INFY", "NSE:NIFTY 50", "NFO:NIFTY26DECFUT"}
    assert all(count > 0 for count in summary.ticks.values())
    assert summary.order_updates >= 3
    assert "aio-trader demo (Ctrl-C to stop)" in text
    assert re.search(r"NSE:NIFTY 50 +│ +[\d,.]+ │ [+-][\d.]+% │", text)
    # The tick count of each instrument, in the last column.
    assert re.search(r"NSE:INFY +│ .* │ +\d+ │\n", text)
    # The first events stay in the panel for the whole run.
    final = text[text.rindex("aio-trader demo (Ctrl-C to stop)") :]
    assert "login: http://127.0.0.1:" in final
    assert "profile: AB1234 Sandbox User" in final
    assert "orders (updates over the WebSocket)" in text
    assert re.search(r"(MARKET|LIMIT) +│ BUY +│ NSE:INFY +│ COMPLETE", text)
    assert re.search(r"LIMIT +│ BUY +│ NSE:INFY +│ (OPEN|CANCELLED)", text)


def test_the_live_panel_keeps_its_pinned_notes_and_the_latest_ones() -> None:
    screen = LiveScreen(Console(file=io.StringIO()), TickBoard({}), "title", pinned=2)
    for number in range(30):
        screen.note(f"note {number}")
    assert screen.notes == [
        "note 0",
        "note 1",
        f"… {30 - 2 - LiveScreen.RECENT} more",
        *(f"note {n}" for n in range(30 - LiveScreen.RECENT, 30)),
    ]

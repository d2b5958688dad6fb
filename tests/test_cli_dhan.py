"""``aio-trader ... --broker dhan``: every command against a Dhan sandbox (an embedded one,
``--sandbox``, or a running one, ``--root``), credentials from the flags, the environment
(``DHAN_CLIENT_ID``/``DHAN_ACCESS_TOKEN``) or the token store; instruments as
``SEGMENT:SECURITY_ID``, anything else a one-line usage error before any I/O; secrets never
in the output."""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from anyio.streams.text import TextReceiveStream
from click.testing import CliRunner, Result

from aio_trader._cli.group import main
from aio_trader.dhan import Dhan, TokenStore
from aio_trader.sandbox import Sandbox, SandboxConfig

BACKENDS = pytest.mark.parametrize("backend", ["asyncio", "trio"])
CONFIG = SandboxConfig(broker="dhan")
VARIABLES = (
    "DHAN_CLIENT_ID",
    "DHAN_ACCESS_TOKEN",
    "DHAN_ROOT",
    "DHAN_TOTP_SECRET",
    "KITE_API_KEY",
    "KITE_ACCESS_TOKEN",
    "KITE_USER_ID",
    "KITE_ENCTOKEN",
    "KITE_ROOT",
    "KITE_TICKER_URL",
    "AIO_TRADER_BACKEND",
)
HDFCBANK = ("--instrument", "NSE_EQ:1333", "--transaction-type", "BUY", "--product", "CNC")
#: Generous bound for a subprocess (a hang fails the test instead of the suite).
HANG_GUARD = 120


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private config directory and no broker variables from the environment."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "aio-trader"


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the command in-process; no traceback, and the sandbox's token never printed."""
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert "Traceback" not in result.output
    assert CONFIG.access_token not in result.output, "a secret was printed"
    return result


async def invoke_on(sb: Sandbox, *args: str, env: dict[str, str] | None = None) -> Result:
    """The command against the running ``sb`` (from a worker thread: its own event loop),
    with its credentials from the environment unless ``env`` is given."""
    if env is None:
        env = {"DHAN_CLIENT_ID": sb.client_id, "DHAN_ACCESS_TOKEN": sb.access_token}
    call = functools.partial(invoke, *args, "--broker", "dhan", "--root", sb.root_url, env=env)
    return await anyio.to_thread.run_sync(call)


def one_line_error(result: Result, exit_code: int) -> str:
    assert result.exit_code == exit_code, result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    return line


def placed_id(result: Result) -> str:
    found = re.search(r"^order placed: .* -> (\d+)$", result.output, re.MULTILINE)
    assert found, result.output
    return found.group(1)


# -- instruments on the command line ---------------------------------------------------------


@pytest.mark.parametrize("spec", ["NSE:INFY", "INFY", "1333", "NSE_EQ:HDFCBANK", "NSE_XX:1", ":1"])
@pytest.mark.parametrize("command", ["ltp", "quote", "stream", "historical"])
def test_anything_but_segment_and_security_id_is_one_line_before_any_io(
    command: str, spec: str
) -> None:
    # A client id and token for a server nobody listens on: nothing may be sent.
    dates = ("--from", "2026-11-02", "--to", "2026-11-06") if command == "historical" else ()
    result = invoke(
        command,
        "--broker",
        "dhan",
        *("--client-id", "1", "--access-token", "t", "--root", "http://127.0.0.1:9"),
        *dates,
        spec,
    )
    line = one_line_error(result, 2)
    assert "SEGMENT:SECURITY_ID (e.g. NSE_EQ:1333" in line
    assert repr(spec) in line


def test_kite_options_are_refused_with_dhan() -> None:
    for flag in ("--api-key", "--user-id", "--enctoken"):
        line = one_line_error(invoke("orders", "--broker", "dhan", flag, "x"), 2)
        assert f"{flag} is Kite's" in line


def test_a_client_id_without_broker_dhan_is_refused() -> None:
    line = one_line_error(invoke("orders", "--sandbox", "--client-id", "1"), 2)
    assert "--client-id is Dhan's: add --broker dhan" in line
    # DHAN_CLIENT_ID in the environment changes nothing for Kite's commands.
    kite = invoke("orders", "--sandbox", env={"DHAN_CLIENT_ID": "1"})
    assert kite.exit_code == 0, kite.output


def test_commands_without_dhan_credentials_say_how_to_get_them() -> None:
    no_id = one_line_error(invoke("orders", "--broker", "dhan"), 2)
    assert "no Dhan client id" in no_id
    assert "DHAN_CLIENT_ID" in no_id
    assert "--sandbox" in no_id
    # Kite's variables are Kite's: they are not Dhan credentials.
    kite = {"KITE_API_KEY": "k", "KITE_ACCESS_TOKEN": "t"}
    no_token = one_line_error(invoke("orders", "--broker", "dhan", "--client-id", "7", env=kite), 2)
    assert "no Dhan access token for client id 7" in no_token
    assert "aio-trader login --broker dhan" in no_token


# -- quotes, instruments, candles on the embedded sandbox -------------------------------------


@BACKENDS
def test_ltp_and_quote_tables_and_json(backend: str) -> None:
    common = ("--broker", "dhan", "--sandbox", "--backend", backend)
    table = invoke("quote", *common, "NSE_EQ:1333", "IDX_I:13")
    assert table.exit_code == 0, table.output
    assert "quotes (2)" in table.output
    for header in ("instrument", "last", "change", "volume", "bid", "ask", "prev close", "oi"):
        assert header in table.output
    assert "NSE_EQ:1333" in table.output
    assert "IDX_I:13" in table.output
    lines = invoke("ltp", *common, "--json", "nse_eq:1333", "IDX_I:13").output.splitlines()
    prices = [json.loads(line) for line in lines]
    assert [p["instrument"] for p in prices] == ["NSE_EQ:1333", "IDX_I:13"]
    assert all(p["last_price"] > 0 for p in prices)
    quotes = [
        json.loads(line)
        for line in invoke("quote", *common, "--json", "NSE_EQ:1333").output.splitlines()
    ]
    assert quotes[0]["depth"]["buy"][0]["price"] > 0


def test_a_quote_of_an_unknown_security_is_an_error() -> None:
    result = invoke("ltp", "--broker", "dhan", "--sandbox", "NSE_EQ:1333", "NSE_EQ:999999")
    assert "NSE_EQ:1333" in result.output
    assert one_line_error(result, 1) == "Error: no quote for: NSE_EQ:999999"


@BACKENDS
def test_instruments_csv_of_a_segment(backend: str, tmp_path: Path) -> None:
    out = tmp_path / "nse.csv"
    result = invoke(
        "instruments",
        "--broker",
        "dhan",
        "--sandbox",
        "--backend",
        backend,
        "nse_eq",
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert f"{len(rows)} instruments written to {out}" in result.output
    assert {"1333", "1594"} <= {row["security_id"] for row in rows}
    assert {row["exchange"] for row in rows} == {"NSE"}
    bad = one_line_error(invoke("instruments", "--broker", "dhan", "--sandbox", "NFO"), 2)
    assert "'NFO' is not a Dhan segment" in bad


@BACKENDS
def test_historical_daily_and_intraday_candles_to_csv(backend: str) -> None:
    common = ("historical", "--broker", "dhan", "--sandbox", "--backend", backend)
    daily = invoke(*common, "NSE_EQ:1333", "IDX_I:13", "--from", "2026-11-02", "--to", "2026-11-07")
    assert daily.exit_code == 0, daily.output
    summary = re.search(
        r"^(\d+) candles, 2 instrument\(s\) -> standard output$", daily.output, re.M
    )
    assert summary, daily.output
    lines = [line for line in daily.output.splitlines() if line.count(",") >= 7]
    assert lines[0] == "instrument,security_id,date,open,high,low,close,volume"
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    assert len(rows) == int(summary.group(1))
    assert {row["instrument"] for row in rows} == {"NSE_EQ:1333", "IDX_I:13"}
    minutes = invoke(
        *common,
        "NSE_EQ:1333",
        "--from",
        "2026-12-01",
        "--to",
        "2026-12-02",
        "--interval",
        "15minute",
        "--oi",
    )
    assert minutes.exit_code == 0, minutes.output
    assert "instrument,security_id,date,open,high,low,close,volume,oi\n" in minutes.output
    assert "15:15:00+05:30" in minutes.output


def test_historical_refuses_what_dhan_cannot_give_before_any_io() -> None:
    common = ("historical", "--broker", "dhan", "--client-id", "1", "--root", "http://127.0.0.1:9")
    dates = ("--from", "2026-11-02", "--to", "2026-11-06")
    futures = one_line_error(invoke(*common, *dates, "NSE_FNO:35001"), 2)
    assert "NSE_FNO:35001: give --instrument-type" in futures
    interval = one_line_error(invoke(*common, *dates, "--interval", "3minute", "NSE_EQ:1333"), 2)
    assert "Dhan has no 3minute candles" in interval
    kite = one_line_error(invoke("historical", "--instrument-type", "EQUITY", *dates, "NSE:X"), 2)
    assert "only with --broker dhan" in kite


# -- stream ------------------------------------------------------------------------------------


@BACKENDS
def test_stream_json_and_plain_lines(backend: str) -> None:
    common = ("stream", "--broker", "dhan", "--sandbox", "--backend", backend)
    result = invoke(*common, "--json", "--mode", "full", "--count", "4", "NSE_EQ:1333", "IDX_I:13")
    assert result.exit_code == 0, result.output
    ticks = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert len(ticks) == 4
    assert {t["instrument"] for t in ticks} == {"NSE_EQ:1333", "IDX_I:13"}
    assert all(t["type"] == "tick" and t["last_price"] > 0 for t in ticks)
    assert ticks[0]["depth"]["buy"][0]["price"] > 0
    assert "stream finished: 4 ticks" in result.output
    plain = invoke(*common, "--count", "2", "NSE_EQ:1333")
    assert plain.exit_code == 0, plain.output
    lines = re.findall(r"^tick NSE_EQ:1333 last=[\d,.]+ change=[+-][\d.]+% .*$", plain.output, re.M)
    assert len(lines) == 2
    assert "streaming NSE_EQ:1333 (quote mode)" in plain.output


async def test_stream_live_table(capsys: pytest.CaptureFixture[str]) -> None:
    from aio_trader._cli import dhan
    from aio_trader._cli.connection import Connection

    conn = Connection(sandbox=True, broker="dhan")
    await dhan.stream(conn, ["NSE_EQ:1333", "IDX_I:13"], "full", "live", 4, None, "conflate")
    out = capsys.readouterr().out
    assert "stream finished: 4 ticks" in out
    assert re.search(r"instrument +┃ +last ┃ change ┃ volume ┃ +bid ┃ +ask ┃ #", out)
    assert re.search(r"NSE_EQ:1333 │ +[\d,.]+ │ [+-][\d.]+% │", out)


async def test_stream_from_a_running_sandbox_finds_its_feed_beside_the_root(
    dhan_sandbox: Sandbox, anyio_backend: str
) -> None:
    result = await invoke_on(
        dhan_sandbox, "stream", "--backend", anyio_backend, "--json", "--count", "3", "IDX_I:13"
    )
    assert result.exit_code == 0, result.output
    ticks = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [t["instrument"] for t in ticks] == ["IDX_I:13"] * 3


# -- account tables, credentials ---------------------------------------------------------------


async def test_account_tables_from_a_running_sandbox_with_credentials_from_the_environment(
    dhan_sandbox: Sandbox,
) -> None:
    sb = dhan_sandbox
    async with Dhan(sb.client_id, sb.access_token, root=sb.root_url) as dhan:
        order_id = await dhan.place_order(
            1333, "NSE_EQ", "BUY", 3, "MARKET", "CNC", market_protection=-1
        )
    sb.step_market()
    # Kite's variables beside Dhan's change nothing.
    env = {
        "DHAN_CLIENT_ID": sb.client_id,
        "DHAN_ACCESS_TOKEN": sb.access_token,
        "KITE_API_KEY": "kite_key",
        "KITE_ACCESS_TOKEN": "kite_token",
    }
    orders = await invoke_on(sb, "orders", "--json", env=env)
    positions = await invoke_on(sb, "positions", env=env)
    holdings = await invoke_on(sb, "holdings", env=env)
    assert orders.exit_code == positions.exit_code == holdings.exit_code == 0, orders.output
    [order] = [json.loads(line) for line in orders.output.splitlines()]
    # JSON lines: each record with Dhan's key names
    assert order["orderId"] == order_id
    assert order["orderStatus"] == "TRADED"
    assert "positions (1)" in positions.output
    assert "NSE_EQ:HDFCBANK" in positions.output
    for header in ("instrument", "product", "qty", "avg", "pnl", "realised", "unrealised"):
        assert header in positions.output
    assert re.search(r"holdings \([45]\)", holdings.output)  # with today's CNC buy, or not yet
    assert ":INFY " in holdings.output


async def test_account_tables_with_credentials_from_the_flags(dhan_sandbox: Sandbox) -> None:
    sb = dhan_sandbox
    flags = ("--client-id", sb.client_id, "--access-token", sb.access_token)
    result = await invoke_on(sb, "orders", *flags, env={})
    assert result.exit_code == 0, result.output
    assert "orders (0)" in result.output
    for header in ("order id", "time", "instrument", "side", "type", "status", "tag"):
        assert header in result.output


async def test_login_stores_the_token_privately_and_the_commands_use_it(
    dhan_sandbox: Sandbox, config_home: Path
) -> None:
    sb = dhan_sandbox
    login = await invoke_on(
        sb, "login", "--client-id", sb.client_id, "--access-token", sb.access_token, env={}
    )
    assert login.exit_code == 0, login.output
    stored = TokenStore(config_home).path(sb.client_id)
    assert f"Logged in to Dhan as {sb.client_id}" in login.output
    assert str(stored) in login.output
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert TokenStore(config_home).load(sb.client_id) == sb.access_token
    # No token given: the store's is used.
    orders = await invoke_on(sb, "holdings", env={"DHAN_CLIENT_ID": sb.client_id})
    assert orders.exit_code == 0, orders.output
    assert "holdings (4)" in orders.output


async def test_login_refuses_a_token_dhan_refuses(dhan_sandbox: Sandbox, config_home: Path) -> None:
    sb = dhan_sandbox
    result = await invoke_on(
        sb, "login", "--client-id", sb.client_id, "--access-token", "wrong", env={}
    )
    assert result.exit_code == 1, result.output
    assert not TokenStore(config_home).path(sb.client_id).exists()
    assert "wrong" not in result.output


async def test_login_with_pin_and_totp_secret_gets_and_stores_a_token(
    dhan_sandbox: Sandbox, config_home: Path
) -> None:
    sb = dhan_sandbox
    secrets = ("--pin", CONFIG.pin, "--totp-secret", CONFIG.totp_secret)
    # KITE_TOTP_SECRET is Kite's: never used for Dhan.
    env = {"KITE_TOTP_SECRET": "KITEKITEKITEKITE"}
    result = await invoke_on(sb, "login", "--client-id", sb.client_id, *secrets, env=env)
    assert result.exit_code == 0, result.output
    token = TokenStore(config_home).load(sb.client_id)
    assert token
    for secret in (token, CONFIG.pin, CONFIG.totp_secret):
        assert secret not in result.output
    holdings = await invoke_on(sb, "holdings", env={"DHAN_CLIENT_ID": sb.client_id})
    assert holdings.exit_code == 0, holdings.output


def test_login_on_the_embedded_sandbox(config_home: Path) -> None:
    result = invoke("login", "--broker", "dhan", "--sandbox")
    assert result.exit_code == 0, result.output
    assert TokenStore(config_home).load(CONFIG.client_id) == CONFIG.access_token
    bare = one_line_error(invoke("login", "--broker", "dhan", "--client-id", "1"), 2)
    assert "--access-token (DHAN_ACCESS_TOKEN), or --pin with --totp" in bare


# -- orders ------------------------------------------------------------------------------------


@BACKENDS
def test_a_protected_market_order_is_followed_to_traded(backend: str) -> None:
    result = invoke(
        *("order", "place", "--broker", "dhan", "--sandbox", "--backend", backend, *HDFCBANK),
        *("--quantity", "1", "--order-type", "MARKET", "--market-protection", "-1"),
    )
    assert result.exit_code == 0, result.output
    order_id = placed_id(result)
    assert "order placed: MARKET BUY 1 NSE_EQ:1333 CNC (regular)" in result.output
    assert re.search(
        rf"^order update {order_id} .* TRADED filled 1/1 at [\d,.]+$", result.output, re.M
    )


def test_an_unprotected_market_order_is_refused_before_any_request() -> None:
    result = invoke(
        *("order", "place", "--broker", "dhan", "--client-id", "1", "--access-token", "t"),
        *("--root", "http://127.0.0.1:9", *HDFCBANK, "--quantity", "1", "--order-type", "MARKET"),
    )
    line = one_line_error(result, 2)
    assert "MARKET orders need --market-protection" in line
    assert "Dhan protects API market orders" in line
    wrong = invoke(
        *("order", "place", "--broker", "dhan", "--sandbox", "--exchange", "NSE"),
        *("--tradingsymbol", "INFY", "--transaction-type", "BUY", "--product", "CNC"),
        *("--quantity", "1", "--order-type", "LIMIT", "--price", "1"),
    )
    assert "--instrument SEGMENT:SECURITY_ID" in one_line_error(wrong, 2)
    kite = ["order", "place", "--sandbox", "--transaction-type", "BUY", "--quantity", "1"]
    kite += ["--product", "CNC", "--order-type", "LIMIT", "--price", "1"]
    missing = one_line_error(invoke(*kite, "--tradingsymbol", "INFY"), 2)
    assert missing == "Error: Missing option '--exchange'."
    instrument = one_line_error(invoke(*kite, "--instrument", "NSE_EQ:1333"), 2)
    assert "--instrument is for --broker dhan" in instrument


async def test_place_modify_cancel_a_limit_order(dhan_sandbox: Sandbox, anyio_backend: str) -> None:
    sb = dhan_sandbox
    backend = ("--backend", anyio_backend, "--yes")
    placed = await invoke_on(
        sb,
        "order",
        "place",
        *backend,
        *HDFCBANK,
        "--quantity",
        "2",
        "--order-type",
        "LIMIT",
        "--price",
        "500",
        "--tag",
        "cli-test",
        "--no-wait",
    )
    assert placed.exit_code == 0, placed.output
    order_id = placed_id(placed)
    assert "following" not in placed.output
    # modify follows the order to its first state after the change (its update over the
    # order-update socket, or its read, whichever comes first)
    modified = await invoke_on(
        sb, "order", "modify", *backend, "--order-id", order_id, "--price", "501"
    )
    assert modified.exit_code == 0, modified.output
    assert re.search(rf"^order (update )?{order_id} .*PENDING filled 0/2$", modified.output, re.M)
    assert f"order modified: {order_id} (price 501.0)" in modified.output
    cancelled = await invoke_on(sb, "order", "cancel", *backend, "--order-id", order_id)
    assert cancelled.exit_code == 0, cancelled.output
    assert f"order cancelled: {order_id}" in cancelled.output
    assert re.search(rf"^order (update )?{order_id} .*CANCELLED", cancelled.output, re.M)
    async with Dhan(sb.client_id, sb.access_token, root=sb.root_url) as dhan:
        order = await dhan.order(order_id)
    assert order.order_status == "CANCELLED"
    assert order.price == 501
    assert order.correlation_id == "cli-test"


# -- processes: `aio-trader sandbox --broker dhan` and the commands against it ----------------


async def test_commands_in_processes_against_a_sandbox_process(tmp_path: Path) -> None:
    """Real processes, as a user runs them: the server prints its root; the commands get the
    credentials from the environment, then from the token store `login` filled."""
    server = [
        sys.executable,
        "-m",
        "aio_trader._cli",
        "sandbox",
        "--broker",
        "dhan",
        "--port",
        "0",
        "--client-id",
        "1100000042",
        "--access-token",
        "cli_dhan_token",
    ]
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    async with await anyio.open_process(server) as process:
        assert process.stdout is not None
        text = ""
        async for chunk in TextReceiveStream(process.stdout):
            text += chunk
            if "Serving until Ctrl-C." in text:
                break
        root = text.splitlines()[0].split()[-1]

        async def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
            command = [
                *(sys.executable, "-m", "aio_trader._cli", *args),
                *("--broker", "dhan", "--root", root),
            ]
            done = await anyio.run_process(command, env={**env, **extra}, check=False)
            return subprocess.CompletedProcess(
                command, done.returncode, done.stdout.decode(), done.stderr.decode()
            )

        try:
            ltp = await cli(
                "ltp",
                "--json",
                "NSE_EQ:1333",
                DHAN_CLIENT_ID="1100000042",
                DHAN_ACCESS_TOKEN="cli_dhan_token",
            )
            assert ltp.returncode == 0, ltp.stderr
            [price] = [json.loads(line) for line in ltp.stdout.splitlines()]
            assert price["instrument"] == "NSE_EQ:1333"
            login = await cli(
                "login", "--client-id", "1100000042", DHAN_ACCESS_TOKEN="cli_dhan_token"
            )
            assert login.returncode == 0, login.stderr
            orders = await cli("orders", "--json", DHAN_CLIENT_ID="1100000042")
            assert orders.returncode == 0, orders.stderr
            assert orders.stdout == ""  # no orders yet, and no error
            bad = await cli("quote", "NSE:INFY", DHAN_CLIENT_ID="1100000042")
            assert bad.returncode == 2
            assert "give SEGMENT:SECURITY_ID" in bad.stderr
            for done in (ltp, login, orders, bad):
                assert "cli_dhan_token" not in done.stdout + done.stderr
        finally:
            process.send_signal(signal.SIGTERM)
        assert await process.wait() == 0


# -- demo --------------------------------------------------------------------------------------


@BACKENDS
def test_demo_runs_headless_end_to_end(backend: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aio_trader._cli",
            "demo",
            "--broker",
            "dhan",
            "--backend",
            backend,
            "--duration",
            "6",
        ],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert f"(on {backend})" in out
    assert re.search(rf"^login: access token of client {CONFIG.client_id} accepted", out, re.M)
    assert re.search(r"^funds: available [\d,.]+, ", out, re.M)
    for name in ("NSE_EQ:1333", "IDX_I:13", r"NSE_FNO:\d+ \(NIFTY-\S+-FUT\)"):
        assert re.search(rf"^tick {name} last=[\d,.]+ change=[+-][\d.]+% ", out, re.M), name
    assert re.search(r"^tick NSE_EQ:1333 .* bid=[\d,.]+ ask=[\d,.]+$", out, re.M)
    [market] = re.findall(r"^order placed: MARKET BUY 1 NSE_EQ:1333 -> (\d+)$", out, re.M)
    [limit] = re.findall(r"^order placed: LIMIT BUY 1 NSE_EQ:1333 @ [\d,.]+ -> (\d+)$", out, re.M)
    assert re.search(
        rf"^order update {market} \w+ BUY NSE_EQ:HDFCBANK TRADED filled 1/1", out, re.M
    )
    assert f"order update {limit} LIMIT BUY NSE_EQ:HDFCBANK PENDING filled 0/1" in out
    assert re.search(r"^position: NSE_EQ:HDFCBANK CNC qty [12] avg [\d,.]+ pnl [+-]", out, re.M)
    # the limit order is cancelled near the end, unless the market filled it first
    assert re.search(rf"^order update {limit} .* (CANCELLED|TRADED)", out, re.M)
    assert re.search(r"^demo finished \(ran 6 s\): ticks NSE_EQ:1333 \d+, ", out, re.M)
    assert CONFIG.access_token not in out + done.stderr


async def test_run_dhan_demo_live_view_shows_ticks_and_orders(anyio_backend: str) -> None:
    from aio_trader._cli.dhan_demo import run_dhan_demo

    out = io.StringIO()
    summary = await run_dhan_demo(4, backend=anyio_backend, live=True, out=out)
    text = out.getvalue()
    assert summary.ticks.get("NSE_EQ:1333", 0) > 0
    assert summary.order_updates >= 2
    assert "orders (updates over the WebSocket)" in text
    assert "NSE_EQ:HDFCBANK" in text

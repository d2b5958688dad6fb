"""The mistakes a new user makes with ``aio-trader``: each reads as one clear line, exit
status 2 for usage and 1 for failures, never a traceback, and nothing is sent or
downloaded before the arguments are known to be good."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import anyio.to_thread
import click
import pytest
from click.testing import CliRunner, Result

from aio_trader._cli import market
from aio_trader._cli.connection import describe, run
from aio_trader._cli.group import main
from aio_trader._cli.market import atomic_path
from aio_trader.errors import RateLimitError
from aio_trader.kite.constants import EndpointGroup
from aio_trader.sandbox import Sandbox

KITE_VARIABLES = ("KITE_API_KEY", "KITE_ACCESS_TOKEN", "KITE_ROOT", "KITE_TICKER_URL")


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("COLUMNS", "200")
    for name in (*KITE_VARIABLES, "AIO_TRADER_BACKEND"):
        monkeypatch.delenv(name, raising=False)


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def one_line_error(result: Result, exit_code: int) -> str:
    """The ``Error: ...`` line of a failed command (asserting its exit status and that
    no traceback was printed)."""
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    return line


def sandbox_env(sb: Sandbox) -> dict[str, str]:
    return {"KITE_API_KEY": sb.api_key, "KITE_ACCESS_TOKEN": sb.access_token}


def entry_point(*args: str, block: str = "") -> subprocess.CompletedProcess[str]:
    """The ``aio-trader`` console script's function in a fresh interpreter, with the module
    ``block`` made unimportable (as on an install without the extra that provides it)."""
    code = (
        "import sys\n"
        + (f"sys.modules[{block!r}] = None\n" if block else "")
        + f"sys.argv = ['aio-trader', *{list(args)!r}]\n"
        + "from aio_trader._cli.entry import main\nmain()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITE_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


# -- where to connect -------------------------------------------------------------------------


def test_a_root_without_scheme_is_a_usage_error_from_the_flag_and_the_environment() -> None:
    flag = one_line_error(invoke("orders", "--root", "not-a-url"), 2)
    assert "'not-a-url' is not a URL starting with http:// or https://" in flag
    env = one_line_error(invoke("orders", env={"KITE_ROOT": "localhost:8765"}), 2)
    assert "KITE_ROOT" in env
    assert "e.g. http://127.0.0.1:8765" in env


async def test_a_ticker_url_without_scheme_fails_at_once(anyio_backend: str) -> None:
    """Refused before connecting anywhere: the server sees no request, no WebSocket."""
    async with Sandbox() as sb:
        result = await anyio.to_thread.run_sync(
            functools.partial(
                invoke,
                *("stream", "--root", sb.root_url, "NSE:INFY"),
                *("--ticker-url", "127.0.0.1:8765/ws", "--backend", anyio_backend),
                env=sandbox_env(sb),
            )
        )
        stats = sb.state.stats
    line = one_line_error(result, 2)
    assert "ws:// or wss://" in line
    assert stats.requests == 0
    assert stats.ws_connections == 0


# -- output files ----------------------------------------------------------------------------------


async def test_output_paths_are_checked_before_anything_is_downloaded(
    anyio_backend: str, tmp_path: Path
) -> None:
    async with Sandbox() as sb:
        common = ("--root", sb.root_url, "--backend", anyio_backend)

        async def run(*args: str) -> Result:
            call = functools.partial(invoke, *args, *common, env=sandbox_env(sb))
            return await anyio.to_thread.run_sync(call)

        missing = await run("instruments", "NSE", "-o", "/nonexistent/dir/x.csv")
        directory = await run("instruments", "NSE", "-o", str(tmp_path))
        historical = await run(
            "historical",
            *("NSE:INFY", "--from", "2024-01-01", "--to", "2024-03-01"),
            *("-o", "/nonexistent/x.csv"),
        )
        requests = sb.state.stats.requests
    assert "directory /nonexistent/dir does not exist" in one_line_error(missing, 2)
    assert f"{tmp_path} is a directory" in one_line_error(directory, 2)
    assert "directory /nonexistent does not exist" in one_line_error(historical, 2)
    assert requests == 0  # nothing was downloaded and lost


def test_historical_and_instruments_files_are_written_whole(tmp_path: Path) -> None:
    candles = tmp_path / "candles.csv"
    result = invoke(
        "historical",
        *("--sandbox", "NSE:INFY", "--from", "2024-01-01", "--to", "2024-02-01"),
        *("-o", str(candles)),
    )
    assert result.exit_code == 0, result.output
    assert candles.read_text().startswith("instrument,instrument_token,date,")
    listing = tmp_path / "nse.csv"
    assert invoke("instruments", "--sandbox", "NSE", "-o", str(listing)).exit_code == 0
    assert listing.stat().st_mode & 0o777 == 0o666 & ~_umask()  # as open() makes files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candles.csv", "nse.csv"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    target = tmp_path / "candles.csv"
    target.write_text("the previous download\n")

    def interrupted() -> None:
        with atomic_path(str(target)) as temp:
            Path(temp).write_text("half of the new one")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert target.read_text() == "the previous download\n"
    assert [p.name for p in tmp_path.iterdir()] == ["candles.csv"]


# -- the sandbox command ----------------------------------------------------------------------


def test_sandbox_port_out_of_range_is_a_usage_error() -> None:
    line = one_line_error(invoke("sandbox", "--port", "99999"), 2)
    assert "99999 is not in the range 0<=x<=65535" in line


def test_sandbox_on_a_port_in_use_says_so_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(invoke("sandbox", "--port", str(port)), 1)
    assert f"cannot serve on 127.0.0.1:{port}: Address already in use" in line
    assert "--port 0" in line


# -- a core-only install --------------------------------------------------------------------------


def test_the_console_script_without_click_names_the_cli_extra() -> None:
    done = entry_point("--help", block="click")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "aio-trader: the command line tool needs the `cli` extra (click is not installed): "
        "pip install 'aio-trader[cli]'"
    )


def test_the_console_script_runs_the_command_when_click_is_there() -> None:
    done = entry_point("--help")
    assert done.returncode == 0, done.stderr
    assert "sandbox" in done.stdout
    assert "order" in done.stdout


def test_importing_the_sandbox_without_its_extra_names_it() -> None:
    code = "import sys\nsys.modules['sniffio'] = None\nimport aio_trader.sandbox\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "ModuleNotFoundError: aio_trader.sandbox needs the `sandbox` extra (sniffio is not "
        "installed): pip install 'aio-trader[sandbox]'"
    )


def test_sandbox_flag_without_the_sandbox_extra_is_one_line() -> None:
    done = entry_point("ltp", "--sandbox", "NSE:INFY", block="starlette")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "pip install 'aio-trader[sandbox]'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# -- instruments ----------------------------------------------------------------------------------


def test_a_bare_symbol_gets_the_exchange_symbol_hint_before_any_request() -> None:
    line = one_line_error(invoke("ltp", "--root", "http://127.0.0.1:9", "INFY"), 2)
    assert "'INFY': give EXCHANGE:SYMBOL (e.g. NSE:INFY) or an instrument token" in line


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_streaming_a_token_no_instrument_has_says_nothing_arrives(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(market, "SILENT_AFTER", 0.5)
    result = invoke(
        *("stream", "--sandbox", "--backend", backend, "--plain", "--duration", "2"),
        *("99999999", "NSE:INFY"),
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    [silent] = [line for line in lines if line.startswith("no ticks for")]
    assert silent.startswith("no ticks for 99999999 in 0.5 s: ")  # INFY ticked
    assert "instrument token that does not exist" in silent
    assert lines[-1].startswith("stream finished: ")
    assert lines[-1].endswith("(99999999 0, NSE:INFY " + lines[-1].split()[-1])


# -- Kite's rate limits across processes ---------------------------------------------------------


async def test_two_quote_commands_at_once_wait_out_the_429_and_both_succeed(
    anyio_backend: str, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kite allows 1 quote request a second per api_key, across programs: of two commands
    run at once (two threads, each with its own client and limiter, as two processes
    would be), one is refused with a 429, says so, waits, and succeeds on its retry."""
    async with Sandbox() as sb:
        for name, value in sandbox_env(sb).items():
            monkeypatch.setenv(name, value)
        args = ["quote", "--root", sb.root_url, "--backend", anyio_backend, "--json", "NSE:INFY"]
        command = functools.partial(main.main, args=args, standalone_mode=False)
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, command)
            tg.start_soon(anyio.to_thread.run_sync, command)
        refused = sb.state.stats.refused_429[EndpointGroup.QUOTE]
    out, err = capfd.readouterr()
    assert err.count("Kite answered 429 (too many requests): waiting 1 s") == 1, err
    assert refused == 1
    assert out.count('"instrument":"NSE:INFY"') == 2
    assert "Traceback" not in err


def test_a_429_reads_as_one_error_not_two() -> None:
    line = describe(RateLimitError("Too many requests", error_type="NetworkException"))
    assert "RateLimitError" not in line
    assert "NetworkException" not in line
    assert line.startswith("Kite refused the request: too many requests (HTTP 429")


def test_a_429_is_retried_only_for_read_only_commands() -> None:
    """Orders are never sent twice: without ``read_only`` the 429 is reported at once."""
    calls: list[bool] = []

    async def refused() -> None:
        calls.append(True)
        raise RateLimitError("Too many requests", error_type="NetworkException")

    with pytest.raises(click.ClickException, match="too many requests"):
        run("asyncio", refused)
    assert len(calls) == 1
    with pytest.raises(click.ClickException, match="too many requests"):
        run("asyncio", refused, read_only=True)
    assert len(calls) == 3  # once more, then reported

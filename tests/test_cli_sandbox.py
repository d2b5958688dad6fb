"""``aio-trader sandbox``: a real subprocess that prints its URLs and credentials, serves, stops;
``--broker`` picks the dialect, ``--rules`` the order rules."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from anyio.streams.text import TextReceiveStream
from click.testing import CliRunner

from aio_trader._cli.group import main

COMMAND = [sys.executable, "-m", "aio_trader._cli", "sandbox"]


async def read_banner(stream: TextReceiveStream) -> list[str]:
    """The lines printed up to the "Serving" line (or everything, if the process ends)."""
    text = ""
    async for chunk in stream:
        text += chunk
        if "Serving until Ctrl-C." in text:
            break
    return text.splitlines()


@pytest.mark.parametrize("server_backend", ["asyncio", "trio"])
async def test_sandbox_command_prints_urls_first_and_serves_until_terminated(
    server_backend: str,
) -> None:
    command = [
        *COMMAND,
        "--port",
        "0",
        "--api-key",
        "cli_key",
        "--access-token",
        "cli_token",
        "--seed",
        "4",
        "--backend",
        server_backend,
    ]
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        stdout = TextReceiveStream(process.stdout)
        try:
            lines = await read_banner(stdout)
            assert lines[0].startswith("REST root:    http://127.0.0.1:")
            root = lines[0].split()[-1]
            assert lines[1] == (
                "Ticker:       "
                + root.replace("http://", "ws://")
                + "/ws?api_key=cli_key&access_token=cli_token"
            )
            assert "api_key:      cli_key" in lines
            assert "access_token: cli_token" in lines
            headers = {"Authorization": "token cli_key:cli_token"}
            async with httpx.AsyncClient(base_url=root, headers=headers) as client:
                profile = await client.get("/user/profile")
                assert profile.status_code == 200
                assert profile.json()["data"]["user_id"] == "AB1234"
                refused = await client.get("/user/profile", headers={"Authorization": "token x:y"})
                assert refused.status_code == 403
        finally:
            process.send_signal(signal.SIGTERM)
        rest = "".join([chunk async for chunk in stdout])
        assert await process.wait() == 0
    assert "sandbox stopped" in rest


def test_help_lists_the_sandbox_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "sandbox" in result.output
    options = CliRunner().invoke(main, ["sandbox", "--help"])
    assert "--lose-order-reply" in options.output
    assert "--backend" in options.output


def test_bad_fault_values_are_refused_before_starting() -> None:
    result = CliRunner().invoke(main, ["sandbox", "--port", "0", "--latency", "-1"])
    assert result.exit_code == 2
    assert "latency" in result.output


@asynccontextmanager
async def serving(*options: str) -> AsyncIterator[str]:
    """``aio-trader sandbox --port 0 *options`` in a subprocess; yields its REST root, then
    stops it with SIGTERM and checks that it stopped cleanly."""
    async with await anyio.open_process([*COMMAND, "--port", "0", *options]) as process:
        assert process.stdout is not None
        stdout = TextReceiveStream(process.stdout)
        try:
            lines = await read_banner(stdout)
            assert lines[0].startswith("REST root:    http://127.0.0.1:"), lines
            yield lines[0].split()[-1]
        finally:
            process.send_signal(signal.SIGTERM)
        rest = "".join([chunk async for chunk in stdout])
        assert await process.wait() == 0
    assert "sandbox stopped" in rest


#: A MARKET order as Kite's own integration tests and pre-2026 programs place it: no
#: ``market_protection``.
UNPROTECTED_MARKET_ORDER = {
    "exchange": "NSE",
    "tradingsymbol": "INFY",
    "transaction_type": "BUY",
    "quantity": "1",
    "product": "CNC",
    "order_type": "MARKET",
}


async def place_unprotected_market_order(root: str) -> httpx.Response:
    headers = {
        "X-Kite-Version": "3",
        "Authorization": "token sandbox_api_key:sandbox_access_token",
    }
    async with httpx.AsyncClient(base_url=root, headers=headers) as client:
        return await client.post("/orders/regular", data=UNPROTECTED_MARKET_ORDER)


async def test_by_default_the_2026_rules_refuse_a_market_order_without_protection() -> None:
    async with serving() as root:
        response = await place_unprotected_market_order(root)
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["status"], body["error_type"]) == ("error", "InputException")
    assert "without market protection" in body["message"]


async def test_rules_before_2026_accept_a_market_order_without_protection() -> None:
    async with serving("--broker", "kite", "--rules", "before-2026") as root:
        response = await place_unprotected_market_order(root)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["order_id"]


@pytest.mark.parametrize(
    ("option", "value", "choices"),
    [("--broker", "nosuch", "'kite'"), ("--rules", "2025", "'2026', 'before-2026'")],
)
def test_an_unknown_broker_or_rules_is_one_line_and_exit_status_2(
    option: str, value: str, choices: str
) -> None:
    done = subprocess.run(
        [*COMMAND, "--port", "0", option, value],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert f"Invalid value for '{option}': '{value}' is not" in error
    assert choices in error
    assert done.stdout == ""


def test_help_names_the_brokers_and_the_rules() -> None:
    options = CliRunner().invoke(main, ["sandbox", "--help"]).output
    assert "--broker [dhan|kite]" in options
    assert "--rules [2026|before-2026]" in options


@pytest.mark.parametrize("server_backend", ["asyncio", "trio"])
async def test_dhan_sandbox_prints_its_rest_root_feed_urls_and_credentials(
    server_backend: str,
) -> None:
    command = [
        *COMMAND,
        "--broker",
        "dhan",
        "--port",
        "0",
        "--client-id",
        "1100000042",
        "--access-token",
        "cli_dhan_token",
        "--backend",
        server_backend,
    ]
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        stdout = TextReceiveStream(process.stdout)
        try:
            lines = await read_banner(stdout)
            root = lines[0].split()[-1]
            assert lines[0].startswith("REST root:"), lines
            assert root.endswith("/v2"), lines
            feed = next(line for line in lines if line.startswith("Market feed:"))
            orders = next(line for line in lines if line.startswith("Order updates:"))
            origin = root.removesuffix("/v2").replace("http://", "ws://")
            assert feed.split()[-1].startswith(origin)
            assert "token=cli_dhan_token" in feed
            assert "clientId=1100000042" in feed
            assert orders.split()[-1].startswith(origin)
            # the word "order" names the order-update socket's line alone
            assert [line for line in lines if "order" in line.lower()] == [orders]
            assert "client_id:     1100000042" in lines
            assert "access_token:  cli_dhan_token" in lines
            headers = {"access-token": "cli_dhan_token", "client-id": "1100000042"}
            async with httpx.AsyncClient(base_url=root, headers=headers) as client:
                profile = await client.get("/profile")
                assert profile.status_code == 200, profile.text
                assert profile.json()["dhanClientId"] == "1100000042"
                refused = await client.get("/profile", headers={"access-token": "wrong"})
                assert refused.status_code in {401, 403}
        finally:
            process.send_signal(signal.SIGTERM)
        rest = "".join([chunk async for chunk in stdout])
        assert await process.wait() == 0
    assert "sandbox stopped" in rest

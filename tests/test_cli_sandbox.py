"""``aio-trader sandbox``: a real subprocess that prints its URLs and credentials, serves, stops."""

from __future__ import annotations

import signal
import sys

import anyio
import httpx
import pytest
from anyio.streams.text import TextReceiveStream
from click.testing import CliRunner

from aio_trader.cli import main


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
        sys.executable,
        "-m",
        "aio_trader.cli",
        "sandbox",
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

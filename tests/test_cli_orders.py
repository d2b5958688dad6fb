"""``aio-trader order place|modify|cancel|exit`` against the sandbox: Kite.place_order's
parameter names, a confirmation unless ``--yes``/``--sandbox``, the order id, then its
status updates until final; refused before any request when Kite would refuse it."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import anyio.to_thread
import pytest
from click.testing import CliRunner, Result

from aio_trader._cli.group import main
from aio_trader.kite import Kite
from aio_trader.sandbox import Sandbox

INFY = ("--exchange", "NSE", "--tradingsymbol", "INFY", "--transaction-type", "BUY")


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in ("KITE_API_KEY", "KITE_ACCESS_TOKEN", "KITE_ROOT", "KITE_TICKER_URL"):
        monkeypatch.delenv(name, raising=False)


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


async def invoke_on(sb: Sandbox, backend: str, *args: str, input: str | None = None) -> Result:
    """The command against the running ``sb`` (from a worker thread: its own event loop)."""
    env = {"KITE_API_KEY": sb.api_key, "KITE_ACCESS_TOKEN": sb.access_token}
    call = functools.partial(
        invoke, *args, "--root", sb.root_url, "--backend", backend, input=input, env=env
    )
    return await anyio.to_thread.run_sync(call)


def placed_id(result: Result) -> str:
    found = re.search(r"^order placed: .* -> (\d+)$", result.output, re.MULTILINE)
    assert found, result.output
    return found.group(1)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_protected_market_order_on_the_embedded_sandbox_is_followed_to_complete(
    backend: str,
) -> None:
    """--sandbox: no confirmation (nothing at stake); the id, then the updates until final."""
    result = invoke(
        *("order", "place", "--sandbox", "--backend", backend, *INFY),
        *("--quantity", "2", "--product", "CNC", "--order-type", "market"),
        *("--market-protection", "-1", "--timeout", "60"),
    )
    assert result.exit_code == 0, result.output
    order_id = placed_id(result)
    assert "order placed: MARKET BUY 2 NSE:INFY CNC (regular) -> " in result.output
    assert "?" not in result.output  # no confirmation prompt
    last = result.output.strip().splitlines()[-1]
    assert re.fullmatch(rf"order (update )?{order_id} .*COMPLETE filled 2/2 at [\d,.]+", last)


async def test_an_unprotected_market_order_is_refused_before_any_request(
    anyio_backend: str,
) -> None:
    async with Sandbox() as sb:
        result = await invoke_on(
            sb,
            anyio_backend,
            *("order", "place", "--yes", *INFY, "--quantity", "1", "--product", "CNC"),
            *("--order-type", "MARKET"),
        )
        requests = sb.state.stats.requests
    assert result.exit_code == 2
    assert "MARKET orders need --market-protection" in result.output
    assert "--order-type LIMIT --price PRICE" in result.output
    assert requests == 0


async def test_the_confirmation_prompt_guards_a_real_server(anyio_backend: str) -> None:
    async with Sandbox() as sb:
        order = (
            *("order", "place", *INFY, "--quantity", "1", "--product", "CNC"),
            *("--order-type", "LIMIT", "--price", "1000", "--no-wait"),
        )
        declined = await invoke_on(sb, anyio_backend, *order, input="n\n")
        booked_after_no = sb.state.stats.orders_booked
        accepted = await invoke_on(sb, anyio_backend, *order, input="y\n")
        booked = sb.state.stats.orders_booked
        root = sb.root_url
    assert f"Place LIMIT BUY 1 NSE:INFY CNC @ 1,000.00 (regular) on {root}?" in declined.output
    assert declined.exit_code == 1
    assert "Aborted" in declined.output
    assert booked_after_no == 0
    assert accepted.exit_code == 0, accepted.output
    placed_id(accepted)
    assert booked == 1


async def test_place_modify_cancel_a_limit_order(anyio_backend: str) -> None:
    """An open LIMIT order: placed (--no-wait), modified (the next state is shown), then
    cancelled and followed to CANCELLED; the order book agrees at each step."""
    async with Sandbox() as sb:
        placed = await invoke_on(
            sb,
            anyio_backend,
            *("order", "place", "--yes", "--no-wait", *INFY, "--quantity", "3"),
            *("--product", "CNC", "--order-type", "LIMIT", "--price", "1000", "--tag", "cli1"),
        )
        assert placed.exit_code == 0, placed.output
        assert "following" not in placed.output
        order_id = placed_id(placed)
        modified = await invoke_on(
            sb,
            anyio_backend,
            *("order", "modify", "--yes", "--order-id", order_id, "--price", "999.5"),
            *("--timeout", "60"),
        )
        assert modified.exit_code == 0, modified.output
        assert f"order modified: {order_id} (price 999.5)" in modified.output
        async with Kite(sb.api_key, sb.access_token, root=sb.root_url, token_cache=False) as kite:
            [after_modify] = [o for o in await kite.orders() if o.order_id == order_id]
        cancelled = await invoke_on(
            sb,
            anyio_backend,
            *("order", "cancel", "--yes", "--order-id", order_id, "--timeout", "60"),
        )
        async with Kite(sb.api_key, sb.access_token, root=sb.root_url, token_cache=False) as kite:
            [final] = [o for o in await kite.orders() if o.order_id == order_id]
    assert after_modify.price == 999.5
    assert after_modify.tag == "cli1"
    assert cancelled.exit_code == 0, cancelled.output
    assert f"order cancelled: {order_id}" in cancelled.output
    assert re.search(rf"^order (update )?{order_id} .*CANCELLED", cancelled.output, re.M)
    assert final.status == "CANCELLED"


async def test_exit_a_cover_order(anyio_backend: str) -> None:
    async with Sandbox() as sb:
        async with Kite(sb.api_key, sb.access_token, root=sb.root_url, token_cache=False) as kite:
            quote = (await kite.ltp("NSE:INFY"))["NSE:INFY"]
            order_id = await kite.place_order(
                "co",
                "NSE",
                "INFY",
                "BUY",
                1,
                "MIS",
                "LIMIT",
                price=round(quote.last_price * 0.9, 1),
                trigger_price=round(quote.last_price * 0.85, 1),
            )
        result = await invoke_on(
            sb,
            anyio_backend,
            *("order", "exit", "--yes", "--variety", "co", "--order-id", order_id),
            *("--timeout", "60"),
        )
    assert result.exit_code == 0, result.output
    assert f"order exited: {order_id}" in result.output
    assert re.search(rf"^order (update )?{order_id} .*CANCELLED", result.output, re.M)


def test_modify_without_a_change_is_a_usage_error() -> None:
    result = invoke("order", "modify", "--sandbox", "--order-id", "1")
    assert result.exit_code == 2
    assert "nothing to change" in result.output


def test_order_help_uses_place_orders_parameter_names() -> None:
    result = invoke("order", "place", "--help")
    assert result.exit_code == 0
    for option in (
        "--variety",
        "--exchange",
        "--tradingsymbol",
        "--transaction-type",
        "--quantity",
        "--product",
        "--order-type",
        "--price",
        "--trigger-price",
        "--market-protection",
        "--tag",
        "--yes",
        "--no-wait",
        "--sandbox",
        "--root",
    ):
        assert option in result.output


def test_a_rejected_order_ends_with_status_1_and_kites_reason() -> None:
    result = invoke(
        *("order", "place", "--sandbox", *INFY, "--quantity", "10000000", "--product", "CNC"),
        *("--order-type", "LIMIT", "--price", "1500", "--timeout", "60"),
    )
    assert result.exit_code == 1
    assert "REJECTED" in result.output
    assert "Insufficient funds" in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: order ")


@pytest.mark.parametrize("wait", [(), ("--no-wait",)])
def test_values_the_client_refuses_are_usage_errors(wait: tuple[str, ...]) -> None:
    result = invoke(
        *("order", "place", "--sandbox", *INFY, "--quantity", "1", "--product", "CNC"),
        *("--order-type", "LIMIT", "--price", "1500", "--tag", "x" * 21, *wait),
    )
    assert result.exit_code == 2
    assert "tag must be 1 to 20 letters or digits" in result.output

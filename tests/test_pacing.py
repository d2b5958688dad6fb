"""Pacing: a 429 never follows from the client's own pacing.

Against the sandbox at Kite's real limits (it counts orders strictly: 10 in any second),
bursts of orders and reads run while the CPU is busy (a thread holding the interpreter
lock between switches, and a process burning a core) and while requests are cancelled at
random: the sandbox answers none of them with 429. Each slot is stamped when its request
is written (``RateLimiter.reserve`` + ``AsyncRequest``), so a delay between a request's
turn and its write cannot bring two requests closer on the wire than the limiter allows.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest

from aio_trader.backoff import Backoff
from aio_trader.kite import Kite
from aio_trader.kite.constants import EndpointGroup
from aio_trader.ratelimit import Rate
from aio_trader.sandbox import Sandbox, SandboxConfig

FAST = Backoff(base=0.01, cap=0.05, max_attempts=4)
#: The burners stop by themselves after this long, whatever happens to the test.
BURN_AT_MOST = 120.0


def _burn(stop: threading.Event) -> None:
    deadline = time.monotonic() + BURN_AT_MOST
    total = 0
    while not stop.is_set() and time.monotonic() < deadline:
        for i in range(20_000):
            total += i


@contextmanager
def cpu_busy() -> Iterator[None]:
    """A thread burning CPU in this interpreter (the event loop gets the interpreter lock
    only between switches) and a process burning another core; both bounded in time."""
    stop = threading.Event()
    thread = threading.Thread(target=_burn, args=(stop,), daemon=True)
    burner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import time\nend = time.monotonic() + {BURN_AT_MOST}\n"
            "while time.monotonic() < end:\n    pass\n",
        ]
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        burner.kill()
        burner.wait()
        thread.join()


@pytest.mark.parametrize("seed", [1, 2])
async def test_bursts_with_the_cpu_busy_and_random_cancellation_earn_no_429(seed: int) -> None:
    rng = random.Random(seed)
    config = SandboxConfig(seed=4, market_interval=None)
    placed: list[str] = []
    cancelled = 0
    with cpu_busy():
        async with (
            Sandbox(config) as sb,
            Kite(sb.api_key, sb.access_token, root=sb.root_url, backoff=FAST) as kite,
        ):
            last = (await kite.ltp("NSE:INFY"))["NSE:INFY"].last_price or 0
            price = round(last * 0.8, 1)

            async def place(deadline: float | None) -> None:
                nonlocal cancelled
                with anyio.move_on_after(deadline if deadline is not None else float("inf")):
                    order = await kite.place_order(
                        "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=price
                    )
                    placed.append(order)
                    return
                cancelled += 1

            async def read(deadline: float | None) -> None:
                with anyio.move_on_after(deadline if deadline is not None else float("inf")):
                    await kite.orders()

            async with anyio.create_task_group() as tg:
                for _ in range(30):
                    # A third of the calls are cancelled at a random moment: waiting for
                    # their turn, waiting for a connection, in flight or never.
                    deadline = rng.uniform(0.0, 2.0) if rng.random() < 1 / 3 else None
                    tg.start_soon(place, deadline)
                    tg.start_soon(read, deadline)
            refused = dict(sb.state.stats.refused_429)
            booked = sb.state.stats.orders_booked
    assert refused == dict.fromkeys(EndpointGroup, 0)
    assert len(placed) + cancelled == 30
    assert len(placed) <= booked <= 30  # a cancelled order may or may not have been booked


async def test_orders_held_back_by_a_busy_pool_still_reach_the_server_spaced() -> None:
    """Every connection is busy with slow reads (of two endpoint groups, so more of them
    than one group allows in a second) when a burst of orders starts: the orders wait for
    connections after their turn came. Stamped at their turn, they would all be written
    in the moment the reads end (12 orders at once: 429); stamped when written, they
    leave one by one at the limit."""
    config = SandboxConfig(seed=4, market_interval=None)
    other, historical, orders = 10, 3, 12  # as many reads as Kite allows in a moment
    quick = (Rate(1, 0.001),)  # the reads start together (Kite's limits allow the burst)
    async with (
        Sandbox(config) as sb,
        Kite(
            sb.api_key,
            sb.access_token,
            root=sb.root_url,
            backoff=FAST,
            max_connections=other + historical,
            rate_limits={EndpointGroup.OTHER: quick, EndpointGroup.HISTORICAL: quick},
        ) as kite,
    ):
        last = (await kite.ltp("NSE:INFY"))["NSE:INFY"].last_price or 0
        price = round(last * 0.8, 1)
        placed: list[str] = []

        async def place() -> None:
            placed.append(
                await kite.place_order(
                    "regular", "NSE", "INFY", "BUY", 1, "CNC", "LIMIT", price=price
                )
            )

        sb.faults.latency = 1.5
        async with anyio.create_task_group() as tg:
            for _ in range(other):
                tg.start_soon(kite.orders)
            for _ in range(historical):
                tg.start_soon(kite.historical_data, 408065, "2024-01-01", "2024-01-05", "day")
            # Until every connection is busy (the sandbox has no event for an arrival).
            while sb.state.stats.requests < 1 + other + historical:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            for _ in range(orders):
                tg.start_soon(place)
        refused = dict(sb.state.stats.refused_429)
    assert refused == dict.fromkeys(EndpointGroup, 0)
    assert len(placed) == orders

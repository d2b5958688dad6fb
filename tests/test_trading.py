"""The neutral trading operations (aio_trader.trading): one contract, every broker.

The same test bodies run over Kite and Dhan, each against its own sandbox over real
loopback sockets, on both backends: quotes by symbol, the order's round trip (submit,
modify, cancel, follow), the order book, positions, holdings and funds mapped, the enums
mapped both ways, and bad input refused before any I/O.
"""

from __future__ import annotations

import enum
import re
from collections.abc import AsyncIterator

import anyio
import attrs
import pytest
from _helpers import python_blocks
from hypothesis import given
from hypothesis import strategies as st

from aio_trader.abc import AbstractBroker
from aio_trader.backoff import Backoff
from aio_trader.dhan import Dhan, DhanFeed
from aio_trader.dhan import Order as DhanOrder
from aio_trader.errors import InvalidInput, OrderOutcomeUnknown, UnknownInstrument
from aio_trader.kite import Kite, KiteFeed
from aio_trader.kite import Order as KiteOrder
from aio_trader.sandbox import Sandbox, SandboxConfig
from aio_trader.toolkit import round_to_tick
from aio_trader.trading import (
    Funds,
    Holding,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Product,
    Side,
    Validity,
    new_tag,
)

FAST = Backoff(base=0.01, cap=0.05, max_attempts=4)
SCALE = 50
BROKERS = ["kite", "dhan"]


@attrs.frozen
class Venue:
    """One broker under test: its sandbox, its client (open) and its name."""

    name: str
    sandbox: Sandbox
    broker: AbstractBroker

    def feed(self) -> KiteFeed | DhanFeed:
        sb = self.sandbox
        if self.name == "kite":
            return KiteFeed(sb.api_key, sb.access_token, root=sb.ticker_url)
        return DhanFeed(
            sb.client_id, sb.access_token, root=sb.feed_url, order_root=sb.order_feed_url
        )


@pytest.fixture(params=BROKERS)
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[Venue]:
    name = request.param
    config = SandboxConfig(
        broker=name, seed=3, market_interval=None, rate_limit_scale=SCALE, opening_cash=1e8
    )
    async with Sandbox(config) as sb:
        broker: Kite | Dhan
        if name == "kite":
            broker = Kite(
                sb.api_key,
                sb.access_token,
                root=sb.root_url,
                backoff=FAST,
                rate_limit_scale=SCALE,
                reconcile_delay=0.01,
            )
        else:
            broker = Dhan(
                client_id=sb.client_id,
                access_token=sb.access_token,
                root=sb.root_url,
                backoff=FAST,
                rate_limit_scale=SCALE,
                reconcile_delay=0.01,
            )
        async with broker:
            yield Venue(name, sb, broker)


async def resting(venue: Venue, symbol: str = "NSE:INFY", **options: object) -> OrderRequest:
    """A BUY LIMIT at 80 % of the last price (it rests OPEN), on the tick grid."""
    last = (await venue.broker.last_prices([symbol]))[symbol]
    price = round_to_tick(last * 0.8, 0.05)
    return OrderRequest(
        symbol, Side.BUY, 1, product=Product.CNC, order_type=OrderType.LIMIT, price=price
    )


def market(symbol: str, side: Side, quantity: int, product: Product) -> OrderRequest:
    return OrderRequest(symbol, side, quantity, product=product, market_protection=-1)


# -- quotes ------------------------------------------------------------------------------


async def test_last_prices_by_symbol(venue: Venue) -> None:
    prices = await venue.broker.last_prices(["NSE:INFY", "NSE:TCS", "NSE:INFY"])
    assert set(prices) == {"NSE:INFY", "NSE:TCS"}
    assert all(isinstance(p, float) and p > 0 for p in prices.values())
    # the broker's own quote call says the same (the market stands still here)
    if isinstance(venue.broker, Kite):
        own = await venue.broker.ltp("NSE:INFY")
        assert own["NSE:INFY"].last_price == prices["NSE:INFY"]
    else:
        assert isinstance(venue.broker, Dhan)
        own_dhan = await venue.broker.ltp([("NSE_EQ", "1594")])  # INFY's security id
        assert own_dhan[("NSE_EQ", "1594")].last_price == prices["NSE:INFY"]


async def test_last_prices_name_unknown_symbols(venue: Venue) -> None:
    with pytest.raises(UnknownInstrument, match="NSE:NOPE") as caught:
        await venue.broker.last_prices(["NSE:INFY", "NSE:NOPE", "BSE:NOPE"])
    assert caught.value.symbols == ("NSE:NOPE", "BSE:NOPE")
    assert isinstance(caught.value, InvalidInput)  # the category every broker shares
    with pytest.raises(UnknownInstrument, match="NSE:NOPE"):
        await venue.broker.last_prices(["NSE:NOPE"])


@pytest.mark.parametrize(
    ("symbols", "error", "match"),
    [
        (["INFY"], UnknownInstrument, "'INFY' has no exchange"),
        (["XYZ:INFY"], UnknownInstrument, "'XYZ:INFY' is not 'EXCHANGE:TRADINGSYMBOL'"),
        (["NSE:"], UnknownInstrument, "'NSE:'"),
        (["NSE: INFY"], UnknownInstrument, "'NSE: INFY'"),
        ([42], TypeError, "symbol is an .EXCHANGE:TRADINGSYMBOL. str"),
        ("NSE:INFY", TypeError, "not a str"),
        ([], ValueError, "at least one symbol"),
    ],
)
async def test_last_prices_refuse_bad_symbols_before_any_request(
    venue: Venue, symbols: object, error: type[Exception], match: str
) -> None:
    before = venue.sandbox.state.stats.requests
    with pytest.raises(error, match=match):
        await venue.broker.last_prices(symbols)  # type: ignore[arg-type]
    assert venue.sandbox.state.stats.requests == before


# -- the order's round trip -----------------------------------------------------------------


async def test_submit_modify_cancel_round_trip(venue: Venue) -> None:
    broker = venue.broker
    request = await resting(venue)
    order_id = await broker.submit(request)
    (order,) = [o for o in await broker.order_book() if o.order_id == order_id]
    assert order.status is OrderStatus.OPEN
    assert not order.is_final
    assert (order.symbol, order.side, order.quantity, order.price) == (
        "NSE:INFY",
        Side.BUY,
        1,
        request.price,
    )
    assert (order.order_type, order.product, order.validity) == (
        OrderType.LIMIT,
        Product.CNC,
        Validity.DAY,
    )
    assert order.tag == request.tag
    assert isinstance(order.raw, KiteOrder if venue.name == "kite" else DhanOrder)
    assert order.broker_status == ("OPEN" if venue.name == "kite" else "PENDING")

    assert request.price is not None
    lower = round_to_tick(request.price - 1, 0.05)
    assert await broker.modify(order_id, price=lower, quantity=2) == order_id
    (changed,) = [o for o in await broker.order_book() if o.order_id == order_id]
    assert (changed.price, changed.quantity, changed.status) == (lower, 2, OrderStatus.OPEN)

    assert await broker.cancel(order_id) == order_id
    done = await broker.follow(order_id)
    assert (done.order_id, done.status, done.is_final) == (order_id, OrderStatus.CANCELLED, True)
    assert done.filled_quantity == 0


async def test_market_order_followed_to_completion_moves_position_and_funds(
    venue: Venue,
) -> None:
    broker = venue.broker
    funds_before = await broker.funds()
    assert isinstance(funds_before, Funds)
    assert funds_before.available is not None
    assert funds_before.available > 0
    assert await broker.net_positions() == []

    order_id = await broker.submit(market("NSE:TCS", Side.BUY, 3, Product.MIS))
    done = await broker.follow(order_id, timeout=30)
    assert (done.status, done.filled_quantity, done.side) == (OrderStatus.COMPLETE, 3, Side.BUY)
    assert done.average_price is not None
    assert done.average_price > 0
    # a protected MARKET order is shown as the LIMIT the broker turned it into (Kite)
    assert done.order_type in (OrderType.MARKET, OrderType.LIMIT)

    (position,) = await broker.net_positions()
    assert isinstance(position, Position)
    assert (position.symbol, position.quantity, position.product) == ("NSE:TCS", 3, Product.MIS)
    assert position.average_price == pytest.approx(done.average_price)

    exit_id = await broker.submit(market("NSE:TCS", Side.BUY.opposite, 3, Product.MIS))
    assert (await broker.follow(exit_id)).status is OrderStatus.COMPLETE
    (flat,) = await broker.net_positions()
    assert flat.quantity == 0
    assert flat.pnl == pytest.approx((flat.realised or 0) + (flat.unrealised or 0))

    funds_after = await broker.funds()
    assert funds_after.opening == funds_before.opening
    assert funds_after.raw is not None


async def test_follow_through_the_feed(venue: Venue) -> None:
    async with venue.feed() as feed:
        order_id = await venue.broker.submit(market("NSE:INFY", Side.SELL, 1, Product.MIS))
        done = await venue.broker.follow(order_id, feed=feed, timeout=30)
    assert (done.order_id, done.status, done.side) == (order_id, OrderStatus.COMPLETE, Side.SELL)
    assert feed.statistics().order_updates >= 1


async def test_holdings_after_a_delivery_buy(venue: Venue) -> None:
    broker = venue.broker

    async def infy() -> Holding | None:
        found = [h for h in await broker.portfolio() if h.symbol == "NSE:INFY"]
        assert len(found) <= 1
        return found[0] if found else None

    before = await infy()
    held = 0 if before is None else before.quantity
    order_id = await broker.submit(market("NSE:INFY", Side.BUY, 4, Product.CNC))
    done = await broker.follow(order_id)
    assert done.status is OrderStatus.COMPLETE
    holding = await infy()
    assert isinstance(holding, Holding)
    assert holding.quantity == held + 4  # still in settlement (T1): counted
    assert holding.average_price is not None
    assert holding.average_price > 0
    if before is None:
        assert holding.average_price == pytest.approx(done.average_price)
    assert holding.last_price is not None
    assert holding.last_price > 0
    assert holding.pnl == pytest.approx(
        (holding.last_price - holding.average_price) * holding.quantity
    )
    assert holding.raw is not None


async def test_a_stop_loss_order_maps_both_ways(venue: Venue) -> None:
    last = (await venue.broker.last_prices(["NSE:SBIN"]))["NSE:SBIN"]
    trigger = round_to_tick(last * 0.9, 0.05)
    request = OrderRequest(
        "NSE:SBIN",
        Side.SELL,
        1,
        product=Product.MIS,
        order_type=OrderType.SL,
        price=round_to_tick(trigger - 1, 0.05),
        trigger_price=trigger,
    )
    order_id = await venue.broker.submit(request)
    (order,) = [o for o in await venue.broker.order_book() if o.order_id == order_id]
    assert (order.order_type, order.trigger_price, order.side) == (OrderType.SL, trigger, Side.SELL)
    assert order.status in (OrderStatus.TRIGGER_PENDING, OrderStatus.OPEN)
    assert order.raw.order_type == ("SL" if venue.name == "kite" else "STOP_LOSS")
    await venue.broker.cancel(order_id)


async def test_follow_times_out_and_changes_nothing(venue: Venue) -> None:
    order_id = await venue.broker.submit(await resting(venue))
    with pytest.raises(TimeoutError):
        await venue.broker.follow(order_id, timeout=0.05)
    with anyio.move_on_after(0.05) as scope:
        await venue.broker.follow(order_id)
    assert scope.cancelled_caught
    (order,) = [o for o in await venue.broker.order_book() if o.order_id == order_id]
    assert order.status is OrderStatus.OPEN
    await venue.broker.cancel(order_id)


# -- never twice ----------------------------------------------------------------------------


async def test_a_lost_reply_places_exactly_one_order_found_by_its_tag(venue: Venue) -> None:
    request = market("NSE:INFY", Side.BUY, 1, Product.MIS)
    venue.sandbox.faults.lose_order_reply = True
    try:
        order_id = await venue.broker.submit(request)
    finally:
        venue.sandbox.faults.lose_order_reply = False
    assert venue.sandbox.state.stats.order_replies_lost == 1
    assert venue.sandbox.state.stats.orders_booked == 1
    tagged = [o for o in await venue.broker.order_book() if o.tag == request.tag]
    assert [o.order_id for o in tagged] == [order_id]


async def test_an_unsettled_placement_names_the_requests_tag(venue: Venue) -> None:
    request = market("NSE:INFY", Side.BUY, 1, Product.MIS)
    await venue.broker.last_prices([request.symbol])  # Dhan: the instrument index is loaded
    venue.sandbox.faults.http_5xx_burst = 1
    with pytest.raises(OrderOutcomeUnknown) as unknown:
        await venue.broker.submit(request)
    assert unknown.value.tag == request.tag
    assert venue.sandbox.state.stats.orders_booked == 0


# -- bad input, before any I/O -----------------------------------------------------------------


async def test_unknown_symbol_is_refused_before_any_order_request(venue: Venue) -> None:
    with pytest.raises(InvalidInput, match="NOPE"):
        await venue.broker.submit(market("NSE:NOPE", Side.BUY, 1, Product.MIS))
    assert venue.sandbox.state.stats.orders_booked == 0


async def test_market_order_without_protection_is_refused_before_any_request(
    venue: Venue,
) -> None:
    before = venue.sandbox.state.stats.requests
    if venue.name == "dhan":  # the symbol is resolved first (a read), then refused
        await venue.broker.last_prices(["NSE:INFY"])
        before = venue.sandbox.state.stats.requests
    with pytest.raises(ValueError, match="market_protection"):
        await venue.broker.submit(OrderRequest("NSE:INFY", Side.BUY, 1, product=Product.MIS))
    assert venue.sandbox.state.stats.orders_booked == 0
    if venue.name == "kite":
        assert venue.sandbox.state.stats.requests == before


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({}, ValueError, "at least one change"),
        ({"quantity": 0}, ValueError, "quantity must be > 0"),
        ({"quantity": 1.5}, TypeError, "quantity must be an int"),
        ({"price": -1.0}, ValueError, "price must be a finite number above 0"),
        ({"order_type": "STOP"}, ValueError, "unknown order_type 'STOP'"),
    ],
)
async def test_modify_refuses_bad_changes_before_any_request(
    venue: Venue, changes: dict[str, object], error: type[Exception], match: str
) -> None:
    before = venue.sandbox.state.stats.requests
    with pytest.raises(error, match=match):
        await venue.broker.modify("1234", **changes)  # type: ignore[arg-type]
    assert venue.sandbox.state.stats.requests == before


async def test_submit_takes_only_an_order_request(venue: Venue) -> None:
    with pytest.raises(TypeError, match="OrderRequest"):
        await venue.broker.submit({"symbol": "NSE:INFY"})  # type: ignore[arg-type]


# -- the docs' programs, run ----------------------------------------------------------------


def _strategies_page_programs() -> dict[str, object]:
    """The functions the ```python blocks of docs/strategies.md define (the included
    example aside: tests/test_examples.py runs it)."""
    namespace: dict[str, object] = {}
    for block in python_blocks("docs/strategies.md"):
        if not block.lstrip().startswith("--8<--"):
            exec(compile(block, "docs/strategies.md", "exec"), namespace)
    return namespace


async def test_the_strategies_page_programs_run(
    venue: Venue, capsys: pytest.CaptureFixture[str]
) -> None:
    programs = _strategies_page_programs()
    buy_one, placed = programs["buy_one"], programs["placed"]
    assert callable(buy_one)
    assert callable(placed)
    await buy_one(venue.broker, "NSE:INFY")
    out = capsys.readouterr().out
    assert re.search(r"^bought at [\d.]+ \(last [\d.]+\)$", out, re.MULTILINE), out
    assert re.search(r"^NSE:INFY 1 ", out, re.MULTILINE), out
    (order,) = await venue.broker.order_book()
    request = OrderRequest("NSE:INFY", Side.BUY, 1, product=Product.MIS, tag=order.tag)
    assert await placed(venue.broker, request) == [order.order_id]
    assert await placed(venue.broker, attrs.evolve(request, tag=new_tag())) == []


# -- the records and enums, no I/O ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"symbol": "INFY"}, UnknownInstrument, "EXCHANGE:TRADINGSYMBOL"),
        ({"symbol": "nse:INFY"}, UnknownInstrument, "with an exchange among BCD, BFO"),
        ({"side": "HOLD"}, ValueError, "unknown side 'HOLD': expected one of BUY, SELL"),
        ({"side": 1}, TypeError, "side must be a Side or a str"),
        ({"quantity": 0}, ValueError, "quantity must be > 0"),
        ({"quantity": True}, TypeError, "quantity must be an int"),
        ({"product": "BO"}, ValueError, "unknown product 'BO'"),
        ({"order_type": "LIMIT"}, ValueError, "a LIMIT order needs a price"),
        ({"price": 10.0}, ValueError, "a MARKET order takes no price"),
        ({"trigger_price": 10.0}, ValueError, "a MARKET order takes no trigger_price"),
        ({"order_type": "SL", "price": 10.0}, ValueError, "needs a trigger_price"),
        ({"order_type": "SL-M"}, ValueError, "a SL-M order needs a trigger_price"),
        ({"price": float("nan")}, ValueError, "price must be a finite number"),
        ({"validity": "GTC"}, ValueError, "unknown validity 'GTC'"),
        ({"market_protection": 0}, ValueError, "market_protection must be -1"),
        ({"tag": "not a tag!"}, ValueError, "tag must be 1 to 20 letters or digits"),
        ({"tag": "x" * 21}, ValueError, "tag must be 1 to 20"),
    ],
)
def test_order_request_refuses_bad_values_by_name(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    given: dict[str, object] = {
        "symbol": "NSE:INFY",
        "side": "BUY",
        "quantity": 1,
        "product": "MIS",
        **kwargs,
    }
    with pytest.raises(error, match=match):
        OrderRequest(**given)  # type: ignore[arg-type]


def test_order_request_converts_and_tags() -> None:
    request = OrderRequest(
        "NFO:NIFTY26DECFUT", "sell", 75, product="margin", order_type="sl_m", trigger_price=100
    )
    assert (request.side, request.product, request.order_type) == (
        Side.SELL,
        Product.NRML,
        OrderType.SL_M,
    )
    assert (request.exchange, request.tradingsymbol) == ("NFO", "NIFTY26DECFUT")
    assert request.trigger_price == 100.0
    assert request.tag.isalnum()
    assert len(request.tag) == 19
    other = OrderRequest("NSE:INFY", Side.BUY, 1, product=Product.CNC)
    assert other.tag != request.tag  # one request, one order, one tag
    assert attrs.evolve(other, tag="mine1").tag == "mine1"
    assert new_tag() != new_tag()


def test_enum_names_and_aliases() -> None:
    assert Product.DELIVERY is Product.CNC
    assert Product("intraday") is Product.MIS
    assert Product("Margin") is Product.NRML
    assert OrderType("SL-M") is OrderType.SL_M
    assert Side.SELL.opposite is Side.BUY
    assert f"{Side.BUY}" == "BUY"
    assert str(OrderType.SL_M) == "SL-M"
    finals = {s for s in OrderStatus if s.is_final}
    assert finals == {
        OrderStatus.COMPLETE,
        OrderStatus.CANCELLED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
    }
    assert Order("1", OrderStatus.REJECTED).is_final
    assert not Order("1").is_final  # UNKNOWN


@given(st.sampled_from([*Side, *OrderType, *Product, *Validity, *OrderStatus]))
def test_an_enum_member_is_found_by_its_value_and_its_name_in_any_case(member: object) -> None:
    kind = type(member)
    assert isinstance(member, enum.Enum)
    assert kind(member.value) is member
    assert kind(str(member).lower()) is member
    assert kind(member.name.lower()) is member
    assert f"{member}" == member.value


@pytest.mark.parametrize("name", BROKERS)
def test_every_neutral_value_maps_to_the_broker_and_back(name: str) -> None:
    from aio_trader.dhan import _trading as dhan_tables
    from aio_trader.dhan.constants import OrderStatus as DhanStatus
    from aio_trader.dhan.constants import OrderType as DhanType
    from aio_trader.dhan.constants import ProductType as DhanProduct
    from aio_trader.dhan.constants import Validity as DhanValidity
    from aio_trader.kite import _trading as kite_tables
    from aio_trader.kite.constants import OrderStatus as KiteStatus
    from aio_trader.kite.constants import OrderType as KiteType
    from aio_trader.kite.constants import Product as KiteProduct
    from aio_trader.kite.constants import Validity as KiteValidity

    tables = kite_tables if name == "kite" else dhan_tables
    own = {
        "kite": (KiteType, KiteProduct, KiteValidity, KiteStatus),
        "dhan": (DhanType, DhanProduct, DhanValidity, DhanStatus),
    }[name]
    for neutral, table, broker_enum in (
        (OrderType, tables.ORDER_TYPES, own[0]),
        (Product, tables.PRODUCTS, own[1]),
        (Validity, tables.VALIDITIES, own[2]),
        (Side, tables.SIDES, None),
    ):
        assert set(table) == set(neutral)  # every neutral value has the broker's
        values = list(table.values())
        assert len(set(values)) == len(values)  # and back, one to one
        if broker_enum is not None:
            assert set(values) <= {m.value for m in broker_enum}
        for member, wire in table.items():
            assert tables._back(table, wire) is member
    # every status the broker knows maps to a neutral one (not UNKNOWN)
    mapped = set(tables.STATUSES)
    if name == "dhan":  # super-order statuses, outside the regular order book
        mapped |= {"CLOSED", "TRIGGERED"}
    assert {m.value for m in own[3]} == mapped
    assert OrderStatus.UNKNOWN not in set(tables.STATUSES.values())


def test_the_abstract_broker_says_a_broker_lacks_the_operations() -> None:
    class Bare(AbstractBroker):
        async def aclose(self) -> None:
            pass

        async def authorise(self) -> object:
            return None

    with pytest.raises(NotImplementedError, match="Bare does not offer the neutral"):
        anyio.run(Bare().funds)

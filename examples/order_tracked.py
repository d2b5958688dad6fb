"""An order placed with ``Kite``, tracked to completion through the feed's updates.

The feed is opened first, so no update is missed; the order is placed with a tag of our
own (``Kite.new_tag()``), and the updates are matched by that tag: they may arrive
before ``place_order`` has even returned the order id. ``place_order`` never sends an
order twice (see the concepts page), and the tag is also how you would find the order
after an ambiguous failure.

    .venv/bin/python examples/order_tracked.py --symbol INFY --quantity 1
    .venv/bin/python examples/order_tracked.py --order-type LIMIT --price 1500

Against a real account (``--api-key``) this places a REAL order: it refuses to run
without ``--live``.
"""

from __future__ import annotations

import anyio
from _common import connect, parser

from aio_trader.kite import Kite, OrderUpdate

FINAL = {"COMPLETE", "CANCELLED", "REJECTED"}


async def main() -> None:
    cli = parser(__doc__.splitlines()[0])
    cli.add_argument("--exchange", default="NSE")
    cli.add_argument("--symbol", default="INFY")
    cli.add_argument("--side", default="BUY", choices=["BUY", "SELL"])
    cli.add_argument("--quantity", type=int, default=1)
    cli.add_argument("--order-type", default="MARKET", choices=["MARKET", "LIMIT"])
    cli.add_argument("--price", type=float, help="for LIMIT orders")
    cli.add_argument(
        "--market-protection",
        type=float,
        default=-1,
        help="MARKET orders need it (Kite, since April 2026): -1 automatic, or a %%",
    )
    cli.add_argument("--product", default="CNC")
    cli.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the end"
    )
    cli.add_argument(
        "--live", action="store_true", help="allow a real order on a real account"
    )
    args = cli.parse_args()
    if args.api_key and not args.live:
        raise SystemExit("this would place a real order: add --live if you mean it")

    async with connect(args) as target, target.kite() as kite, target.feed() as feed:
        instrument = f"{args.exchange}:{args.symbol}"
        quote = (await kite.ltp(instrument))[instrument]
        print(f"{instrument} last price {quote.last_price}")
        # Subscribing and waiting for a first tick shows the feed is connected: from now
        # on it receives every order update of this account.
        await feed.subscribe([quote.instrument_token], mode="ltp")
        async for _ in feed:
            break

        tag = Kite.new_tag()
        order_id = await kite.place_order(
            variety="regular",
            exchange=args.exchange,
            tradingsymbol=args.symbol,
            transaction_type=args.side,
            quantity=args.quantity,
            product=args.product,
            order_type=args.order_type,
            price=args.price,
            # Kite refuses a MARKET order without market protection (April 2026 rules).
            market_protection=args.market_protection
            if args.order_type == "MARKET"
            else None,
            tag=tag,
        )
        print(f"placed order {order_id} (tag {tag})")

        last: OrderUpdate | None = None
        with anyio.fail_after(args.timeout):
            async for item in feed:
                if isinstance(item, OrderUpdate) and item.tag == tag:
                    last = item
                    print(
                        f"update: {item.status:<10} filled {item.filled_quantity}/"
                        f"{item.quantity} at {item.average_price}"
                    )
                    if item.status in FINAL:
                        break
        assert last is not None
        if last.status == "REJECTED":
            raise SystemExit(f"rejected: {last.status_message}")
        for trade in await kite.order_trades(order_id):
            print(f"trade {trade.trade_id}: {trade.quantity} at {trade.average_price}")
        print(f"order {order_id} ended {last.status}")


if __name__ == "__main__":
    anyio.run(main)

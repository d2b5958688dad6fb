"""One strategy, any broker: the neutral trading vocabulary.

Records and enums that every broker maps to its own, used by the neutral operations of
every REST client (:class:`aio_trader.abc.AbstractBroker`: ``last_prices``, ``submit``,
``modify``, ``cancel``, ``follow``, ``order_book``, ``net_positions``, ``portfolio``,
``funds``)::

    from aio_trader.trading import OrderRequest, Product, Side

    order_id = await broker.submit(
        OrderRequest("NSE:INFY", Side.BUY, 1, product=Product.MIS, market_protection=-1)
    )
    done = await broker.follow(order_id)      # an Order whose status is final

``docs/strategies.md`` has each broker's mapping.
"""

from __future__ import annotations

from aio_trader._trading import (
    EXCHANGES,
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

__all__ = [
    "EXCHANGES",
    "Funds",
    "Holding",
    "Order",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "Position",
    "Product",
    "Side",
    "Validity",
    "new_tag",
]

"""What only Dhan's dialect keeps: correlation ids, super and forever orders, conditional
triggers, the kill switch, P&L exit, static IPs, EDIS."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request

from aio_trader.sandbox._api import ApiError, stamp
from aio_trader.sandbox._dhan._instruments import by_security
from aio_trader.sandbox._dhan._wire import PRODUCTS
from aio_trader.sandbox.market import SandboxInstrument
from aio_trader.sandbox.state import SandboxState

__all__ = ["DhanState", "check_access_token", "dhan_state"]


class DhanState:
    """Dhan's own state in one sandbox (``SandboxState.broker``)."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        #: correlationId -> order ids (oldest first), as ``GET /orders/external/{id}`` finds them.
        self.correlations: dict[str, list[str]] = {}
        self.super_orders: dict[str, dict[str, Any]] = {}
        self.forever_orders: dict[str, dict[str, Any]] = {}
        self.alerts: dict[str, dict[str, Any]] = {}
        self.kill_switch = False
        self.pnl_exit: dict[str, Any] | None = None
        #: static IPs set through ``/ip/setIP`` (primary, secondary).
        self.ips: dict[str, str] = {}
        #: consentAppId -> tokenId (empty until the browser login) of the API-key flow.
        self.consents: dict[str, str] = {}
        self.next_id = 1

    def on_market_step(self) -> None:
        """Fire what the new prices reach: super-order legs (after the entry filled),
        forever orders (their trigger crossed), conditional triggers (their condition met).
        Each fires once; the orders it places go through the order engine."""
        for order_id, record in self.super_orders.items():
            self._step_super(order_id, record)
        for record in self.forever_orders.values():
            self._step_forever(record)
        for alert in self.alerts.values():
            self._step_alert(alert)

    def _place(
        self,
        instrument: SandboxInstrument,
        side: str,
        product: str,
        price: float,
        quantity: int,
        meta: dict[str, Any],
    ) -> str | None:
        """Book a LIMIT order at ``price`` (0: a protected MARKET order); None if refused."""
        params: dict[str, Any] = {
            "exchange": instrument.exchange,
            "tradingsymbol": instrument.tradingsymbol,
            "transaction_type": side,
            "order_type": "LIMIT" if price > 0 else "MARKET",
            "product": PRODUCTS.get(product, product),
            "quantity": quantity,
            "price": instrument.round_price(price) if price > 0 else 0,
            "market_protection": -1,
        }
        try:
            order = self.state.book.place("regular", params, meta={"dhan": meta})
        except ApiError:
            return None
        self.state.stats.orders_booked += 1
        correlation = meta.get("correlationId")
        if correlation:
            self.correlations.setdefault(correlation, []).append(order.order_id)
        return order.order_id

    def _step_super(self, order_id: str, record: dict[str, Any]) -> None:
        entry = self.state.book.orders.get(order_id)
        legs = record["legs"]
        if entry is None or entry.status != "COMPLETE" or "PENDING" not in legs.values():
            return
        last = self.state.market.last_price(entry.instrument.instrument_token)
        buy = entry.transaction_type == "BUY"
        target, stop = record["targetPrice"], record["stopLossPrice"]
        reached_target = (last >= target) if buy else (last <= target)
        reached_stop = (last <= stop) if buy else (last >= stop)
        hit = None
        if legs.get("TARGET_LEG") == "PENDING" and target > 0 and reached_target:
            hit = "TARGET_LEG"
        elif legs.get("STOP_LOSS_LEG") == "PENDING" and stop > 0 and reached_stop:
            hit = "STOP_LOSS_LEG"
        if hit is None:
            return
        meta = dict(entry.meta.get("dhan", {}), legName=hit)
        placed = self._place(
            entry.instrument,
            "SELL" if buy else "BUY",
            entry.product,
            target if hit == "TARGET_LEG" else 0.0,
            entry.quantity,
            meta,
        )
        for leg in legs:
            if legs[leg] == "PENDING":
                legs[leg] = "CANCELLED"
        legs[hit] = "TRADED" if placed else "REJECTED"

    def _step_forever(self, record: dict[str, Any]) -> None:
        if record["status"] != "PENDING":
            return
        instrument: SandboxInstrument = record["instrument"]
        last = self.state.market.last_price(instrument.instrument_token)
        reference = record.get("reference", last)
        legs = [("", record["triggerPrice"], record["price"], record["quantity"])]
        if record["orderFlag"] == "OCO":
            legs.append(("1", record["triggerPrice1"], record["price1"], record["quantity1"]))
        for _, trigger, price, quantity in legs:
            if (reference < trigger <= last) or (reference > trigger >= last):
                meta = {"correlationId": record.get("correlationId", "")}
                product = str(record["productType"])
                placed = self._place(
                    instrument, record["transactionType"], product, price, quantity, meta
                )
                record["status"] = "TRIGGERED" if placed else "REJECTED"
                record["placedOrderId"] = placed
                record["updateTime"] = stamp()
                return

    def _step_alert(self, alert: dict[str, Any]) -> None:
        if alert["alertStatus"] != "ACTIVE":
            return
        condition = alert["condition"]
        if condition.get("comparisonType") != "PRICE_WITH_VALUE":
            return  # indicator conditions never fire in the sandbox
        instrument = by_security(
            self.state.market, condition.get("exchangeSegment"), condition.get("securityId")
        )
        value = condition.get("comparingValue")
        if instrument is None or isinstance(value, bool) or not isinstance(value, int | float):
            return
        last = self.state.market.last_price(instrument.instrument_token)
        operator = str(condition.get("operator", ""))
        if operator in ("CROSSING_UP", "GREATER_THAN", "GREATER_THAN_EQUAL"):
            met = last >= value
        elif operator in ("CROSSING_DOWN", "LESS_THAN", "LESS_THAN_EQUAL"):
            met = last <= value
        else:
            return
        if not met:
            return
        alert.update(alertStatus="TRIGGERED", triggeredTime=stamp(), lastPrice=last)
        for leg in alert["orders"]:
            target = by_security(
                self.state.market, leg.get("exchangeSegment"), leg.get("securityId")
            )
            quantity = leg.get("quantity")
            price = leg.get("price") or 0
            side = leg.get("transactionType")
            if (
                target is None
                or side not in ("BUY", "SELL")
                or isinstance(quantity, bool)
                or not isinstance(quantity, int)
                or isinstance(price, bool)
                or not isinstance(price, int | float)
            ):
                continue
            self._place(
                target,
                side,
                str(leg.get("productType", "CNC")),
                float(price),
                quantity,
                {"correlationId": ""},
            )

    def new_id(self) -> str:
        value = self.next_id
        self.next_id += 1
        return f"{value:08d}"


def dhan_state(state: SandboxState) -> DhanState:
    """``state.broker`` of a Dhan sandbox."""
    broker = state.broker
    if not isinstance(broker, DhanState):  # pragma: no cover - routes of another dialect
        raise TypeError("not a Dhan sandbox")
    return broker


def check_access_token(state: SandboxState, token: str) -> bool:
    """True for a live access token (False once the session fault expires them)."""
    if state.faults.session_expired or not token:
        return False
    given = token.encode("utf-8", "replace")
    return any(hmac.compare_digest(given, live.encode()) for live in state.access_tokens)


def request_token(request: Request) -> str:
    return request.headers.get("access-token", "")

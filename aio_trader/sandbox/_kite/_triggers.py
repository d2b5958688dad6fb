"""GTT triggers and price alerts: stored, listed, modified, deleted, and fired by the market."""

from __future__ import annotations

import itertools
import json
import operator
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

from aio_trader.sandbox._api import (
    ApiError,
    ascii_int,
    load_json,
    now_ist,
    optional_float,
    optional_int,
    param,
    seeded,
    stamp,
)
from aio_trader.sandbox._kite._quotes import quote_dict
from aio_trader.sandbox.market import Market, SandboxInstrument
from aio_trader.sandbox.orders import OrderBook

__all__ = ["Alerts", "Gtts"]

_GTT_TYPES: Final = ("single", "two-leg")
#: Alert operators and what they compare.
_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "==": operator.eq,
}
#: Defaults of an ATO basket item's order parameters.
_BASKET_PARAMS: Final[dict[str, Any]] = {
    "validity": "DAY",
    "validity_ttl": 0,
    "variety": "regular",
    "product": "CNC",
    "order_type": "MARKET",
    "transaction_type": "BUY",
    "quantity": 1,
    "disclosed_quantity": 0,
    "price": 0,
    "trigger_price": 0,
    "squareoff": 0,
    "stoploss": 0,
    "trailing_stoploss": 0,
    "gtt": {"target": 0, "stoploss": 0},
    "tags": [],
}


def _json_param(params: Mapping[str, Any], name: str) -> Any:
    raw = param(params, name)
    try:
        return load_json(raw)
    except ValueError:
        raise ApiError.input(f"Invalid `{name}`: not JSON.") from None


class Gtts:
    """Good-till-triggered orders. A trigger fires when the last price crosses one of its
    values; it then places its order through the order book and becomes ``triggered``.
    """

    def __init__(self, market: Market, book: OrderBook, user_id: str) -> None:
        self.market = market
        self.book = book
        self.user_id = user_id
        self.triggers: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(100001)

    def _parse(self, params: Mapping[str, Any]) -> tuple[str, dict[str, Any], list[Any]]:
        kind = param(params, "type", _GTT_TYPES)
        condition = _json_param(params, "condition")
        orders = _json_param(params, "orders")
        if not isinstance(condition, dict) or not isinstance(orders, list):
            raise ApiError.input("Invalid `condition` or `orders`.")
        instrument = self.market.by_symbol(
            str(condition.get("exchange")), str(condition.get("tradingsymbol"))
        )
        if instrument is None:
            raise ApiError.input("Invalid `condition`: instrument not found.")
        values = condition.get("trigger_values")
        legs = 1 if kind == "single" else 2
        if (
            not isinstance(values, list)
            or len(values) != legs
            or not all(isinstance(v, int | float) and v > 0 for v in values)
            or len(orders) != legs
        ):
            raise ApiError.input(f"Invalid `trigger_values`/`orders` for a {kind} trigger.")
        clean = []
        for order in orders:
            if not isinstance(order, dict):
                raise ApiError.input("Invalid `orders`.")
            param(order, "transaction_type", self.book.tables.transaction_types)
            param(order, "order_type", self.book.tables.order_types)
            param(order, "product", self.book.tables.products)
            quantity = optional_int(order, "quantity")
            if quantity <= 0:
                raise ApiError.input("Invalid `quantity`.")
            clean.append(
                {
                    "exchange": instrument.exchange,
                    "tradingsymbol": instrument.tradingsymbol,
                    "product": order["product"],
                    "order_type": order["order_type"],
                    "transaction_type": order["transaction_type"],
                    "quantity": quantity,
                    "price": optional_float(order, "price"),
                    "result": None,
                }
            )
        last = condition.get("last_price")
        cond = {
            "exchange": instrument.exchange,
            "last_price": float(last)
            if isinstance(last, int | float)
            else self.market.last_price(instrument.instrument_token),
            "tradingsymbol": instrument.tradingsymbol,
            "trigger_values": [float(v) for v in values],
            "instrument_token": instrument.instrument_token,
        }
        return kind, cond, clean

    def place(self, params: Mapping[str, Any]) -> int:
        kind, condition, orders = self._parse(params)
        trigger_id = next(self._ids)
        now = now_ist()
        self.triggers[trigger_id] = {
            "id": trigger_id,
            "user_id": self.user_id,
            "parent_trigger": None,
            "type": kind,
            "created_at": stamp(now),
            "updated_at": stamp(now),
            "expires_at": stamp(now.replace(year=now.year + 1, day=min(now.day, 28))),
            "status": "active",
            "condition": condition,
            "orders": orders,
            "meta": {},  # Kite: {} while active, null once triggered
        }
        return trigger_id

    def get(self, trigger_id: str) -> dict[str, Any]:
        number = ascii_int(trigger_id)
        found = self.triggers.get(number) if number is not None else None
        if found is None:
            raise ApiError.input("Invalid trigger id.")
        return found

    def modify(self, trigger_id: str, params: Mapping[str, Any]) -> int:
        trigger = self.get(trigger_id)
        if trigger["status"] != "active":
            raise ApiError.input(f"Trigger cannot be modified: it is {trigger['status']}.")
        kind, condition, orders = self._parse(params)
        trigger.update(type=kind, condition=condition, orders=orders, updated_at=stamp())
        return int(trigger["id"])

    def delete(self, trigger_id: str) -> int:
        trigger = self.get(trigger_id)
        del self.triggers[int(trigger["id"])]
        return int(trigger["id"])

    def on_market_step(self) -> None:
        for trigger in self.triggers.values():
            if trigger["status"] != "active":
                continue
            condition = trigger["condition"]
            last = self.market.last_price(condition["instrument_token"])
            values = condition["trigger_values"]
            leg: int | None = None
            if trigger["type"] == "two-leg":
                if last <= values[0]:
                    leg = 0
                elif last >= values[1]:
                    leg = 1
            else:
                start = condition["last_price"]
                crossed = (start - values[0]) * (last - values[0]) <= 0
                leg = 0 if crossed else None
            if leg is not None:
                self._fire(trigger, leg, last)

    def _fire(self, trigger: dict[str, Any], leg: int, last: float) -> None:
        order = trigger["orders"][leg]
        params = {key: order[key] for key in order if key != "result"}
        try:
            placed = self.book.place("regular", params)
            outcome = {"status": "success", "order_id": placed.order_id, "rejection_reason": ""}
        except ApiError as error:
            outcome = {"status": "failed", "order_id": "", "rejection_reason": error.message}
        order["result"] = {
            "account_id": self.user_id,
            "exchange": order["exchange"],
            "tradingsymbol": order["tradingsymbol"],
            "validity": "DAY",
            "product": order["product"],
            "order_type": order["order_type"],
            "transaction_type": order["transaction_type"],
            "quantity": order["quantity"],
            "price": order["price"],
            "meta": json.dumps({"gtt": trigger["id"]}),
            "timestamp": stamp(),
            "triggered_at": last,
            "order_result": outcome,
        }
        trigger["status"] = "triggered"
        trigger["meta"] = None
        trigger["updated_at"] = stamp()


class Alerts:
    """Price alerts (``simple`` and ``ato``); each time a condition becomes true the alert's
    count grows and a history entry is kept.
    """

    def __init__(self, market: Market, user_id: str, seed: int) -> None:
        self.market = market
        self.user_id = user_id
        self.alerts: dict[str, dict[str, Any]] = {}
        self.history_rows: dict[str, list[dict[str, Any]]] = {}
        self._met: dict[str, bool] = {}
        self._rng = seeded(seed)

    def _alert_instrument(self, exchange: str, tradingsymbol: str) -> SandboxInstrument | None:
        """The instrument an alert names; ``INDICES`` (what alerts label an index with) finds
        the index of that name on any exchange."""
        if exchange != "INDICES":
            return self.market.by_symbol(exchange, tradingsymbol)
        for instrument in self.market.instruments.values():
            if instrument.is_index and instrument.tradingsymbol == tradingsymbol:
                return instrument
        return None

    def _parse(self, params: Mapping[str, Any]) -> dict[str, Any]:
        kind = str(params.get("type") or "simple")
        if kind not in ("simple", "ato"):
            raise ApiError.input("Invalid `type`.")
        lhs = self._alert_instrument(
            param(params, "lhs_exchange"), param(params, "lhs_tradingsymbol")
        )
        if lhs is None:
            raise ApiError.input("Invalid `lhs_tradingsymbol`: instrument not found.")
        compare = param(params, "operator", tuple(_COMPARE))
        rhs_type = str(params.get("rhs_type") or "constant")
        if rhs_type not in ("constant", "instrument"):
            raise ApiError.input("Invalid `rhs_type`.")
        out: dict[str, Any] = {
            "type": kind,
            "name": param(params, "name"),
            "lhs_attribute": str(params.get("lhs_attribute") or "LastTradedPrice"),
            "lhs_exchange": lhs.exchange if not lhs.is_index else "INDICES",
            "lhs_tradingsymbol": lhs.tradingsymbol,
            "operator": compare,
            "rhs_type": rhs_type,
            "rhs_attribute": "",
            "rhs_exchange": "",
            "rhs_tradingsymbol": "",
            "rhs_constant": 0,
            "_lhs": lhs.instrument_token,
        }
        if rhs_type == "constant":
            out["rhs_constant"] = optional_float(params, "rhs_constant")
        else:
            rhs = self._alert_instrument(
                param(params, "rhs_exchange"), param(params, "rhs_tradingsymbol")
            )
            if rhs is None:
                raise ApiError.input("Invalid `rhs_tradingsymbol`: instrument not found.")
            out.update(
                rhs_attribute=str(params.get("rhs_attribute") or "LastTradedPrice"),
                rhs_exchange=rhs.exchange,
                rhs_tradingsymbol=rhs.tradingsymbol,
                _rhs=rhs.instrument_token,
            )
        if kind == "ato":
            basket = params.get("basket")
            try:
                out["basket"] = load_json(basket) if isinstance(basket, str) else basket
            except ValueError:
                raise ApiError.input("Invalid `basket`: not JSON.") from None
            out["basket"] = self._basket(out["basket"])
        return out

    def _basket(self, basket: Any) -> dict[str, Any]:
        """An ATO basket with Kite's item fields (ids, tokens, full order params)."""
        items = basket.get("items") if isinstance(basket, dict) else None
        if not isinstance(items, list) or not items:
            raise ApiError.input("Invalid `basket`: a JSON object with a list of `items`.")
        clean = []
        for item in items:
            if not isinstance(item, dict):
                raise ApiError.input("Invalid `basket` item.")
            instrument = self.market.by_symbol(
                str(item.get("exchange")), str(item.get("tradingsymbol"))
            )
            if instrument is None:
                raise ApiError.input("Invalid `basket` item: instrument not found.")
            given = item.get("params") or {}
            if not isinstance(given, dict):
                raise ApiError.input("Invalid `basket` item params.")
            clean.append(
                {
                    "id": self._rng.randrange(10**8, 10**9),
                    "tradingsymbol": instrument.tradingsymbol,
                    "exchange": instrument.exchange,
                    "instrument_token": instrument.instrument_token,
                    "weight": optional_int(item, "weight"),
                    "params": _BASKET_PARAMS | given,
                }
            )
        return {"items": clean}

    @staticmethod
    def public(alert: Mapping[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in alert.items() if not key.startswith("_")}

    def create(self, params: Mapping[str, Any]) -> dict[str, Any]:
        alert = self._parse(params)
        alert_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        now = stamp()
        alert.update(
            uuid=alert_id,
            user_id=self.user_id,
            status="enabled",
            disabled_reason="",
            alert_count=0,
            created_at=now,
            updated_at=now,
        )
        self.alerts[alert_id] = alert
        self.history_rows[alert_id] = []
        # Kite's create answer leaves the basket out (reading the alert shows it)
        return {key: value for key, value in self.public(alert).items() if key != "basket"}

    def get(self, alert_id: str) -> dict[str, Any]:
        alert = self.alerts.get(alert_id)
        if alert is None:
            raise ApiError.input("Invalid alert uuid.")
        return alert

    def modify(self, alert_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
        alert = self.get(alert_id)
        changes = self._parse(params)
        status = params.get("status")
        if status is not None:
            if status not in ("enabled", "disabled"):
                raise ApiError.input("Invalid `status`.")
            changes["status"] = status
        alert.pop("_rhs", None)
        alert.update(changes, updated_at=stamp())
        return self.public(alert)

    def delete(self, alert_ids: list[str]) -> None:
        if not alert_ids:
            raise ApiError.input("Missing `uuid`.")
        for alert_id in alert_ids:
            self.get(alert_id)
        for alert_id in alert_ids:
            del self.alerts[alert_id]
            self._met.pop(alert_id, None)

    def history(self, alert_id: str) -> list[dict[str, Any]]:
        self.get(alert_id)
        return list(self.history_rows.get(alert_id, []))

    def on_market_step(self) -> None:
        for alert_id, alert in self.alerts.items():
            if alert["status"] != "enabled":
                continue
            lhs = self.market.last_price(alert["_lhs"])
            rhs = (
                self.market.last_price(alert["_rhs"]) if "_rhs" in alert else alert["rhs_constant"]
            )
            met = _COMPARE[alert["operator"]](lhs, rhs)
            if met and not self._met.get(alert_id, False):
                alert["alert_count"] += 1
                self._record(alert_id, alert, rhs)
            self._met[alert_id] = met

    def _record(self, alert_id: str, alert: dict[str, Any], rhs: float) -> None:
        token = alert["_lhs"]
        quote = quote_dict(self.market, token)
        meta = {
            "instrument_token": token,
            "tradingsymbol": alert["lhs_tradingsymbol"],
            "timestamp": quote["timestamp"],
            "last_price": quote["last_price"],
            "ohlc": quote["ohlc"],
            "net_change": quote["net_change"],
            "exchange": alert["lhs_exchange"],
            "last_trade_time": quote["last_trade_time"],
            "last_quantity": quote["last_quantity"],
            "buy_quantity": quote["buy_quantity"],
            "sell_quantity": quote["sell_quantity"],
            "volume": quote["volume"],
            "volume_tick": quote["last_quantity"],
            "average_price": quote["average_price"],
            "oi": quote["oi"],
            "oi_day_high": quote["oi_day_high"],
            "oi_day_low": quote["oi_day_low"],
            "lower_circuit_limit": quote["lower_circuit_limit"],
            "upper_circuit_limit": quote["upper_circuit_limit"],
        }
        condition = (
            f'{alert["lhs_attribute"]}("{alert["lhs_exchange"]}:{alert["lhs_tradingsymbol"]}") '
            f"{alert['operator']} {rhs}"
        )
        self.history_rows.setdefault(alert_id, []).append(
            {
                "uuid": alert_id,
                "type": alert["type"],
                "meta": [meta],
                "condition": condition,
                "created_at": stamp(),
                "order_meta": None,
            }
        )

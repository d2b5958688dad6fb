"""Mutual funds: the shipped fund list, orders, SIPs and holdings."""

from __future__ import annotations

import csv
import datetime
import io
import uuid
from collections.abc import Mapping
from importlib import resources
from typing import Any, Final

from aio_trader.sandbox._api import (
    ApiError,
    ascii_int,
    now_ist,
    optional_float,
    optional_int,
    param,
    seeded,
    stamp,
)

__all__ = ["MutualFunds"]

#: SIP frequencies and the days between their instalments.
_FREQUENCY_DAYS: Final = {"weekly": 7, "monthly": 30, "quarterly": 91}


def _instalments(params: Mapping[str, Any]) -> int:
    """``instalments``: a positive count, or -1 (the default) for a SIP without end; else 400."""
    text = str(params.get("instalments") or "").strip()
    if text in ("", "-1"):
        return -1
    count = ascii_int(text)
    if not count:
        raise ApiError.input("Invalid `instalments`: a positive count, or -1.")
    return count


class MutualFunds:
    """MF orders stay ``OPEN`` until cancelled; SIPs are ``ACTIVE``/``PAUSED``/``CANCELLED``."""

    def __init__(self, seed: int) -> None:
        self.csv_text = (
            resources.files("aio_trader.sandbox._kite")
            .joinpath("mf_instruments.csv")
            .read_text("utf-8")
        )
        self.funds = {
            row["tradingsymbol"]: row for row in csv.DictReader(io.StringIO(self.csv_text))
        }
        self.orders: dict[str, dict[str, Any]] = {}
        self.sips: dict[str, dict[str, Any]] = {}
        self._rng = seeded(seed ^ 0x5F5F)
        self._holdings = [
            (symbol, round(self._rng.uniform(1, 400), 3), float(self.funds[symbol]["last_price"]))
            for symbol in ("INF205K01NT8", "INF666M01451", "INF761K01884")
        ]

    def _fund(self, params: Mapping[str, Any]) -> dict[str, str]:
        symbol = param(params, "tradingsymbol")
        fund = self.funds.get(symbol)
        if fund is None:
            raise ApiError.input("Invalid `tradingsymbol`: fund not found.")
        return fund

    # -- orders --------------------------------------------------------------------------

    def place_order(self, params: Mapping[str, Any]) -> str:
        fund = self._fund(params)
        side = param(params, "transaction_type", ("BUY", "SELL"))
        amount = optional_float(params, "amount")
        quantity = optional_float(params, "quantity")
        if side == "BUY" and amount < float(fund["minimum_purchase_amount"]):
            raise ApiError.input(
                f"Invalid `amount`: the minimum purchase is {fund['minimum_purchase_amount']}."
            )
        if side == "SELL" and quantity <= 0:
            raise ApiError.input("Invalid `quantity`.")
        order_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        self.orders[order_id] = {
            "status": "OPEN",
            "purchase_type": "FRESH",
            "folio": None,
            "order_timestamp": stamp(),
            "average_price": 0.0,
            "exchange_order_id": None,
            "last_price": float(fund["last_price"]),
            "tradingsymbol": fund["tradingsymbol"],
            "settlement_id": None,
            "transaction_type": side,
            "order_id": order_id,
            "amount": amount,
            "tag": params.get("tag") or None,
            "placed_by": "",
            "exchange_timestamp": None,
            "variety": "regular",
            "last_price_date": fund["last_price_date"],
            "status_message": "",
            "fund": fund["name"],
            "quantity": quantity,
        }
        return order_id

    def get_order(self, order_id: str) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise ApiError.input("Couldn't find that `order_id`.")
        return order

    def cancel_order(self, order_id: str) -> str:
        order = self.get_order(order_id)
        if order["status"] != "OPEN":
            raise ApiError.input(f"Order cannot be cancelled: it is {order['status']}.")
        order["status"] = "CANCELLED"
        return order_id

    # -- SIPs ------------------------------------------------------------------------------

    def place_sip(self, params: Mapping[str, Any]) -> str:
        fund = self._fund(params)
        amount = optional_float(params, "amount")
        if amount <= 0:
            raise ApiError.input("Invalid `amount`.")
        frequency = param(params, "frequency", tuple(_FREQUENCY_DAYS))
        instalments = _instalments(params)
        sip_id = str(self._rng.randrange(10**14, 10**15))
        today = now_ist()
        step = _FREQUENCY_DAYS[frequency]
        self.sips[sip_id] = {
            "status": "ACTIVE",
            "sip_reg_num": None,
            "created": stamp(today),
            "dividend_type": fund["dividend_type"],
            "instalment_amount": amount,
            "fund": fund["name"],
            "instalments": instalments,
            "next_instalment": (today + datetime.timedelta(days=step)).date().isoformat(),
            "transaction_type": "BUY",
            "trigger_price": 0,
            "step_up": {},
            "tradingsymbol": fund["tradingsymbol"],
            "tag": str(params.get("tag") or ""),
            "frequency": frequency,
            "last_instalment": stamp(today),
            "pending_instalments": instalments,
            "instalment_day": optional_int(params, "instalment_day"),
            "sip_type": "sip",
            "fund_source": "pool",
            "completed_instalments": 0,
            "sip_id": sip_id,
        }
        return sip_id

    def get_sip(self, sip_id: str) -> dict[str, Any]:
        sip = self.sips.get(sip_id)
        if sip is None:
            raise ApiError.input("Couldn't find that `sip_id`.")
        return sip

    def modify_sip(self, sip_id: str, params: Mapping[str, Any]) -> str:
        sip = self.get_sip(sip_id)
        if sip["status"] == "CANCELLED":
            raise ApiError.input("SIP is cancelled.")
        if params.get("amount") not in (None, ""):
            sip["instalment_amount"] = optional_float(params, "amount")
        if params.get("frequency"):
            sip["frequency"] = param(params, "frequency", tuple(_FREQUENCY_DAYS))
        if params.get("instalments") not in (None, ""):
            sip["instalments"] = sip["pending_instalments"] = _instalments(params)
        if params.get("instalment_day") not in (None, ""):
            sip["instalment_day"] = optional_int(params, "instalment_day")
        if params.get("status"):
            sip["status"] = param(params, "status", ("active", "paused")).upper()
        return sip_id

    def cancel_sip(self, sip_id: str) -> str:
        self.get_sip(sip_id)["status"] = "CANCELLED"
        return sip_id

    def holdings(self) -> list[dict[str, Any]]:
        rows = []
        for index, (symbol, quantity, nav) in enumerate(self._holdings):
            fund = self.funds[symbol]
            average = round(nav * 0.9, 4)
            rows.append(
                {
                    "folio": f"{3108290884 + index * 1000003}",
                    "average_price": average,
                    "last_price": nav,
                    "last_price_date": fund["last_price_date"],
                    "pledged_quantity": 0,
                    "fund": fund["name"],
                    "tradingsymbol": symbol,
                    "pnl": (nav - average) * quantity,
                    "quantity": quantity,
                }
            )
        return rows

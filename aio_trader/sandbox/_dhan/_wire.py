"""Dhan's bodies: bare JSON successes, ``{errorType, errorCode, errorMessage}`` errors, the
engine's orders, trades and statuses in Dhan's words, and the order-update socket's
``order_alert`` message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from starlette.responses import JSONResponse

from aio_trader.sandbox._api import ApiError, ErrorKind
from aio_trader.sandbox._dhan._instruments import dhan_segment, security_id
from aio_trader.sandbox.orders import Order
from aio_trader.sandbox.state import SandboxState

__all__ = [
    "ERROR_CODES",
    "PRODUCTS",
    "dhan_order",
    "dhan_status",
    "error_response",
    "order_alert",
    "success",
]

#: (errorType, errorCode) for each neutral kind of error (Dhan's annexure).
ERROR_CODES: Final[Mapping[ErrorKind, tuple[str, str]]] = {
    "session": ("Invalid_Authentication", "DH-901"),
    "permission": ("Invalid_IP", "DH-911"),
    "rate_limit": ("Rate_Limit", "DH-904"),
    "input": ("Input_Exception", "DH-905"),
    "order": ("Order_Error", "DH-906"),
    "margin": ("Order_Error", "DH-906"),
    "holding": ("Order_Error", "DH-906"),
    "data": ("Data_Error", "DH-907"),
    "unavailable": ("Internal_Server_Error", "DH-908"),
    "general": ("Others", "DH-910"),
}

#: Dhan's productType -> the engine's product (and back).
PRODUCTS: Final[Mapping[str, str]] = {
    "CNC": "CNC",
    "INTRADAY": "MIS",
    "MARGIN": "NRML",
    "MTF": "MTF",
    "CO": "CO",
    "BO": "BO",
}
_PRODUCT_OF_ENGINE: Final = {engine: dhan for dhan, engine in PRODUCTS.items()}
#: Dhan's orderType -> the engine's (and back).
ORDER_TYPES: Final[Mapping[str, str]] = {
    "LIMIT": "LIMIT",
    "MARKET": "MARKET",
    "STOP_LOSS": "SL",
    "STOP_LOSS_MARKET": "SL-M",
}
_ORDER_TYPE_OF_ENGINE: Final = {engine: dhan for dhan, engine in ORDER_TYPES.items()}


def success(data: Any) -> JSONResponse:
    """Dhan answers the data itself: an object or a bare array (no envelope)."""
    return JSONResponse(data)


def error_response(error: ApiError) -> JSONResponse:
    """Dhan's error body (``errorCode`` from the neutral kind) with the error's status."""
    if error.status == 404 and error.kind == "general":
        error_type, code = "Input_Exception", "DH-905"
    else:
        error_type, code = ERROR_CODES[error.kind]
    body = {"errorType": error_type, "errorCode": code, "errorMessage": error.message}
    return JSONResponse(body, status_code=error.status)


def dhan_status(order: Order, status: str | None = None) -> str:
    """The engine's status in Dhan's words (TRANSIT PENDING PART_TRADED TRADED...)."""
    status = status or order.status
    if status == "COMPLETE":
        return "TRADED"
    if status in ("OPEN", "TRIGGER PENDING", "AMO REQ RECEIVED", "MODIFIED"):
        return "PART_TRADED" if order.filled_quantity else "PENDING"
    if status in ("CANCELLED", "REJECTED"):
        return status
    return "TRANSIT"


def dhan_product(product: str) -> str:
    return _PRODUCT_OF_ENGINE.get(product, product)


def dhan_order_type(order_type: str) -> str:
    return _ORDER_TYPE_OF_ENGINE.get(order_type, order_type)


def correlation_id(order: Order) -> str:
    """The order's ``correlationId`` (the dialect keeps it in ``order.meta["dhan"]``)."""
    return str(order.meta.get("dhan", {}).get("correlationId", ""))


def _time(text: str | None) -> str:
    return text or "0001-01-01 00:00:00"


def dhan_order(state: SandboxState, order: Order) -> dict[str, Any]:
    """An order as ``GET /orders`` answers it."""
    i = order.instrument
    option = {"CE": "CALL", "PE": "PUT"}.get(i.instrument_type, "NA")
    return {
        "dhanClientId": state.config.client_id,
        "orderId": order.order_id,
        "exchangeOrderId": order.exchange_order_id or "",
        "correlationId": correlation_id(order),
        "orderStatus": dhan_status(order),
        "transactionType": order.transaction_type,
        "exchangeSegment": dhan_segment(i),
        "productType": dhan_product(order.product),
        "orderType": dhan_order_type(order.order_type),
        "validity": order.validity,
        "tradingSymbol": i.tradingsymbol,
        "securityId": security_id(i),
        "quantity": order.quantity,
        "disclosedQuantity": order.disclosed_quantity,
        "price": order.price,
        "triggerPrice": order.trigger_price,
        "afterMarketOrder": order.variety == "amo",
        "boProfitValue": 0,
        "boStopLossValue": 0,
        "legName": order.meta.get("dhan", {}).get("legName", "NA"),
        "createTime": _time(order.order_timestamp),
        "updateTime": _time(order.exchange_update_timestamp or order.order_timestamp),
        "exchangeTime": _time(order.exchange_timestamp),
        "drvExpiryDate": i.expiry.isoformat() if i.expiry else "NA",
        "drvOptionType": option,
        "drvStrikePrice": i.strike,
        "omsErrorCode": "",
        "omsErrorDescription": order.status_message or "",
        "algoId": order.algo_id or "",
        "remainingQuantity": order.pending_quantity,
        "averageTradedPrice": order.average_price,
        "filledQty": order.filled_quantity,
    }


def order_alert(state: SandboxState, order: Order, status: str | None = None) -> dict[str, Any]:
    """The order-update socket's message for the order's state now (camelCase keys, as the
    live socket sends them; ``status`` overrides the order's own)."""
    i = order.instrument
    segment = dhan_segment(i)
    shown = dhan_status(order, status)
    data = {
        "exchange": i.exchange if segment != "IDX_I" else "NSE",
        "segment": segment,
        "source": "API",
        "securityId": security_id(i),
        "clientId": state.config.client_id,
        "exchOrderNo": order.exchange_order_id or "",
        "orderNo": order.order_id,
        "product": dhan_product(order.product)[:1],
        "txnType": order.transaction_type[:1],
        "orderType": dhan_order_type(order.order_type),
        "validity": order.validity,
        "quantity": order.quantity,
        "tradedQty": order.filled_quantity,
        "remainingQuantity": order.pending_quantity,
        "price": order.price,
        "triggerPrice": order.trigger_price,
        "tradedPrice": order.average_price,
        "avgTradedPrice": order.average_price,
        "status": shown,
        "symbol": i.tradingsymbol,
        "displayName": i.tradingsymbol,
        "correlationId": correlation_id(order),
        "remarks": order.status_message or "",
        "reasonDescription": order.status_message or "",
        "lotSize": i.lot_size,
        "strikePrice": i.strike,
        "expiryDate": i.expiry.isoformat() if i.expiry else "",
        "optType": {"CE": "CE", "PE": "PE"}.get(i.instrument_type, "XX"),
        "orderDateTime": _time(order.order_timestamp),
        "exchOrderTime": _time(order.exchange_timestamp),
        "lastUpdatedTime": _time(order.exchange_update_timestamp or order.order_timestamp),
    }
    return {"Type": "order_alert", "Data": data}

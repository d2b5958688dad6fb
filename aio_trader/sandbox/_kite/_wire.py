"""Kite's envelopes, error bodies and order postbacks."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from starlette.responses import JSONResponse

from aio_trader.sandbox._api import ApiError, ErrorKind
from aio_trader.sandbox.orders import Order
from aio_trader.sandbox.state import SandboxState

__all__ = ["error_response", "error_type", "postback", "success"]

#: Kite's ``error_type`` for each neutral kind of error.
ERROR_TYPES: Final[Mapping[ErrorKind, str]] = {
    "input": "InputException",
    "session": "TokenException",
    "permission": "PermissionException",
    "rate_limit": "NetworkException",
    "unavailable": "NetworkException",
    "margin": "MarginException",
    "holding": "HoldingException",
    "order": "OrderException",
    "data": "DataException",
    "general": "GeneralException",
}


def success(data: Any) -> JSONResponse:
    """Kite's success envelope."""
    return JSONResponse({"status": "success", "data": data})


def error_type(error: ApiError) -> str:
    """Kite's ``error_type`` for ``error``."""
    return ERROR_TYPES[error.kind]


def error_response(error: ApiError) -> JSONResponse:
    """Kite's error body with the error's HTTP status."""
    body = {"status": "error", "message": error.message, "data": None}
    body["error_type"] = error_type(error)
    return JSONResponse(body, status_code=error.status)


def postback(state: SandboxState, order: Order, status: str | None = None) -> dict[str, Any]:
    """Kite's postback dict for the order's current state (with its checksum)."""
    data = order.to_dict()
    for key in ("modified", "validity_ttl", "tags", "account_id", "terminal_id"):
        data.pop(key, None)
    data.pop("auction_number", None)
    if status is not None:
        data["status"] = status
    user_id = state.config.user_id
    checksum = hashlib.sha256(
        (order.order_id + order.order_timestamp + state.config.api_secret).encode()
    ).hexdigest()
    data.update(
        user_id=user_id,
        placed_by=user_id,
        app_id=0,
        unfilled_quantity=order.pending_quantity,
        checksum=checksum,
    )
    return data

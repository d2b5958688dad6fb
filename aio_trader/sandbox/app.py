"""The sandbox's ASGI application: Kite's REST routes (at ``/`` and ``/oms``), the ticker at
``/ws``, and the admin endpoints under ``/__sandbox__``.

Admin endpoints (no auth, no faults, no rate limits):

- ``GET /__sandbox__/ping`` -> ``{"status": "success", "data": "pong"}``
- ``GET /__sandbox__/faults``; ``POST /__sandbox__/faults`` with a JSON object of ``Faults``
  fields -> the faults now in force (400 InputException for unknown fields or bad values)
- ``POST /__sandbox__/drop_websockets``, ``POST /__sandbox__/expire_session``
- ``POST /__sandbox__/step?steps=N`` -> advance the market N steps
- ``GET /__sandbox__/stats`` -> the ``SandboxStats`` counters
"""

from __future__ import annotations

from typing import Any

import attrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute

from aio_trader.sandbox._api import ApiError, ascii_int, load_json
from aio_trader.sandbox.rest import error_response, kite_routes, session_routes, success
from aio_trader.sandbox.state import SandboxState
from aio_trader.sandbox.ticker import ticker_endpoint

__all__ = ["build_app"]


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


async def _ping(request: Request) -> Response:
    return success("pong")


async def _faults(request: Request) -> Response:
    state = _state(request)
    if request.method == "POST":
        try:
            changes = load_json(await request.body() or b"{}")
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object of fault fields")
            state.faults.update(changes)
        except ValueError as error:
            return error_response(ApiError.input(str(error)))
    return success(attrs.asdict(state.faults))


async def _drop_websockets(request: Request) -> Response:
    _state(request).drop_websockets()
    return success(True)


async def _expire_session(request: Request) -> Response:
    _state(request).expire_session()
    return success(True)


async def _step(request: Request) -> Response:
    steps = ascii_int(request.query_params.get("steps", "1"))
    if steps is None or not 0 < steps <= 100_000:
        return error_response(ApiError.input("Invalid `steps`: 1 to 100000."))
    _state(request).step_market(steps)
    return success(_state(request).market.steps)


async def _stats(request: Request) -> Response:
    return success(attrs.asdict(_state(request).stats))


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = "Route not found" if status == 404 else str(getattr(exc, "detail", "Error"))
    return error_response(ApiError(status, "GeneralException", message))


def build_app(state: SandboxState) -> Starlette:
    """The Starlette app serving ``state`` (stored as ``app.state.sandbox``)."""
    admin: list[Any] = [
        Route("/ping", _ping, methods=["GET"]),
        Route("/faults", _faults, methods=["GET", "POST"]),
        Route("/drop_websockets", _drop_websockets, methods=["POST"]),
        Route("/expire_session", _expire_session, methods=["POST"]),
        Route("/step", _step, methods=["POST"]),
        Route("/stats", _stats, methods=["GET"]),
    ]
    api = kite_routes()
    app = Starlette(
        routes=[
            Mount("/__sandbox__", routes=admin),
            WebSocketRoute("/ws", ticker_endpoint),
            *session_routes(),
            *api,
            Mount("/oms", routes=api),
        ],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.sandbox = state
    return app

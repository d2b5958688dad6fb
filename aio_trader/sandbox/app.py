"""The sandbox's ASGI application (broker-neutral): the admin endpoints under
``/__sandbox__`` and the dialect's routes (Kite: REST at ``/`` and ``/oms``, the ticker at
``/ws``, login). Every answer, admin ones and unknown paths included, is in the dialect's
envelopes.

Admin endpoints (no auth, no faults, no rate limits):

- ``GET /__sandbox__/ping`` -> ``{"status": "success", "data": "pong"}``
- ``GET /__sandbox__/faults``; ``POST /__sandbox__/faults`` with a JSON object of ``Faults``
  fields -> the faults now in force (400, Kite: InputException, for unknown fields or bad
  values)
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
from starlette.routing import Mount, Route

from aio_trader.sandbox._api import ApiError, ascii_int, load_json
from aio_trader.sandbox._dialect import dialect_path
from aio_trader.sandbox.state import SandboxState

__all__ = ["build_app"]


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _success(request: Request, data: Any) -> Response:
    return _state(request).dialect.success(data)


def _error(request: Request, error: ApiError) -> Response:
    return _state(request).dialect.error_response(error)


async def _ping(request: Request) -> Response:
    return _success(request, "pong")


async def _faults(request: Request) -> Response:
    state = _state(request)
    if request.method == "POST":
        try:
            changes = load_json(await request.body() or b"{}")
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object of fault fields")
            state.faults.update(changes)
        except ValueError as error:
            return _error(request, ApiError.input(str(error)))
    return _success(request, attrs.asdict(state.faults))


async def _drop_websockets(request: Request) -> Response:
    _state(request).drop_websockets()
    return _success(request, True)


async def _expire_session(request: Request) -> Response:
    _state(request).expire_session()
    return _success(request, True)


async def _step(request: Request) -> Response:
    steps = ascii_int(request.query_params.get("steps", "1"))
    if steps is None or not 0 < steps <= 100_000:
        return _error(request, ApiError.input("Invalid `steps`: 1 to 100000."))
    _state(request).step_market(steps)
    return _success(request, _state(request).market.steps)


async def _stats(request: Request) -> Response:
    return _success(request, attrs.asdict(_state(request).stats))


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = "Route not found" if status == 404 else str(getattr(exc, "detail", "Error"))
    return _error(request, ApiError(status, "general", message))


def build_app(state: SandboxState) -> Starlette:
    """The Starlette app serving ``state`` (stored as ``app.state.sandbox``): the admin
    routes, then the dialect's."""
    admin: list[Any] = [
        Route("/ping", _ping, methods=["GET"]),
        Route("/faults", _faults, methods=["GET", "POST"]),
        Route("/drop_websockets", _drop_websockets, methods=["POST"]),
        Route("/expire_session", _expire_session, methods=["POST"]),
        Route("/step", _step, methods=["POST"]),
        Route("/stats", _stats, methods=["GET"]),
    ]
    mounts = [Mount("/__sandbox__", routes=admin)]
    root_path = dialect_path(state.dialect, "root_path")
    if root_path:  # the admin routes under the REST root too (Dhan: /v2)
        mounts.append(Mount(f"{root_path}/__sandbox__", routes=admin))
    app = Starlette(
        routes=[*mounts, *state.dialect.routes()],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.sandbox = state
    return app

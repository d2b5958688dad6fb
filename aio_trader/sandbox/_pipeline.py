"""The fault pipeline every REST endpoint of every dialect runs through (broker-neutral).

``Endpoint(handler, group=..., auth=..., lossy=..., orders=...)`` is an ASGI endpoint: in
order, injected latency, a 5xx burst, the dialect's credentials check (403), the static-IP
whitelist for order requests (403), the rate limit of the endpoint's group (429), then the
request's parameters (query, form or JSON body) and the handler. Answers go out through the
dialect's envelopes (``Dialect.success`` / ``Dialect.error_response``); a handler may also
return a ``Response`` of its own. Under ``lose_order_reply`` a ``lossy`` endpoint's
successful answer is lost after the work is done.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import anyio
import attrs
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from aio_trader.sandbox._api import ApiError, load_json
from aio_trader.sandbox.state import SandboxState

__all__ = ["Call", "Endpoint", "Handler"]

log = logging.getLogger(__name__)

#: The refusal of an order request from an address that is not a registered static IP
#: (the exact wording Kite uses is not published; this is the one place to change it).
_IP_REFUSED: Final = "Order requests are allowed only from your registered static IP(s)."


@attrs.frozen
class Call:
    """What a handler gets: the state, path parameters, query, merged parameters, JSON body."""

    state: SandboxState
    request: Request
    path: Mapping[str, str]
    query: QueryParams
    params: Mapping[str, Any]
    body: Any


Handler = Callable[[Call], Awaitable[Any]]


class Endpoint:
    """An ASGI endpoint running the fault pipeline around ``handler``.

    ``group`` is the rate-limit group (None: not limited), ``auth`` whether a valid session
    is needed, ``lossy`` whether the ``lose_order_reply`` fault applies (order placement),
    ``orders`` whether the static-IP whitelist (``config.order_ips``) applies.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        group: str | None = None,
        auth: bool = True,
        lossy: bool = False,
        orders: bool = False,
    ) -> None:
        self.handler = handler
        self.group = group
        self.auth = auth
        self.lossy = lossy
        self.orders = orders

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        state: SandboxState = request.app.state.sandbox
        lose = False
        try:
            response = await self._run(request, state)
            lose = self.lossy and state.faults.lose_order_reply and response.status_code == 200
        except ApiError as error:
            response = state.dialect.error_response(error)
        except ClientDisconnect:
            # The client went away mid-request: nobody to answer, nothing went wrong here.
            state.stats.client_disconnects += 1
            return
        except Exception:
            log.exception("sandbox: unexpected error in %s", request.url.path)
            response = state.dialect.error_response(ApiError(500, "general", "Internal error."))
        if lose:
            # The order is booked; now the reply is lost: headers promise a body that never
            # comes and the connection closes, so the client sees a broken read, not a status.
            state.stats.order_replies_lost += 1
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(response.body) + 64).encode()),
                    ],
                }
            )
            return
        await response(scope, receive, send)

    async def _run(self, request: Request, state: SandboxState) -> Response:
        state.stats.requests += 1
        faults = state.faults
        if faults.latency > 0:
            await anyio.sleep(faults.latency)
        if faults.http_5xx_burst > 0:
            faults.http_5xx_burst -= 1
            state.stats.http_5xx_sent += 1
            raise ApiError(503, "unavailable", "Service unavailable (sandbox 5xx fault).")
        if self.auth:
            refusal = state.dialect.auth_error(request, state)
            if refusal is not None:
                state.stats.refused_403 += 1
                raise refusal
        allowed = state.config.order_ips
        if self.orders and allowed and _client_ip(request) not in allowed:
            state.stats.refused_403 += 1
            raise ApiError(403, "permission", _IP_REFUSED)
        if self.group is not None and not state.limiter.allow(self.group, anyio.current_time()):
            state.stats.refused_429[self.group] += 1
            raise ApiError(429, "rate_limit", "Too many requests")
        params: dict[str, Any] = dict(request.query_params)
        body: Any = None
        if request.method in ("POST", "PUT"):
            content_type = request.headers.get("content-type", "")
            if "json" in content_type:
                try:
                    body = load_json(await request.body() or b"null")
                except ValueError:
                    raise ApiError.input("Invalid JSON body.") from None
            else:
                params.update(await _form(request))
        call = Call(state, request, request.path_params, request.query_params, params, body)
        result = await self.handler(call)
        return result if isinstance(result, Response) else state.dialect.success(result)


async def _form(request: Request) -> dict[str, str]:
    """The form fields of a POST/PUT body (files ignored); a malformed body is a 400."""
    try:
        form = await request.form()
    except (KeyError, ValueError, MultiPartException, HTTPException):
        # e.g. a multipart body without a boundary (KeyError), a broken multipart body
        raise ApiError.input("Invalid form body.") from None
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _client_ip(request: Request) -> str:
    client = request.client
    return client.host if client is not None else ""

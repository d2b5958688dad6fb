"""What only Dhan's dialect keeps: correlation ids, super and forever orders, conditional
triggers, the kill switch, P&L exit, static IPs, EDIS."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request

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
        """Nothing moves on a step (triggers are checked on read)."""

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

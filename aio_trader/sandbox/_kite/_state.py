"""What only Kite's dialect keeps: GTTs, alerts, mutual funds and the login exchange's tokens."""

from __future__ import annotations

import hmac
import secrets

from aio_trader.sandbox._kite._mf import MutualFunds
from aio_trader.sandbox._kite._triggers import Alerts, Gtts
from aio_trader.sandbox.state import SandboxState

__all__ = ["KiteState", "check_enctoken", "kite_state"]


class KiteState:
    """Kite's own state in one sandbox (``SandboxState.broker``)."""

    def __init__(self, state: SandboxState) -> None:
        config = state.config
        self.gtts = Gtts(state.market, state.book, config.user_id)
        self.alerts = Alerts(state.market, config.user_id, config.seed)
        self.mf = MutualFunds(config.seed)
        self.refresh_tokens = {config.refresh_token}
        self.request_tokens: set[str] = set()
        #: Kite Web logins waiting for their two-factor step (``request_id``s).
        self.web_requests: set[str] = set()

    def on_market_step(self) -> None:
        """Fire the GTTs and alerts the new prices meet."""
        self.gtts.on_market_step()
        self.alerts.on_market_step()

    def new_request_token(self) -> str:
        token = secrets.token_urlsafe(24)
        self.request_tokens.add(token)
        return token


def kite_state(state: SandboxState) -> KiteState:
    """``state.broker`` of a Kite sandbox."""
    broker = state.broker
    if not isinstance(broker, KiteState):  # pragma: no cover - routes of another dialect
        raise TypeError("not a Kite sandbox")
    return broker


def check_enctoken(state: SandboxState, user_id: str, enctoken: str) -> bool:
    """True for the Kite Web session's enctoken (``user_id`` may be empty: REST sends none)."""
    if state.faults.session_expired:
        return False
    if user_id and user_id != state.config.user_id:
        return False
    return hmac.compare_digest(enctoken, state.config.enctoken)

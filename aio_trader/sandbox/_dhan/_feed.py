"""Dhan's sockets in the sandbox: the market feed (``FEED_PATH``) and the order-update
socket (``ORDER_FEED_PATH``). (The feed engineer's file: ``routes()`` returns them.)"""

from __future__ import annotations

from typing import Final

from starlette.routing import BaseRoute

__all__ = ["FEED_PATH", "ORDER_FEED_PATH", "routes"]

#: The market feed's path (Dhan: ``wss://api-feed.dhan.co?version=2&token=..``).
FEED_PATH: Final = "/feed"
#: The order-update socket's path (Dhan: ``wss://api-order-update.dhan.co``).
ORDER_FEED_PATH: Final = "/order-update"


def routes() -> list[BaseRoute]:
    """The WebSocket routes of the Dhan dialect."""
    return []

"""Dhan's rate limits per endpoint group (the client's limiter and the sandbox use them)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from aio_trader.dhan.constants import DhanEndpointGroup
from aio_trader.ratelimit import Rate

__all__ = ["RATE_LIMITS", "rate_limits"]

#: Dhan's published limits per group (orders: 10/s, 250/min, 1000/h, 7000/day; data: 5/s,
#: 100,000/day; quotes: 1/s; everything else: 20/s).
RATE_LIMITS: Final[Mapping[DhanEndpointGroup, tuple[Rate, ...]]] = MappingProxyType(
    {
        DhanEndpointGroup.ORDER: (
            Rate(10, 1.0),
            Rate(250, 60.0),
            Rate(1000, 3600.0),
            Rate(7000, 86400.0),
        ),
        DhanEndpointGroup.DATA: (Rate(5, 1.0), Rate(100_000, 86400.0)),
        DhanEndpointGroup.QUOTE: (Rate(1, 1.0),),
        DhanEndpointGroup.OTHER: (Rate(20, 1.0),),
    }
)


def rate_limits(scale: float = 1.0) -> Mapping[DhanEndpointGroup, tuple[Rate, ...]]:
    """Dhan's limits with every count multiplied by ``scale`` (at least 1 per window)."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    if scale == 1:
        return RATE_LIMITS
    return MappingProxyType(
        {
            group: tuple(Rate(max(1, round(r.count * scale)), r.period) for r in rates)
            for group, rates in RATE_LIMITS.items()
        }
    )

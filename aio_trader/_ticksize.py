"""Rounding a price to an instrument's tick size, exactly (decimal arithmetic)."""

from __future__ import annotations

import decimal
import math
from typing import Literal

__all__ = ["round_to_tick"]

_MODES = {
    "nearest": decimal.ROUND_HALF_UP,
    "up": decimal.ROUND_CEILING,
    "down": decimal.ROUND_FLOOR,
}
_CONTEXT = decimal.Context(prec=34)


def _exact(value: float | int | decimal.Decimal, name: str) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, not {value!r}")
        # repr() is the shortest decimal that reads back as this float: 0.05, not
        # 0.05000000000000000277 (what Decimal(0.05) would give).
        return decimal.Decimal(repr(value))
    result = decimal.Decimal(value)
    if not result.is_finite():
        raise ValueError(f"{name} must be finite, not {value!r}")
    return result


def round_to_tick(
    price: float | int | decimal.Decimal,
    tick: float | int | decimal.Decimal,
    mode: Literal["nearest", "up", "down"] = "nearest",
) -> float:
    """``price`` rounded to a multiple of ``tick``, as a float.

    The arithmetic is decimal on the numbers as written (``0.05``, not the binary
    float nearest to it), so ``round_to_tick(101.03, 0.05)`` is ``101.05`` and the result
    is the float nearest to an exact multiple of the tick (``repr`` shows it as such).

    Args:
        price: the price to round (a float, int or ``Decimal``; negative prices are
            allowed: spreads can be negative).
        tick: the instrument's tick size (``tick_size`` of its instrument record), > 0.
        mode: ``"nearest"`` (a price exactly half way goes up, away from zero),
            ``"up"`` (the smallest multiple >= price) or ``"down"`` (the largest
            multiple <= price).

    Raises:
        ValueError: ``tick`` is not > 0, a number is not finite, or ``mode`` is unknown.
        TypeError: ``price`` or ``tick`` is not a number.
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be 'nearest', 'up' or 'down', not {mode!r}")
    step = _exact(tick, "tick")
    if step <= 0:
        raise ValueError(f"tick must be > 0, not {tick!r}")
    exact = _exact(price, "price")
    count = _CONTEXT.divide(exact, step).to_integral_value(rounding=_MODES[mode])
    return float(_CONTEXT.multiply(count, step))

"""Small shared pieces of the sandbox's REST side: Kite's error answers and timestamps."""

from __future__ import annotations

import datetime
import math
import random
from collections.abc import Mapping
from typing import Any

from aio_trader._time import IST

__all__ = ["ApiError", "now_ist", "optional_float", "optional_int", "param", "seeded", "stamp"]


class ApiError(Exception):
    """An error answer: ``{"status": "error", "message": ..., "error_type": ...}`` + HTTP status."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    @classmethod
    def input(cls, message: str) -> ApiError:
        """400 InputException: missing or bad parameters."""
        return cls(400, "InputException", message)


def now_ist() -> datetime.datetime:
    return datetime.datetime.now(IST).replace(microsecond=0)


def stamp(moment: datetime.datetime | None = None) -> str:
    """Kite's ``YYYY-MM-DD HH:MM:SS`` (IST)."""
    return (moment or now_ist()).strftime("%Y-%m-%d %H:%M:%S")


def param(params: Mapping[str, Any], name: str, choices: tuple[str, ...] | None = None) -> str:
    """A required string parameter (optionally one of ``choices``), else 400."""
    value = params.get(name)
    if value is None or str(value).strip() == "":
        raise ApiError.input(f"Missing `{name}`.")
    text = str(value)
    if choices is not None and text not in choices:
        raise ApiError.input(f"Invalid `{name}`.")
    return text


def _number(params: Mapping[str, Any], name: str) -> float | None:
    """A finite non-negative number parameter, None when absent, else 400."""
    value = params.get(name)
    if value is None or str(value).strip() == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ApiError.input(f"Invalid `{name}`.") from None
    if not math.isfinite(number) or number < 0:
        raise ApiError.input(f"Invalid `{name}`.")
    return number


def optional_float(params: Mapping[str, Any], name: str, default: float = 0.0) -> float:
    """A finite non-negative number parameter, ``default`` when absent, else 400."""
    number = _number(params, name)
    return default if number is None else number


def optional_int(params: Mapping[str, Any], name: str, default: int = 0) -> int:
    """A non-negative integer parameter, ``default`` when absent, else 400."""
    number = _number(params, name)
    if number is None:
        return default
    if not number.is_integer():
        raise ApiError.input(f"Invalid `{name}`.")
    return int(number)


def seeded(seed: int) -> random.Random:
    """A deterministic generator for the simulation (never for secrets)."""
    return random.Random(seed)  # noqa: S311 - simulation data, not cryptography

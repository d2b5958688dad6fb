"""Small shared pieces of the sandbox's REST side: error answers, parameters, timestamps.

Broker-neutral: an ``ApiError`` carries an HTTP status and a neutral ``kind``; each dialect
renders it as its broker's error body (Kite: ``error_type``; Dhan: a ``DH-9xx`` code).
"""

from __future__ import annotations

import datetime
import json
import math
import random
import re
from collections.abc import Mapping
from typing import Any, Literal

from aio_trader._time import IST

__all__ = [
    "ApiError",
    "ErrorKind",
    "ascii_int",
    "load_json",
    "now_ist",
    "optional_float",
    "optional_int",
    "param",
    "seeded",
    "stamp",
]

_ASCII_DIGITS = re.compile(r"[0-9]{1,18}")


#: What went wrong, in the neutral categories a dialect maps to its broker's error codes.
ErrorKind = Literal[
    "input",  # missing or bad parameters (Kite: InputException)
    "session",  # bad or expired credentials (Kite: TokenException)
    "permission",  # not allowed, e.g. not a whitelisted static IP (Kite: PermissionException)
    "rate_limit",  # too many requests (Kite: NetworkException, HTTP 429)
    "unavailable",  # a broker-side failure, retried by clients (Kite: NetworkException, 5xx)
    "margin",  # insufficient funds (Kite: MarginException)
    "holding",  # insufficient holdings (Kite: HoldingException)
    "order",  # an order refused (Kite: OrderException)
    "data",  # a data request refused (Kite: DataException)
    "general",  # anything else (Kite: GeneralException)
]


class ApiError(Exception):
    """An error answer: an HTTP status, a neutral ``kind`` and a message.

    The dialect renders it as its broker's error body (``Dialect.error_response``).
    """

    def __init__(self, status: int, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind: ErrorKind = kind
        self.message = message

    @classmethod
    def input(cls, message: str) -> ApiError:
        """400, kind "input": missing or bad parameters."""
        return cls(400, "input", message)


def now_ist() -> datetime.datetime:
    return datetime.datetime.now(IST).replace(microsecond=0)


def stamp(moment: datetime.datetime | None = None) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (IST), the timestamps of the order engine's views."""
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


#: The largest number parameter accepted (prices, quantities, amounts): far above anything
#: real, small enough that products of them stay finite (and JSON can carry them).
MAX_NUMBER = 1e12


def _number(params: Mapping[str, Any], name: str) -> float | None:
    """A finite number parameter from 0 to ``MAX_NUMBER``, None when absent, else 400."""
    value = params.get(name)
    if value is None or str(value).strip() == "":
        return None
    if isinstance(value, bool) or (isinstance(value, str) and not value.isascii()):
        raise ApiError.input(f"Invalid `{name}`.")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ApiError.input(f"Invalid `{name}`.") from None
    if not math.isfinite(number) or not 0 <= number <= MAX_NUMBER:
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


def ascii_int(text: object) -> int | None:
    """``text`` as a non-negative integer if it is 1 to 18 ASCII digits, else None.

    The one parser for numeric path segments and parameters: ``str.isdigit`` also passes
    ``"²"`` or ``"١"``, which ``int`` then refuses (or reads as another number).
    """
    if isinstance(text, str) and _ASCII_DIGITS.fullmatch(text):
        return int(text)
    return None


#: Deepest nesting of arrays/objects accepted in a JSON body or message (Kite's bodies: 4).
JSON_MAX_DEPTH = 32


def load_json(data: str | bytes) -> Any:
    """``json.loads`` that raises ValueError, never RecursionError, for what it refuses:
    malformed JSON, ``NaN``/``Infinity``, and nesting deeper than ``JSON_MAX_DEPTH``."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not a JSON number")

    try:
        value = json.loads(data, parse_constant=refuse)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > JSON_MAX_DEPTH:
                raise ValueError("JSON nested too deeply")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


def seeded(seed: int) -> random.Random:
    """A deterministic generator for the simulation (never for secrets)."""
    return random.Random(seed)  # noqa: S311 - simulation data, not cryptography

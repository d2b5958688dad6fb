"""Lazy re-exports for the packages' ``__init__`` (PEP 562 module ``__getattr__``).

A package lists each public name with the private module that defines it; the module is
imported the first time the name is read, and the name is then cached in the package, so
importing a package loads nothing it does not use (``import aio_trader.kite.ticks`` loads
no HTTP stack).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["exports"]


def exports(
    package: str, names: Mapping[str, str], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose ``names`` map each public name to
    its defining module; ``public`` is the package's ``__all__``."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next read needs no lookup
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(public))

    return __getattr__, __dir__

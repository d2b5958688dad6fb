"""The curated API reference pages list their module's public names one by one, grouped
by topic: none missing, none stale, none twice."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

API = Path(__file__).parent.parent / "docs" / "api"

#: Curated page -> the module whose ``__all__`` it documents.
PAGES = {
    "models.md": "aio_trader.kite._models",
    "ticks.md": "aio_trader.kite.ticks",
    "constants.md": "aio_trader.kite.constants",
}


@pytest.mark.parametrize(("page", "module"), sorted(PAGES.items()))
def test_a_curated_page_documents_each_public_name_once(page: str, module: str) -> None:
    text = (API / page).read_text()
    documented = re.findall(rf"^::: {re.escape(module)}\.(\w+)$", text, re.MULTILINE)
    assert len(documented) == len(set(documented)), "a name documented twice"
    assert sorted(documented) == sorted(importlib.import_module(module).__all__)
    # the module itself only for its docstring, never rendered whole
    whole = re.findall(rf"^::: {re.escape(module)}\n((?:    .*\n)*)", text, re.MULTILINE)
    assert all("members: false" in options for options in whole)

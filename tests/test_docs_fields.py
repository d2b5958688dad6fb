"""The "fields at a glance" tables of the records' API pages list every record's fields
with their declared types, as the code has them (regenerate with
``AIO_TRADER_REGENERATE_DOCS=1 pytest tests/test_docs_fields.py``)."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import attrs
import pytest

API = Path(__file__).parent.parent / "docs" / "api"
PAGES = {"models.md": "aio_trader.kite._models", "ticks.md": "aio_trader.kite.ticks"}
START, END = "<!-- fields: generated, checked by tests/test_docs_fields.py -->", "<!-- /fields -->"


def fields_table(module_name: str) -> str:
    """A markdown table: one row per public attrs record of the module, its fields."""
    module = importlib.import_module(module_name)
    rows = ["| record | fields (declared type) |", "|---|---|"]
    for name in module.__all__:
        cls = getattr(module, name)
        if not (isinstance(cls, type) and attrs.has(cls)):
            continue
        fields = [
            f"`{field.name.lstrip('_')}` {field.type}".replace("|", "\\|")
            for field in attrs.fields(cls)
            if field.name != "extra" and not (field.name.startswith("_") and name == "Depth")
        ]
        if name == "Depth":
            fields = ["`buy` tuple[DepthLevel, ...]", "`sell` tuple[DepthLevel, ...]"]
        rows.append(f"| `{name}` | {', '.join(fields)} |")
    return "\n".join(rows)


@pytest.mark.parametrize(("page", "module"), sorted(PAGES.items()))
def test_fields_tables_match_the_records(page: str, module: str) -> None:
    path = API / page
    text = path.read_text()
    table = fields_table(module)
    block = re.search(rf"{re.escape(START)}\n\n(.*?)\n\n{re.escape(END)}", text, re.DOTALL)
    if os.environ.get("AIO_TRADER_REGENERATE_DOCS") and block is not None:
        path.write_text(text[: block.start(1)] + table + text[block.end(1) :])
        return
    assert block is not None, f"{page}: no fields table between the markers"
    assert block.group(1) == table, f"{page}: stale; regenerate (see the module docstring)"

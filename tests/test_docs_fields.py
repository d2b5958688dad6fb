"""The "fields at a glance" tables of the records' API pages list every record's fields
with their declared types, as the code has them (regenerate with
``AIO_TRADER_REGENERATE_DOCS=1 pytest tests/test_docs_fields.py``).

A page holds one table per module, in the order given below: Kite's records on two pages,
Dhan's feed records then its REST records on one."""

from __future__ import annotations

import importlib
import os
import re
import typing
from pathlib import Path

import attrs
import pytest

API = Path(__file__).parent.parent / "docs" / "api"
PAGES = {
    "models.md": ("aio_trader.kite._models",),
    "ticks.md": ("aio_trader.kite.ticks",),
    "dhan.md": ("aio_trader.dhan.ticks", "aio_trader.dhan._models"),
}
START, END = "<!-- fields: generated, checked by tests/test_docs_fields.py -->", "<!-- /fields -->"
BLOCK = re.compile(rf"{re.escape(START)}\n\n(.*?)\n\n{re.escape(END)}", re.DOTALL)


def _type_name(annotation: object) -> str:
    """A NamedTuple's annotation as attrs prints a field's string type."""
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)


def record_fields(name: str, cls: type) -> list[str] | None:
    """``name type`` of each field of an attrs record or a NamedTuple; None for others."""
    if attrs.has(cls):
        if name == "Depth":  # the fields are private storage; the sides are properties
            return ["`buy` tuple[DepthLevel, ...]", "`sell` tuple[DepthLevel, ...]"]
        return [
            f"`{field.name.lstrip('_')}` {field.type}"
            for field in attrs.fields(cls)
            if field.name != "extra"
        ]
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):  # a NamedTuple
        hints = typing.get_type_hints(cls)
        return [f"`{field}` {_type_name(hints[field])}" for field in cls._fields]
    return None


def fields_table(module_name: str) -> str:
    """A markdown table: one row per public record of the module (attrs or NamedTuple),
    its fields."""
    module = importlib.import_module(module_name)
    rows = ["| record | fields (declared type) |", "|---|---|"]
    for name in module.__all__:
        cls = getattr(module, name)
        if not isinstance(cls, type) or (fields := record_fields(name, cls)) is None:
            continue
        rows.append(f"| `{name}` | {', '.join(fields).replace('|', chr(92) + '|')} |")
    return "\n".join(rows)


@pytest.mark.parametrize(("page", "modules"), sorted(PAGES.items()))
def test_fields_tables_match_the_records(page: str, modules: tuple[str, ...]) -> None:
    path = API / page
    text = path.read_text()
    tables = [fields_table(module) for module in modules]
    blocks = list(BLOCK.finditer(text))
    if os.environ.get("AIO_TRADER_REGENERATE_DOCS") and len(blocks) == len(tables):
        for block, table in reversed(list(zip(blocks, tables, strict=True))):
            text = text[: block.start(1)] + table + text[block.end(1) :]
        path.write_text(text)
        return
    assert len(blocks) == len(tables), f"{page}: {len(tables)} fields tables expected"
    for block, table, module in zip(blocks, tables, modules, strict=True):
        assert block.group(1) == table, f"{page} ({module}): stale; regenerate (see the docstring)"

"""Records to DataFrames: ``to_pandas(records)`` and ``to_polars(records)``.

pandas and polars are optional extras, imported only when these are called; a missing
one raises ``ImportError`` naming the extra to install. One column per declared field,
in declaration order (``extra`` is left out); nested records become dicts, tuples
become lists. Datetimes keep their IST offset (pandas: ``datetime64[ns, UTC+05:30]``;
polars: ``Datetime("us", "Asia/Kolkata")``, the same +05:30), dates stay dates.

Meant for flat records (candles, instruments, MF instruments, orders, holdings ...)::

    candles = await kite.historical_data(408065, start, end, "minute")
    frame = to_pandas(candles).set_index("date")
"""

from __future__ import annotations

import datetime
import importlib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from aio_trader._time import IST
from aio_trader.kite._models import Record

__all__ = ["to_pandas", "to_polars"]


def _require(module: str, extra: str) -> types.ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{module} is not installed; install it with: pip install 'aio-trader[{extra}]'"
        ) from exc


def _scalar(annotation: Any) -> Any:
    """The one non-None member of ``X | None`` (or the annotation itself)."""
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(members) == 1:
        return members[0]
    return annotation


def _columns(
    records: Sequence[Record], record_type: type[Record] | None
) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Column name -> values (records in order), and each column's declared Python type."""
    cls = record_type or (type(records[0]) if records else None)
    if cls is None:
        return {}, {}
    hints = typing.get_type_hints(cls)
    columns: dict[str, list[Any]] = {}
    kinds: dict[str, Any] = {}
    for field in attrs.fields(cls):
        name = field.name
        if name == "extra":
            continue
        values = [getattr(record, name) for record in records]
        kinds[name] = kind = _scalar(hints[name])
        if kind not in _POLARS_TYPES:  # nested records, tuples, mappings
            values = [_plain(v) for v in values]
        columns[name] = values
    return columns, kinds


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


#: Declared Python type -> polars dtype name (and its arguments).
_POLARS_TYPES: dict[Any, tuple[str, tuple[Any, ...]]] = {
    int: ("Int64", ()),
    float: ("Float64", ()),
    str: ("String", ()),
    bool: ("Boolean", ()),
    datetime.date: ("Date", ()),
    datetime.datetime: ("Datetime", ("us", "UTC")),
}


def to_pandas(records: Iterable[Record], record_type: type[Record] | None = None) -> Any:
    """A ``pandas.DataFrame`` with one row per record.

    ``record_type`` gives the columns when ``records`` may be empty. Raises
    ``ImportError`` (naming ``aio-trader[pandas]``) when pandas is not installed.
    """
    pandas = _require("pandas", "pandas")
    items = list(records)
    columns, kinds = _columns(items, record_type)
    frame = pandas.DataFrame(columns)
    for name, kind in kinds.items():
        if kind is datetime.datetime and len(frame):
            frame[name] = pandas.to_datetime(frame[name], utc=True).dt.tz_convert(IST)
    return frame


def to_polars(records: Iterable[Record], record_type: type[Record] | None = None) -> Any:
    """A ``polars.DataFrame`` with one row per record.

    ``record_type`` gives the columns when ``records`` may be empty. Raises
    ``ImportError`` (naming ``aio-trader[polars]``) when polars is not installed.
    """
    polars = _require("polars", "polars")
    items = list(records)
    columns, kinds = _columns(items, record_type)
    data: dict[str, Any] = {}
    for name, values in columns.items():
        kind = kinds[name]
        if kind not in _POLARS_TYPES:  # nested: let polars infer a struct / list type
            data[name] = polars.Series(name, values, strict=False)
            continue
        dtype_name, dtype_args = _POLARS_TYPES[kind]
        dtype = getattr(polars, dtype_name)(*dtype_args)
        if kind is datetime.datetime:
            # polars wants a named zone (its own database, no tzdata needed); India has
            # had no DST since 1945, so Asia/Kolkata is exactly our fixed +05:30.
            utc = [None if v is None else v.astimezone(datetime.timezone.utc) for v in values]
            series = polars.Series(name, utc, dtype=dtype)
            data[name] = series.dt.convert_time_zone("Asia/Kolkata")
        else:
            data[name] = polars.Series(name, values, dtype=dtype)
    return polars.DataFrame(data)

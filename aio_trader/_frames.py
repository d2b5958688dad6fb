"""Records to DataFrames: ``to_pandas(records)`` and ``to_polars(records)``, for the
records of every broker (any attrs record: Kite's, Dhan's, the neutral ones).

pandas and polars are optional extras, imported only when these are called; a missing
one raises ``ImportError`` naming the extra to install. One column per declared field,
in declaration order (``extra`` is left out); nested records become dicts, tuples
become lists. Both libraries give the same columns with the same types, also for an
empty list (with ``record_type``):

| declared | pandas | polars |
|---|---|---|
| `datetime` | `datetime64[us, Asia/Kolkata]` | `Datetime("us", "Asia/Kolkata")` |
| `int` | `int64` (`Int64` if optional) | `Int64` |
| `float` | `float64` (`None` is NaN) | `Float64` |
| `bool` | `bool` (`boolean` if optional) | `Boolean` |
| `str` | `str` (pandas 2: `object`) | `String` |
| `date` | `object` of `datetime.date` | `Date` |

India has had no daylight saving since 1945, so ``Asia/Kolkata`` is exactly +05:30.

Meant for flat records (candles, instruments, MF instruments, orders, holdings ...)::

    candles = await kite.historical_data(408065, start, end, "minute")
    frame = to_pandas(candles).set_index("date")

    candles = await dhan.intraday_candles("1333", "NSE_EQ", "EQUITY", start, end)
    frame = to_polars(candles)

Both are importable from ``aio_trader.kite`` and from ``aio_trader.dhan`` (the same
functions).

This module imports no broker package.
"""

from __future__ import annotations

import datetime
import importlib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from aio_trader._records import Record

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
    records: Sequence[attrs.AttrsInstance], record_type: type[attrs.AttrsInstance] | None
) -> tuple[dict[str, list[Any]], dict[str, Any], set[str]]:
    """Column name -> values (records in order), each column's declared Python type, and
    the columns declared optional (``X | None``)."""
    cls = record_type or (type(records[0]) if records else None)
    if cls is None:
        return {}, {}, set()
    hints = typing.get_type_hints(cls)
    columns: dict[str, list[Any]] = {}
    kinds: dict[str, Any] = {}
    optional: set[str] = set()
    for field in attrs.fields(cls):
        name = field.name
        if name == "extra":
            continue
        values = [getattr(record, name) for record in records]
        kinds[name] = kind = _scalar(hints[name])
        if type(None) in typing.get_args(hints[name]):
            optional.add(name)
        if kind not in _POLARS_TYPES:  # nested records, tuples, mappings
            values = [_plain(v) for v in values]
        columns[name] = values
    return columns, kinds, optional


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if attrs.has(type(value)):  # a nested record that is not a REST record
        return attrs.asdict(value, recurse=True)
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


#: Declared Python type -> pandas dtype; _PANDAS_OPTIONAL: the one for ``X | None``.
_PANDAS_TYPES: dict[Any, str] = {
    int: "int64",
    float: "float64",
    str: "str",
    bool: "bool",
    datetime.date: "object",
}
_PANDAS_OPTIONAL = {"int64": "Int64", "bool": "boolean"}

#: The zone both libraries name (polars has its own database; pandas uses zoneinfo).
KOLKATA = "Asia/Kolkata"


def to_pandas(
    records: Iterable[attrs.AttrsInstance], record_type: type[attrs.AttrsInstance] | None = None
) -> Any:
    """A ``pandas.DataFrame`` with one row per record.

    ``record_type`` gives the columns when ``records`` may be empty. Raises
    ``ImportError`` (naming ``aio-trader[pandas]``) when pandas is not installed.
    """
    pandas = _require("pandas", "pandas")
    items = list(records)
    columns, kinds, optional = _columns(items, record_type)
    data: dict[str, Any] = {}
    for name, values in columns.items():
        kind = kinds[name]
        if kind is datetime.datetime:
            utc = pandas.to_datetime(pandas.Series(values, dtype=object), utc=True)
            data[name] = utc.dt.tz_convert(KOLKATA).dt.as_unit("us")
            continue
        dtype = _PANDAS_TYPES.get(kind, "object")
        if name in optional or any(value is None for value in values):
            dtype = _PANDAS_OPTIONAL.get(dtype, dtype)
        data[name] = pandas.Series(values, dtype=dtype, name=name)
    return pandas.DataFrame(data)


def to_polars(
    records: Iterable[attrs.AttrsInstance], record_type: type[attrs.AttrsInstance] | None = None
) -> Any:
    """A ``polars.DataFrame`` with one row per record.

    ``record_type`` gives the columns when ``records`` may be empty. Raises
    ``ImportError`` (naming ``aio-trader[polars]``) when polars is not installed.
    """
    polars = _require("polars", "polars")
    items = list(records)
    columns, kinds, _ = _columns(items, record_type)
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
            data[name] = series.dt.convert_time_zone(KOLKATA)
        else:
            data[name] = polars.Series(name, values, dtype=dtype)
    return polars.DataFrame(data)

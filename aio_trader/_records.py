"""The record conversion engine every broker's REST records stand on: :class:`Record`.

A broker's record is a frozen, slotted attrs class deriving (through the broker's own
``Record`` base) from :class:`Record`: it declares its fields with their types and has
no parsing code. ``Record.from_data(data)`` turns one JSON object into the record and
``record.to_dict()`` turns it back, by converters compiled once per class from its
annotations (``str``, ``int``, ``float``, ``bool``, the broker's date types, nested
records, ``tuple[X, ...]``, ``Mapping[str, X]``, optional ``X | None``).

The broker's base says what is its own, as class variables:

- ``_scalars``: ``{type: (load, dump)}``: how its wire writes each scalar type (Kite:
  ``YYYY-MM-DD HH:MM:SS`` in IST for ``datetime.datetime``); :data:`SCALARS` holds the
  four every broker shares;
- ``_malformed``: the error raised for an answer that is not what the record needs
  (Kite: ``DataException``);
- ``_wire``: the broker's name, in the warning logged for a value that cannot be
  converted.

Conventions, the same for every record: unknown fields are kept in ``record.extra`` (a
read-only mapping, never in a repr, merged back by ``to_dict()``); a missing optional
field is ``None``; a value that cannot be converted does not raise: the field becomes
``None``, the raw value is kept in ``extra``, the skip is logged (field name and value
type, never the value) and counted (:func:`conversion_failures`); a ``data`` that is
not a JSON object, or a required field missing, raises ``_malformed``. A field's
metadata may name its own dumper (``attrs.field(metadata={DUMP: fn})``).

This module imports no broker package.
"""

from __future__ import annotations

import logging
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import attrs

from aio_trader.errors import BrokerError, BrokerUnavailable

__all__ = [
    "DUMP",
    "EMPTY",
    "FIELD_ERRORS",
    "SCALARS",
    "Dumper",
    "Loader",
    "Record",
    "conversion_failures",
    "load_bool",
    "load_float",
    "load_int",
    "load_str",
    "load_with",
    "plan",
]

_log = logging.getLogger(__name__)

R = TypeVar("R", bound="Record")

#: The empty ``extra`` every record without unknown fields shares.
EMPTY: Mapping[str, Any] = types.MappingProxyType({})
_failures = 0


def conversion_failures() -> int:
    """How many field values could not be converted (and were kept in ``extra``) so far."""
    return _failures


# -- scalar converters (wire -> Python) -------------------------------------------------

Loader = Callable[[Any], Any]
Dumper = Callable[[Any], Any]


def load_str(value: Any) -> str:
    """A string (a number on the wire becomes its text)."""
    if type(value) is str:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError(type(value).__name__)


def load_int(value: Any) -> int | None:
    """An int from an int, an integral float or a numeric string (``""``: None); a
    fractional value raises (an int field never truncates)."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise TypeError("bool")
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError("fractional")
    if isinstance(value, str):
        if not value:
            return None
        try:
            return int(value)
        except ValueError:
            number = float(value)
            if number.is_integer():
                return int(number)
            raise
    raise TypeError(type(value).__name__)


def load_float(value: Any) -> float | None:
    """A float from a number or a numeric string (``""``: None)."""
    if type(value) is float:
        return value
    if isinstance(value, bool):
        raise TypeError("bool")
    if isinstance(value, int):
        return float(value)
    if isinstance(value, str):
        return float(value) if value else None
    raise TypeError(type(value).__name__)


#: The words a boolean field accepts.
BOOL_WORDS = {"1": True, "0": False, "true": True, "false": False, "True": True, "False": False}


def load_bool(value: Any) -> bool:
    """A bool from a bool, 0/1, or one of :data:`BOOL_WORDS`."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return BOOL_WORDS[value]  # KeyError: not a boolean word
    raise TypeError(type(value).__name__)


def load_with(parse: Callable[[str], Any]) -> Loader:
    """A loader applying ``parse`` to a string (anything else is a ``TypeError``)."""

    def load(value: Any) -> Any:
        if isinstance(value, str):
            return parse(value)
        raise TypeError(type(value).__name__)

    return load


#: The scalar types every broker's wire shares; a broker adds its date types.
SCALARS: Mapping[Any, tuple[Loader, Dumper | None]] = types.MappingProxyType(
    {
        str: (load_str, None),
        int: (load_int, None),
        float: (load_float, None),
        bool: (load_bool, None),
    }
)

#: Field metadata key: this field's own dumper (e.g. a date in another wire format).
DUMP = "aio_trader.dump"

#: The exceptions a field converter may raise for a bad value (the field is then skipped).
FIELD_ERRORS = (TypeError, ValueError, KeyError, OverflowError, BrokerError)


# -- the compiled converters of a class --------------------------------------------------


def _converters(
    tp: Any, scalars: Mapping[Any, tuple[Loader, Dumper | None]]
) -> tuple[Loader | None, Dumper | None]:
    """The (load, dump) pair for an annotation; None means 'as is'."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"unsupported union {tp!r}")
        return _converters(rest[0], scalars)
    if tp is Any:
        return None, None
    if tp in scalars:
        return scalars[tp]
    if isinstance(tp, type) and issubclass(tp, Record):
        return tp._load_nested, _dump_record
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item_load, item_dump = _converters(args[0], scalars)
        return _tuple_loader(item_load), _list_dumper(item_dump)
    if origin in (dict, Mapping) and args and args[0] is str:
        value_load, value_dump = _converters(args[1], scalars)
        return _mapping_loader(value_load), _dict_dumper(value_dump)
    raise TypeError(f"unsupported field type {tp!r}")


def _dump_record(value: Record) -> dict[str, Any]:
    return value.to_dict()


def _tuple_loader(item: Loader | None) -> Loader:
    def load(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise TypeError(type(value).__name__)
        return tuple(value) if item is None else tuple(map(item, value))

    return load


def _list_dumper(item: Dumper | None) -> Dumper:
    def dump(value: Iterable[Any]) -> list[Any]:
        return list(value) if item is None else [None if v is None else item(v) for v in value]

    return dump


def _mapping_loader(item: Loader | None) -> Loader:
    def load(value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise TypeError(type(value).__name__)
        if item is None:
            return dict(value)
        return {k: None if v is None else item(v) for k, v in value.items()}

    return load


def _dict_dumper(item: Dumper | None) -> Dumper:
    def dump(value: Mapping[str, Any]) -> dict[str, Any]:
        if item is None:
            return dict(value)
        return {k: None if v is None else item(v) for k, v in value.items()}

    return dump


@attrs.frozen
class Plan:
    """A record class's compiled converters: built once per class from its annotations."""

    loaders: tuple[tuple[str, Loader | None], ...]
    dumpers: tuple[tuple[str, Dumper | None], ...]
    names: frozenset[str]
    required: frozenset[str]


def _build_plan(cls: type[Record]) -> Plan:
    hints = typing.get_type_hints(cls)
    loaders: list[tuple[str, Loader | None]] = []
    dumpers: list[tuple[str, Dumper | None]] = []
    required: set[str] = set()
    for field in attrs.fields(cls):
        if field.name == "extra":
            continue
        load, dump = _converters(hints[field.name], cls._scalars)
        loaders.append((field.name, load))
        dumpers.append((field.name, field.metadata.get(DUMP, dump)))
        if field.default is attrs.NOTHING:
            required.add(field.name)
    names = frozenset(name for name, _ in loaders)
    return Plan(tuple(loaders), tuple(dumpers), names, frozenset(required))


def plan(cls: type[Record]) -> Plan:
    """``cls``'s compiled converters (built on first use, then kept on the class)."""
    compiled = cls.__dict__.get("_plan_cache")
    if compiled is None:
        compiled = _build_plan(cls)
        type.__setattr__(cls, "_plan_cache", compiled)
    return compiled


def _field_failed(cls: type[Record], name: str, value: Any) -> None:
    global _failures
    _failures += 1
    _log.warning(
        "%s field %s.%s: could not convert a %s value; kept it in .extra",
        cls._wire,
        cls.__name__,
        name,
        type(value).__name__,
    )


# -- the base --------------------------------------------------------------------------------


@attrs.frozen
class Record:
    """Base of every broker's REST record: ``from_data`` (wire -> record), ``to_dict`` (back).

    ``extra`` holds the fields the broker sent that the record does not declare (and the
    raw value of any field that could not be converted). It is keyword-only, never in
    the repr, and not part of the hash.
    """

    #: The broker's scalar converters (see the module docstring).
    _scalars: ClassVar[Mapping[Any, tuple[Loader, Dumper | None]]] = SCALARS
    #: The error for an answer that is not what the record needs.
    _malformed: ClassVar[type[BrokerError]] = BrokerUnavailable
    #: The broker's name, in log messages.
    _wire: ClassVar[str] = "REST"
    _plan_cache: ClassVar[Plan | None] = None

    extra: Mapping[str, Any] = attrs.field(default=EMPTY, kw_only=True, repr=False, hash=False)

    @classmethod
    def _bad(cls, message: str) -> BrokerError:
        return cls._malformed(message, status_code=200)

    @classmethod
    def from_data(cls: type[R], data: Mapping[str, Any]) -> R:
        """The record for one JSON object of an answer (its payload).

        Raises ``_malformed`` when ``data`` is not an object or a required field is
        missing; never for an unknown or unconvertible field.
        """
        if not isinstance(data, Mapping):
            raise cls._bad(f"expected a JSON object for {cls.__name__}, got {type(data).__name__}")
        compiled = plan(cls)
        kwargs: dict[str, Any] = {}
        failed: dict[str, Any] | None = None
        get = data.get
        for name, load in compiled.loaders:
            value = get(name)
            if value is not None and load is not None:
                try:
                    value = load(value)
                except FIELD_ERRORS:
                    _field_failed(cls, name, value)
                    failed = failed or {}
                    failed[name] = value
                    value = None
            kwargs[name] = value
        for name in compiled.required:
            if kwargs[name] is None:
                raise cls._bad(f"{cls.__name__}: required field {name!r} is missing or invalid")
        if failed or not compiled.names.issuperset(data.keys()):
            extra = {k: v for k, v in data.items() if k not in compiled.names}
            if failed:
                extra.update(failed)
            kwargs["extra"] = extra
        return cls(**kwargs)

    @classmethod
    def _load_nested(cls: type[R], data: Any) -> R:
        if not isinstance(data, Mapping):
            raise TypeError(type(data).__name__)
        return cls.from_data(data)

    @classmethod
    def from_list(cls: type[R], data: Sequence[Mapping[str, Any]]) -> list[R]:
        """Records for a JSON array of objects (an order book, holdings ...)."""
        if not isinstance(data, list | tuple):
            raise cls._bad(f"expected a JSON array of {cls.__name__}, got {type(data).__name__}")
        return [cls.from_data(item) for item in data]

    @classmethod
    def from_map(cls: type[R], data: Mapping[str, Mapping[str, Any]]) -> dict[str, R]:
        """Records keyed like the answer (``{"NSE:INFY": {...}}``)."""
        if not isinstance(data, Mapping):
            raise cls._bad(f"expected a JSON object of {cls.__name__}, got {type(data).__name__}")
        return {key: cls.from_data(item) for key, item in data.items()}

    def to_dict(self) -> dict[str, Any]:
        """This record in the broker's JSON shape (``extra`` merged back).

        Every declared field is present: one that was absent comes back as ``None``.
        """
        out: dict[str, Any] = {}
        for name, dump in plan(type(self)).dumpers:
            value = getattr(self, name)
            out[name] = value if value is None or dump is None else dump(value)
        out.update(self.extra)
        return out

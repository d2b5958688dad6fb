"""Fast construction of frozen attrs records: the one interpreter trick of the library, here.

Why: a frozen attrs record refuses attribute stores, so its ``__init__`` fills each slot
through ``object.__setattr__``, about 0.1 us a field on CPython 3.11: building a full
tick's 14 fields that way would cost more than all the rest of its decoding. Instead the
decoder fills a *mutable twin* (a plain class with the record's base classes and exactly
its ``__slots__``) with ordinary attribute stores, then sets the instance's ``__class__``
to the record::

    tick = mutable_twin(FullTick)()  # (made once) a plain instance, no __init__ to run
    tick.last_price = 101.25        # an ordinary slot store
    tick.__class__ = FullTick       # now a FullTick, frozen like any other

CPython allows that assignment when both classes have the same base and the same slot
names (hence the same memory layout): the documented rule of ``__class__`` assignment
("only for classes with the same layout"). The result is an ordinary record: equality,
hashing, repr, pickling and :func:`attrs.evolve` cannot tell it from a constructed one.

:func:`mutable_twin` checks the assignment works when it makes the twin (a ``TypeError``
at import, not a wrong record later); ``tests/test_codec_twins.py`` fails if an
interpreter stops allowing it.

:func:`build_columns` applies the same construction to a whole CSV dump column by
column (C-level ``map`` over each slot's descriptor on the twin), for the instrument
lists: a 100,000-row dump is 1.3 million fields.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any, TypeVar

import attrs

__all__ = ["build_columns", "mutable_twin"]

T = TypeVar("T")


def mutable_twin(cls: type) -> type:
    """A plain class with ``cls``'s bases and slots, whose instances may become ``cls``'s.

    ``cls`` must be a slotted class (``attrs.frozen`` makes one). Raises ``TypeError``
    when it is not, or when this interpreter refuses the ``__class__`` assignment.
    """
    slots = cls.__dict__.get("__slots__")
    if slots is None or "__dict__" in slots:
        raise TypeError(f"{cls.__name__} is not a slotted class")
    twin = type(f"_{cls.__name__}Twin", cls.__bases__, {"__slots__": tuple(slots)})
    probe = twin()
    try:
        object.__setattr__(probe, "__class__", cls)  # a frozen base's __setattr__ refuses
    except TypeError as exc:
        raise TypeError(
            f"this interpreter cannot build {cls.__name__} from a twin: {exc}"
        ) from None
    return twin


def build_columns(
    cls: type[T], twin: type, columns: Mapping[str, Sequence[Any]], count: int
) -> list[T]:
    """``count`` records of ``cls`` (made by :func:`mutable_twin`), field ``name`` of the
    i-th record being ``columns[name][i]``. Skips attrs validators and converters, so
    ``cls`` must have none; every field must have a column of exactly ``count`` values
    (``ValueError`` otherwise: a record must never miss a field).
    """
    fields = attrs.fields(cls)  # type: ignore[arg-type]
    if {field.name for field in fields} != set(columns):
        raise ValueError(f"columns {sorted(columns)} are not the fields of {cls.__name__}")
    if any(field.validator is not None or field.converter is not None for field in fields):
        raise ValueError(f"{cls.__name__} has validators or converters")
    if any(len(column) != count for column in columns.values()):
        raise ValueError("every column needs one value per record")
    records: list[Any] = list(map(object.__new__, repeat(twin, count)))  # no __init__ runs
    for name, column in columns.items():
        deque(map(getattr(twin, name).__set__, records, column), maxlen=0)
    deque(map(object.__setattr__, records, repeat("__class__"), repeat(cls)), maxlen=0)
    return records

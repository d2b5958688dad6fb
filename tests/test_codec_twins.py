"""The codec's one interpreter trick (aio_trader/_twins.py): a record built from a
mutable twin is an ordinary record. These tests fail if an interpreter stops allowing the
``__class__`` assignment between same-layout classes, or if a record's layout changes
so that its twin no longer matches it."""

from __future__ import annotations

import copy
import datetime
import pickle

import attrs
import pytest

from aio_trader._twins import build_columns, mutable_twin
from aio_trader.kite import ticks as codec
from aio_trader.kite.ticks import (
    Depth,
    DepthLevel,
    FullTick,
    IndexFullTick,
    IndexQuoteTick,
    LtpTick,
    Ohlc,
    QuoteTick,
)

RECORDS = [Ohlc, DepthLevel, Depth, LtpTick, IndexQuoteTick, IndexFullTick, QuoteTick, FullTick]


@pytest.mark.parametrize("cls", [cls for cls in RECORDS if cls is not Depth])
def test_a_twin_becomes_an_ordinary_record(cls: type) -> None:
    fields = attrs.fields(cls)
    values = {f.name: (i + 1) * 3 for i, f in enumerate(fields)}
    built = cls(**values)
    twin = mutable_twin(cls)
    assert twin.__slots__ == cls.__slots__  # type: ignore[attr-defined]
    assert twin.__basicsize__ == cls.__basicsize__
    record = twin()
    for name, value in values.items():
        setattr(record, name, value)
    record.__class__ = cls
    assert type(record) is cls
    assert record == built
    assert hash(record) == hash(built)
    assert repr(record) == repr(built)
    assert pickle.loads(pickle.dumps(record)) == built
    assert copy.copy(record) == built
    assert attrs.evolve(record) == built
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(record, fields[0].name, 0)


def test_a_depth_twin_with_bytes_becomes_an_ordinary_depth() -> None:
    """How ``_full`` makes a decoded depth: its bytes and divisor, the sides built on read."""
    level = DepthLevel(quantity=7, price=12.5, orders=3)
    built = Depth(buy=(level,) * 5, sell=(level,) * 5)
    record = mutable_twin(Depth)()
    record._raw = codec._DEPTH_BYTES.pack(*([7, 1250, 3] * 10))
    record._divisor = 100.0
    record.__class__ = Depth
    assert type(record) is Depth
    assert record == built
    assert hash(record) == hash(built)
    assert repr(record) == repr(built)
    assert pickle.loads(pickle.dumps(record)) == built
    assert copy.copy(record) == copy.deepcopy(record) == built
    assert attrs.evolve(record) == built
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.buy = ()  # type: ignore[misc]


def test_the_decoder_twins_match_their_records() -> None:
    assert codec._FullTwin.__slots__ == FullTick.__slots__  # type: ignore[attr-defined]
    for twin, cls in [
        (codec._OhlcTwin, Ohlc),
        (codec._LevelTwin, DepthLevel),
        (codec._DepthTwin, Depth),
        (codec._LtpTwin, LtpTick),
        (codec._IndexQuoteTwin, IndexQuoteTick),
        (codec._IndexFullTwin, IndexFullTick),
        (codec._QuoteTwin, QuoteTick),
        (codec._FullTwin, FullTick),
    ]:
        assert twin.__bases__ == cls.__bases__
        assert twin.__slots__ == cls.__slots__  # type: ignore[attr-defined]


def test_twin_refuses_a_class_without_slots() -> None:
    @attrs.frozen(slots=False)
    class Plain:
        a: int

    with pytest.raises(TypeError, match="not a slotted class"):
        mutable_twin(Plain)


def test_twin_of_a_class_whose_slots_differ_is_refused_by_the_interpreter() -> None:
    """What the trick relies on: CPython refuses ``__class__`` across layouts."""

    @attrs.frozen(weakref_slot=False)
    class A:
        a: int

    @attrs.frozen(weakref_slot=False)
    class B:
        a: int
        b: int

    record = mutable_twin(A)()
    with pytest.raises(TypeError):
        record.__class__ = B


def test_twin_checks_the_assignment_when_it_is_made() -> None:
    """The probe in ``mutable_twin``: a class the interpreter will not swap to is refused
    up front (CPython 3.11 refuses a ``__weakref__`` slot placed after the fields, attrs'
    default), and a twin it does make always works."""

    @attrs.frozen  # weakref_slot=True
    class Weak:
        a: int

    refusals: list[str] = []
    try:
        twin = mutable_twin(Weak)
    except TypeError as exc:
        refusals.append(str(exc))
    if refusals:
        assert "cannot build Weak from a twin" in refusals[0]
    else:
        record = twin()
        record.a = 1
        record.__class__ = Weak
        assert record == Weak(1)


def test_build_columns_makes_ordinary_records() -> None:
    from aio_trader.kite._models import Instrument, _twin

    rows = [
        (408065, 1594, "INFY", "INFOSYS", 0.0, 0.0, 0.05, 1, "EQ", "NSE", "NSE", None),
        (12073986, 47164, "BANKNIFTY", "", 2528.4, 23500.0, 0.05, 40, "CE", "NFO-OPT", "NFO",
         datetime.date(2018, 1, 25)),
    ]  # fmt: skip
    names = [f.name for f in attrs.fields(Instrument) if f.name != "extra"]
    columns: dict[str, tuple[object, ...]] = dict(zip(names, zip(*rows, strict=True), strict=True))
    columns["extra"] = (Instrument(*rows[0]).extra,) * 2
    built = build_columns(Instrument, _twin(Instrument), columns, 2)
    assert built == [Instrument(*row) for row in rows]
    assert [type(record) for record in built] == [Instrument, Instrument]
    assert copy.copy(built[1]) == built[1]
    assert attrs.evolve(built[1], lot_size=50).lot_size == 50
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built[0].lot_size = 2  # type: ignore[misc]


def test_build_columns_refuses_incomplete_columns() -> None:
    from aio_trader.kite._models import Instrument, _twin

    twin = _twin(Instrument)
    names = [f.name for f in attrs.fields(Instrument)]
    full = {name: (0,) for name in names}
    with pytest.raises(ValueError, match="not the fields"):
        build_columns(Instrument, twin, {k: v for k, v in full.items() if k != "expiry"}, 1)
    with pytest.raises(ValueError, match="one value per record"):
        build_columns(Instrument, twin, {**full, "expiry": ()}, 1)

    @attrs.frozen(weakref_slot=False)
    class Checked:
        a: int = attrs.field(validator=attrs.validators.instance_of(int))

    with pytest.raises(ValueError, match="validators"):
        build_columns(Checked, mutable_twin(Checked), {"a": ("x",)}, 1)

"""Fast construction of frozen attrs records: the codec's one interpreter trick, kept here.

Why: a frozen attrs record refuses attribute stores, so its ``__init__`` fills each slot
through ``object.__setattr__``, about 0.1 us a field on CPython 3.11: building a full
tick's 14 fields that way would cost more than all the rest of its decoding. Instead the
decoder fills a *mutable twin* (a plain class with the record's base classes and exactly
its ``__slots__``) with ordinary attribute stores, then sets the instance's ``__class__``
to the record::

    tick = _FullTickTwin()          # object.__new__, no __init__ to run
    tick.last_price = 101.25        # an ordinary slot store
    tick.__class__ = FullTick       # now a FullTick, frozen like any other

CPython allows that assignment when both classes have the same base and the same slot
names (hence the same memory layout): the documented rule of ``__class__`` assignment
("only for classes with the same layout"). The result is an ordinary record: equality,
hashing, repr, pickling and :func:`attrs.evolve` cannot tell it from a constructed one.

:func:`mutable_twin` checks the assignment works when it makes the twin (a ``TypeError``
at import, not a wrong record later); ``tests/test_codec_twins.py`` fails if an
interpreter stops allowing it.
"""

from __future__ import annotations

__all__ = ["mutable_twin"]


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
        probe.__class__ = cls
    except TypeError as exc:
        raise TypeError(
            f"this interpreter cannot build {cls.__name__} from a twin: {exc}"
        ) from None
    return twin

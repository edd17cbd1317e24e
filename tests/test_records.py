"""``vrclog_cli.records`` pinned to its reference, ``dataclasses``: the same class declared
both ways behaves the same (construction, defaults and factories, repr, ==, hash,
replace, frozen assignment, pickling, ``__match_args__``)."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrclog_cli import records

VALUES = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=3), st.booleans(),
                   st.tuples(st.integers(0, 3)))
NAMES = st.lists(st.sampled_from(["a", "b", "c", "d", "e", "_f"]), min_size=0, max_size=6, unique=True)


@st.composite
def declarations(draw: st.DrawFn) -> tuple[list[tuple[str, str, Any, bool, bool]], dict[str, bool]]:
    """Fields as (name, how, default, repr, compare): required ones first, then defaults
    and factories, as both mechanisms require; and the class's options."""
    names = draw(NAMES)
    required = draw(st.integers(0, len(names)))
    fields = []
    for i, name in enumerate(names):
        how = "required" if i < required else draw(st.sampled_from(["plain", "field", "factory"]))
        fields.append((name, how, draw(VALUES), draw(st.booleans()), draw(st.booleans())))
    options = {"frozen": draw(st.booleans()), "slots": draw(st.booleans()), "eq": draw(st.booleans())}
    return fields, options


def build(decorate: Any, field: Any, fields: list[tuple[str, str, Any, bool, bool]],
          options: dict[str, bool]) -> type:
    body: dict[str, Any] = {"__annotations__": {name: "Any" for name, *_ in fields},
                            "__module__": __name__, "__qualname__": "Rec", "limit": 3}
    body["__annotations__"]["limit"] = "ClassVar[int]"
    for name, how, default, shown, compared in fields:
        if how == "plain":
            body[name] = default
        elif how == "field":
            body[name] = field(default=default, repr=shown, compare=compared)
        elif how == "factory":
            body[name] = field(default_factory=lambda d=default: [d], repr=shown, compare=compared)
    cls = type("Rec", (), body)
    return decorate(**options)(cls)  # type: ignore[no-any-return]


def outcome(call: Any) -> Any:
    """A call's value, or the type of what it raised (messages differ by design)."""
    try:
        return ("ok", call())
    except (TypeError, AttributeError) as error:
        return ("raised", TypeError if isinstance(error, TypeError) else AttributeError)


@given(declarations(), st.lists(VALUES, max_size=7), st.lists(VALUES, max_size=7))
def test_a_record_behaves_as_the_same_dataclass(declared: Any, args: list[Any], others: list[Any]) -> None:
    fields, options = declared
    ours = build(records.record, records.field, fields, options)
    theirs = build(dataclasses.dataclass, dataclasses.field, fields, options)
    assert ours.__match_args__ == theirs.__match_args__  # type: ignore[attr-defined]
    assert ours.limit == theirs.limit == 3  # type: ignore[attr-defined]  # a ClassVar is no field
    assert (ours.__hash__ is None) == (theirs.__hash__ is None)
    for given_args in (args, others, args[:1]):
        same_instances(ours, theirs, given_args, fields[-1][0] if fields else None, options)


def same_instances(ours: type, theirs: type, args: list[Any], last: str | None,
                   options: dict[str, bool]) -> None:
    made = outcome(lambda: ours(*args))
    assert made == outcome(lambda: theirs(*args)) if made[0] == "raised" else made[0] == "ok"
    if made[0] == "raised":
        return
    mine, reference, twin_mine, twin_reference = made[1], theirs(*args), ours(*args), theirs(*args)
    assert repr(mine) == repr(reference)
    assert {f.name: getattr(mine, f.name) for f in dataclasses.fields(reference)} == records.asdict(mine)
    assert (mine == twin_mine) == (reference == twin_reference)
    if options["frozen"] and options["eq"]:
        assert outcome(lambda: hash(mine) == hash(twin_mine)) == outcome(
            lambda: hash(reference) == hash(twin_reference))
    if last is not None:
        assert outcome(lambda: setattr(mine, last, 9)) == outcome(lambda: setattr(reference, last, 9))
        changed = outcome(lambda: records.replace(mine, **{last: "x"}))
        assert repr(changed) == repr(outcome(lambda: dataclasses.replace(reference, **{last: "x"})))
    assert outcome(lambda: records.replace(mine, nope=1))[0] == "raised"


def test_each_record_gets_its_own_factory_value_and_post_init_runs() -> None:
    @records.record
    class Bag:
        items: list[int] = records.field(default_factory=list)
        size: int = 0

        def __post_init__(self) -> None:
            self.size = len(self.items)

    one, two = Bag(), Bag([1, 2])
    one.items.append(1)
    assert Bag().items == [] and two.size == 2


@records.record(frozen=True, slots=True)
class Frozen:
    """Module-level, so that pickle finds it (the process pool sends records so)."""

    kind: ClassVar[str] = "frozen"  # dataclasses knows a string ClassVar by this import
    name: str
    hidden: Any = records.field(default=None, repr=False, compare=False)


@records.record(frozen=True, slots=True)
class Slotted(Frozen):  # fields inherited from a record base come first
    extra: int = 0


class Nested:
    @records.record(slots=True)
    class Inner:  # a slotted record is a new class: its qualified name is kept
        value: int = 0


def test_records_pickle_and_frozen_ones_stay_frozen() -> None:
    frozen = pickle.loads(pickle.dumps(Frozen("a", hidden=1)))
    assert frozen == Frozen("a", hidden=2) and frozen.hidden == 1  # hidden: not compared
    assert repr(frozen) == "Frozen(name='a')"
    with pytest.raises(records.FrozenInstanceError):
        frozen.name = "b"  # type: ignore[misc]
    assert isinstance(records.FrozenInstanceError(), AttributeError)  # as dataclasses' is
    slotted = pickle.loads(pickle.dumps(Slotted("a", None, 3)))
    assert (slotted.name, slotted.extra) == ("a", 3) and not hasattr(slotted, "__dict__")
    assert Slotted.__match_args__ == ("name", "hidden", "extra") and Slotted.kind == "frozen"
    assert Slotted.__qualname__ == "Slotted" and Nested.Inner.__qualname__ == "Nested.Inner"


def test_a_required_field_after_a_default_is_refused_at_first_use() -> None:
    @records.record
    class Wrong:
        a: int = 1
        b: int  # type: ignore[misc]

    with pytest.raises(TypeError, match="non-default field 'b'"):
        Wrong(1, 2)

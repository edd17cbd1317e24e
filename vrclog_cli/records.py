"""Record classes for the types every run defines: ``dataclasses``' semantics for the part
vrclog uses, at a fraction of its class-creation cost.

Why not ``dataclasses``: it compiles each generated method with its own ``exec`` and reads
every field through ``typing`` and ``inspect``. Measured (2026-12-06, ``-X importtime``
and a timed ``_process_class``): 0.4-2.8 ms a class, 39 ms for the 32 records a plugin run
defines, a quarter of its whole start-up. Here only ``__init__`` is compiled (one ``exec``
a class, it must run at full speed); ``__repr__``, ``__eq__`` and ``__hash__`` are shared
functions over a tuple of the fields. ``tests/test_records.py`` pins every behaviour to
``dataclasses`` itself, the reference, including pickling (the process pool sends them).

Supported: fields from annotations (``ClassVar`` skipped), defaults, ``field(default=,
default_factory=, repr=, compare=)``, ``frozen``, ``slots``, ``eq``, ``__post_init__``,
fields inherited from a record base, ``replace``, a shallow ``asdict``. Not supported
(unused): ``order``, ``kw_only``, ``InitVar``, ``init=False``. ``plugin inspect`` keeps
``dataclasses`` (authoring/inspection.py): off the run path, and its ``--json`` wants the
recursive ``asdict``; ``dataclasses.replace`` and ``asdict`` refuse these records.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["FrozenInstanceError", "asdict", "field", "record", "replace"]

_T = TypeVar("_T")


class FrozenInstanceError(AttributeError):
    """An assignment to a frozen record's field (``dataclasses``' name for it)."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Field:
    """One field as declared: its name, default or factory, and whether it shows and compares."""

    __slots__ = ("compare", "default", "default_factory", "name", "repr")

    def __init__(self, default: Any, default_factory: Any, repr: bool, compare: bool) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare


def field(*, default: Any = MISSING, default_factory: Callable[[], Any] | Any = MISSING,
          repr: bool = True, compare: bool = True) -> Any:
    """A field with a factory (a fresh list for each record), or one left out of ``repr``
    and ``==``: what ``dataclasses.field`` does for these four arguments."""
    return Field(default, default_factory, repr, compare)


@overload
@dataclass_transform(field_specifiers=(field,))
def record(cls: type[_T], /) -> type[_T]: ...


@overload
def record(*, frozen: bool = False, slots: bool = False,
           eq: bool = True) -> Callable[[type[_T]], type[_T]]: ...


def record(cls: type[_T] | None = None, /, *, frozen: bool = False, slots: bool = False,
           eq: bool = True) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """``@dataclass`` for a record: ``@record``, ``@record(frozen=True, slots=True)``."""
    def wrap(cls: type[_T]) -> type[_T]:
        return _build(cls, frozen=frozen, slots=slots, eq=eq)

    return wrap if cls is None else wrap(cls)


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of a record with some fields changed (``dataclasses.replace``)."""
    fields: tuple[Field, ...] = type(obj).__record_fields__  # type: ignore[attr-defined]
    names = {f.name for f in fields}
    unknown = changes.keys() - names
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {', '.join(sorted(unknown))}")
    values = {f.name: changes[f.name] if f.name in changes else getattr(obj, f.name) for f in fields}
    return type(obj)(**values)


def asdict(obj: Any, /) -> dict[str, Any]:
    """A record's fields as a dict, values as they are (``dataclasses.asdict`` also copies
    nested containers; where vrclog uses this, the fields hold scalars)."""
    return {f.name: getattr(obj, f.name) for f in type(obj).__record_fields__}


def _own_annotations(cls: type) -> dict[str, Any]:
    """The class's own annotations, strings under ``from __future__ import annotations``
    (``inspect.get_annotations`` would import ``inspect``, ~12 ms, for the same dict)."""
    annotations: dict[str, Any] = cls.__dict__.get("__annotations__", {})  # noqa: RUF063
    return annotations


def _is_class_var(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _collect(cls: type) -> tuple[Field, ...]:
    inherited: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        for f in getattr(base, "__record_fields__", ()):
            inherited[f.name] = f
    for name, annotation in _own_annotations(cls).items():
        if _is_class_var(annotation):
            continue
        declared = cls.__dict__.get(name, MISSING)
        f = declared if isinstance(declared, Field) else Field(declared, MISSING, True, True)
        f.name = name
        inherited[name] = f
        if isinstance(declared, Field):  # the class keeps the default, as dataclasses does
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
    return tuple(inherited.values())


def _init(cls: type, fields: tuple[Field, ...], frozen: bool) -> Callable[..., None]:
    """``__init__`` compiled for this class, as fast as a hand-written one."""
    namespace: dict[str, Any] = {"_setattr": object.__setattr__, "_FACTORY": MISSING}
    params, body = ["self"], []
    seen_default = False
    for f in fields:
        value = f.name
        if f.default_factory is not MISSING:
            namespace[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_FACTORY")
            value = f"_factory_{f.name}() if {f.name} is _FACTORY else {f.name}"
            seen_default = True
        elif f.default is not MISSING:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
            seen_default = True
        elif seen_default:
            raise TypeError(f"{cls.__name__}: non-default field {f.name!r} follows a default")
        else:
            params.append(f.name)
        body.append(f"_setattr(self, {f.name!r}, {value})" if frozen else f"self.{f.name} = {value}")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    source = f"def __init__({', '.join(params)}) -> None:\n    " + "\n    ".join(body or ["pass"])
    exec(source, namespace)
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _compiled_at_first_use(cls: type, fields: tuple[Field, ...], frozen: bool) -> Callable[..., None]:
    """An ``__init__`` that compiles the real one and puts it in its place: the ``exec`` is
    most of a record's cost (~0.2 of 0.4 ms), and a run makes only half of its records."""
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init = _init(cls, fields, frozen)
        if cls.__dict__.get("__init__") is __init__:
            cls.__init__ = init  # type: ignore[misc]
        init(self, *args, **kwargs)

    return __init__


def _repr(self: Any) -> str:
    cls = type(self)
    pairs = zip(cls.__record_repr__, cls.__record_shown__(self), strict=True)
    return f"{cls.__qualname__}({', '.join(f'{n}={v!r}' for n, v in pairs)})"


def _values(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """A record's values as a tuple, at C speed (``attrgetter`` of one name gives the
    bare value, of none is an error)."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        compared = type(self).__record_compared__
        return compared(self) == compared(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(type(self).__record_compared__(self))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _setstate(self: Any, state: dict[str, Any]) -> None:
    """A slotted record unpickled from its ``asdict`` (its ``__getstate__``)."""
    for name, value in state.items():
        object.__setattr__(self, name, value)  # frozen ones too


def _build(cls: type[_T], *, frozen: bool, slots: bool, eq: bool) -> type[_T]:
    fields = _collect(cls)
    if slots:  # a new class, as dataclasses makes: __slots__ cannot be added to one
        own_fields = [f.name for f in fields if f.name in _own_annotations(cls)]
        left_out = {*own_fields, "__dict__", "__weakref__"}
        body = {k: v for k, v in cls.__dict__.items() if k not in left_out}
        body.update(__slots__=tuple(own_fields), __qualname__=cls.__qualname__,  # not in __dict__
                    __getstate__=asdict, __setstate__=_setstate)
        cls = type(cls.__name__, cls.__bases__, body)  # type: ignore[assignment]
    shown = tuple(f.name for f in fields if f.repr)
    compared = tuple(f.name for f in fields if f.compare)
    attributes: dict[str, Any] = {
        "__record_fields__": fields, "__match_args__": tuple(f.name for f in fields),
        "__record_repr__": shown, "__record_shown__": staticmethod(_values(shown)),
        "__record_compared__": staticmethod(_values(compared)),
    }
    own = cls.__dict__  # what the class spells itself is kept, as dataclasses keeps it
    if "__init__" not in own:
        attributes["__init__"] = _compiled_at_first_use(cls, fields, frozen)
    if "__repr__" not in own:
        attributes["__repr__"] = _repr
    if eq:
        if "__eq__" not in own:
            attributes["__eq__"] = _eq
        if own.get("__hash__") is None:  # an explicit __hash__ stays
            attributes["__hash__"] = _hash if frozen else None
    if frozen:
        attributes["__setattr__"] = _frozen_setattr
        attributes["__delattr__"] = _frozen_delattr
    for name, value in attributes.items():
        setattr(cls, name, value)
    return cls

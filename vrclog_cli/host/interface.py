"""What a core module imports and exports, with their types, read from its binary.

wasmtime-py reflects the same from a compiled module, but importing wasmtime-py
costs 25-30 ms of every start-up (a plugin run's load needs nothing else of it),
and its reflection would run on every load, cached or not.  The sections read here
(types, imports, functions, memories, exports) are simply framed; a construct this
reader does not know raises ``Unsupported`` and the caller asks wasmtime-py instead.
tests/test_interface.py pins this reader to wasmtime-py's reflection.
"""

from __future__ import annotations

from typing import TypeVar

from ..records import record
from .abi import Signature
from .sections import MalformedBinary, read_leb, sections

_TYPE, _IMPORT, _FUNCTION, _MEMORY, _EXPORT = 1, 2, 3, 5, 7
_FUNC_TYPE, _REC_GROUP, _SUB_FINAL, _SUB = 0x60, 0x4E, 0x4F, 0x50
_VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128",
             0x70: "funcref", 0x6F: "externref"}
T = TypeVar("T")
_KINDS = ("func", "table", "memory", "global", "tag")


class Unsupported(Exception):
    """A construct this reader does not know (a newer proposal's encoding)."""


@record(frozen=True)
class Item:
    """An import's or export's kind and type: ``signature`` for a function, ``limits``
    (minimum and maximum pages, maximum None when unbounded) and ``is_64`` for a memory."""
    kind: str
    signature: Signature | None = None
    limits: tuple[int, int | None] | None = None
    is_64: bool = False


@record(frozen=True)
class Import:
    module: str
    name: str
    item: Item


@record(frozen=True)
class Interface:
    imports: tuple[Import, ...]
    exports: dict[str, Item]


class _Reader:
    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise MalformedBinary("unexpected end of a section")
        self.pos += 1
        return self.data[self.pos - 1]

    def u32(self) -> int:
        value, self.pos = read_leb(self.data, self.pos, self.end, 5)
        return value

    def u64(self) -> int:
        value, self.pos = read_leb(self.data, self.pos, self.end, 10)
        return value

    def name(self) -> str:
        length = self.u32()
        if self.pos + length > self.end:
            raise MalformedBinary("a name runs past its section")
        self.pos += length
        return self.data[self.pos - length:self.pos].decode("utf-8", "replace")

    def valtype(self) -> str:
        code = self.byte()
        if code in _VALTYPES:
            return _VALTYPES[code]
        raise Unsupported(f"value type {code:#x}")

    def limits(self) -> tuple[tuple[int, int | None], bool]:
        flags = self.byte()
        if flags & ~0x07:
            raise Unsupported(f"limits flags {flags:#x}")
        wide = bool(flags & 0x04)
        read = self.u64 if wide else self.u32
        minimum = read()
        maximum = read() if flags & 0x01 else None
        return (minimum, maximum), wide

    def functype(self) -> Signature:
        if (form := self.byte()) != _FUNC_TYPE:
            raise Unsupported(f"type form {form:#x}")
        params = tuple(self.valtype() for _ in range(self.u32()))
        results = tuple(self.valtype() for _ in range(self.u32()))
        return params, results

    def skip_table(self) -> None:
        self.valtype()
        self.limits()

    def skip_global(self) -> None:
        self.valtype()
        self.byte()


def read_interface(wasm: bytes) -> Interface:
    """The module's imports and exports; MalformedBinary for bad framing, Unsupported
    for an encoding this reader does not know."""
    types: list[Signature] = []
    funcs: list[Signature] = []  # the function index space: imported, then defined
    memories: list[Item] = []  # likewise
    imports: list[Import] = []
    exports: dict[str, Item] = {}
    for section_id, _start, payload, end in sections(wasm):
        r = _Reader(wasm, payload, end)
        if section_id == _TYPE:
            for _ in range(r.u32()):
                types.append(r.functype())
        elif section_id == _IMPORT:
            for _ in range(r.u32()):
                module, name, kind = r.name(), r.name(), r.byte()
                if kind == 0:
                    item = Item("func", signature=_type(types, r.u32()))
                    funcs.append(item.signature)  # type: ignore[arg-type]
                elif kind == 1:
                    r.skip_table()
                    item = Item("table")
                elif kind == 2:
                    limits, wide = r.limits()
                    item = Item("memory", limits=limits, is_64=wide)
                    memories.append(item)
                elif kind == 3:
                    r.skip_global()
                    item = Item("global")
                else:
                    raise Unsupported(f"import kind {kind:#x}")
                imports.append(Import(module, name, item))
        elif section_id == _FUNCTION:
            funcs.extend(_type(types, r.u32()) for _ in range(r.u32()))
        elif section_id == _MEMORY:
            for _ in range(r.u32()):
                limits, wide = r.limits()
                memories.append(Item("memory", limits=limits, is_64=wide))
        elif section_id == _EXPORT:
            for _ in range(r.u32()):
                name, kind, index = r.name(), r.byte(), r.u32()
                if kind == 0:
                    exports[name] = Item("func", signature=_index(funcs, index, "function"))
                elif kind == 2:
                    exports[name] = _index(memories, index, "memory")
                elif kind < len(_KINDS):
                    exports[name] = Item(_KINDS[kind])
                else:
                    raise Unsupported(f"export kind {kind:#x}")
    return Interface(tuple(imports), exports)


def _type(types: list[Signature], index: int) -> Signature:
    return _index(types, index, "type")


def _index(items: list[T], index: int, what: str) -> T:
    if index >= len(items):
        raise MalformedBinary(f"{what} index {index} out of range")
    return items[index]

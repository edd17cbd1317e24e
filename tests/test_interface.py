"""The binary reader of a module's imports and exports (host/interface.py), pinned to
wasmtime-py's reflection of the same module; and the C API's structures (capi/library.py)
pinned to wasmtime-py's declarations of them."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from vrclog_cli.host.capi import library
from vrclog_cli.host.interface import Item, Unsupported, read_interface
from vrclog_cli.host.loader import reflected_interface
from vrclog_cli.host.sections import MalformedBinary

from .conftest import SAMPLES

VALTYPES = ["i32", "i64", "f32", "f64"]
signatures = st.tuples(st.lists(st.sampled_from(VALTYPES), max_size=4),
                       st.lists(st.sampled_from(VALTYPES), max_size=2))
memories = st.tuples(st.integers(0, 70000), st.one_of(st.none(), st.integers(0, 65536)),
                     st.booleans()).filter(lambda m: m[1] is None or m[1] >= m[0]).filter(
    lambda m: m[2] or (m[0] <= 65536 and (m[1] is None or m[1] <= 65536)))


def reflected(wasm: bytes) -> tuple[list[tuple[str, str, Item]], dict[str, Item]]:
    interface = reflected_interface(Path("x.wasm"), wasm)
    return ([(i.module, i.name, i.item) for i in interface.imports], dict(interface.exports))


def sig(params: list[str], results: list[str]) -> str:
    takes = f"(param {' '.join(params)})" if params else ""
    return takes + (f" (result {' '.join(results)})" if results else "")


@settings(max_examples=60, deadline=None)
@given(imports=st.lists(signatures, max_size=4), funcs=st.lists(signatures, min_size=1, max_size=5),
       memory=memories, import_memory=st.booleans(), extra=st.booleans())
def test_the_reader_agrees_with_wasmtime(imports: list[tuple[list[str], list[str]]],
                                         funcs: list[tuple[list[str], list[str]]],
                                         memory: tuple[int, int | None, bool], import_memory: bool,
                                         extra: bool) -> None:
    minimum, maximum, wide = memory
    limits = f"{'i64 ' if wide else ''}{minimum}{'' if maximum is None else f' {maximum}'}"
    parts = [f'(import "env" "f{i}" (func {sig(*s)}))' for i, s in enumerate(imports)]
    if extra:  # imports come before definitions in WAT
        parts += ['(import "env" "tb" (table 1 funcref))', '(import "env" "gi" (global i32))']
    if import_memory:
        parts.append(f'(import "env" "mem" (memory {limits}))')
        parts.append('(export "memory" (memory 0))')
    else:
        parts.append(f'(memory (export "memory") {limits})')
    for i, (params, results) in enumerate(funcs):
        body = " ".join(f"({r}.const 0)" for r in results)
        parts.append(f'(func (export "g{i}") {sig(params, results)} {body})')
    parts.append(f'(export "first" (func {len(imports) and 0}))' if imports else "")
    if extra:
        parts += ['(table (export "t") 1 funcref)', '(global (export "gl") i32 (i32.const 1))']
    wasm = bytes(wasmtime.wat2wasm(f"(module {' '.join(parts)})"))
    ours = read_interface(wasm)
    theirs_imports, theirs_exports = reflected(wasm)
    assert [(i.module, i.name, i.item) for i in ours.imports] == theirs_imports
    assert ours.exports == theirs_exports


@pytest.mark.parametrize("name", ["vrpoker.wasm", "vrpoker_v1.wasm", "echo.wasm", "busy.wasm",
                                  "minimal.wasm"])
def test_the_sample_plugins_read_as_wasmtime_reflects_them(name: str) -> None:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"no {name}")
    wasm = path.read_bytes()
    ours = read_interface(wasm)
    theirs_imports, theirs_exports = reflected(wasm)
    assert [(i.module, i.name, i.item) for i in ours.imports] == theirs_imports
    assert ours.exports == theirs_exports


def test_what_the_reader_does_not_know_it_says_so() -> None:
    wasm = bytes(wasmtime.wat2wasm('(module (func (export "f") (param v128)))'))
    with pytest.raises(Unsupported):
        read_interface(wasm[:8] + bytes([1, 5, 1, 0x60, 1, 0x7A, 0]) + wasm[8 + 7:])
    with pytest.raises(MalformedBinary):
        read_interface(wasm[:12])


@pytest.mark.parametrize(("ours", "theirs"), [
    (library.Extern, "wasmtime_extern_t"), (library.ValRaw, "wasmtime_val_raw"),
    (library.InstanceRef, "wasmtime_instance_t"), (library.FuncRef, "wasmtime_func_t"),
    (library.MemoryRef, "wasmtime_memory_t"), (library.ByteVec, "wasm_byte_vec_t"),
    (library.ValtypeVec, "wasm_valtype_vec_t")])
def test_each_structure_is_laid_out_as_wasmtime_declares_it(ours: type, theirs: str) -> None:
    from wasmtime import _ffi as ffi

    reference = getattr(ffi, theirs)
    assert ctypes.sizeof(ours) == ctypes.sizeof(reference)
    assert ctypes.alignment(ours) == ctypes.alignment(reference)
    for name, *_ in getattr(reference, "_fields_", []):
        mine = name.lstrip("_") if name.startswith("__") else name
        if hasattr(ours, mine):
            assert getattr(ours, mine).offset == getattr(reference, name).offset, name

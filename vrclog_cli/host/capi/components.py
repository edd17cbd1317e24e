"""The per-line path of component plugins (design.md 2d), against wasmtime's component C API.

Kept beside the core path (``calls.py``) and under the same rule: only
this package touches ``wasmtime._ffi``.  wasmtime-py's component wrappers cost
70-90 µs a call and leak ~75 bytes a call; this path costs a few µs of Python
around wasmtime's own work.

The C API has no InstancePre and no unchecked call for components: each line
instantiates through the linker and calls with ``wasmtime_component_val_t``
trees.  Two things abort the whole process in wasmtime (Rust panics that cannot
be caught): a WASI import on a store without a WASI context, and a string
argument that is not UTF-8.  Every store here gets a WASI context before
anything runs, and the line is always valid UTF-8 (the caller encodes it).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime.component import Component

from ...events import STRING_FIELDS
from .calls import _address, _prepare_store, _store_delete, _store_new, _token
from .failures import CallFailed, OutputTooLarge
from .failures import call_failed as _error_text
from .library import NO_FINALIZER as _NO_FINALIZER
from .library import Handle as _Handle
from .library import declare
from .library import gil_held as _gil_held
from .library import gil_released as _gil_released

REQUIRED_SYMBOLS = (
    "wasmtime_component_linker_new", "wasmtime_component_linker_add_wasip2",
    "wasmtime_component_linker_root", "wasmtime_component_linker_instance_add_instance",
    "wasmtime_component_linker_instance_add_func", "wasmtime_component_linker_instance_delete",
    "wasmtime_component_linker_instantiate", "wasmtime_component_get_export_index",
    "wasmtime_component_instance_get_func", "wasmtime_component_func_call",
    "wasmtime_component_val_delete", "wasmtime_component_val_new",
    "wasmtime_component_vallist_new_uninit", "wasmtime_component_func_callback_t",
)


def missing_symbols() -> list[str]:
    """The component C API symbols this wasmtime lacks (components then cannot load)."""
    return [name for name in REQUIRED_SYMBOLS if not hasattr(ffi, name)]


_Val = ffi.wasmtime_component_val_t
_STRING = int(ffi.WASMTIME_COMPONENT_STRING.value)
_BOOL = int(ffi.WASMTIME_COMPONENT_BOOL.value)
_S64 = int(ffi.WASMTIME_COMPONENT_S64.value)
_LIST = int(ffi.WASMTIME_COMPONENT_LIST.value)
_OPTION = int(ffi.WASMTIME_COMPONENT_OPTION.value)
_RESULT = int(ffi.WASMTIME_COMPONENT_RESULT.value)
_RECORD = int(ffi.WASMTIME_COMPONENT_RECORD.value)

# Instantiation and the call run wasm: they release the GIL (see library.py).
_instantiate = declare(_gil_released, "wasmtime_component_linker_instantiate", ctypes.c_void_p)
_call = declare(_gil_released, "wasmtime_component_func_call", ctypes.c_void_p)
_get_func = declare(_gil_held, "wasmtime_component_instance_get_func", ctypes.c_bool)
_val_delete = declare(_gil_held, "wasmtime_component_val_delete", None)
_ONE = ctypes.c_size_t(1)


def _text(val: Any) -> bytes:
    """A string value's bytes (wasmtime checked them as UTF-8 when it lifted them)."""
    vec = val.of.string
    return ctypes.string_at(vec.data, vec.size) if vec.size else b""


# --- the host interface, for components that import it ---

class HostCalls:
    """What the ``host`` interface's functions do; the plugin layer supplies them.
    Each must return normally: an exception cannot cross into wasmtime."""

    def __init__(self, log: Callable[[int, bytes], None], regex_match: Callable[[bytes, bytes], bool],
                 regex_find: Callable[[bytes, bytes], list[bytes] | None],
                 now_ms: Callable[[], int]) -> None:
        self.log = log
        self.regex_match = regex_match
        self.regex_find = regex_find
        self.now_ms = now_ms


def _set_string(val: Any, data: bytes) -> None:
    """A string value handed to wasmtime: made valid UTF-8 first (replacing what is not),
    since wasmtime aborts the process on one that is not (a hostile plugin can ask RE2
    for half a character: ``\\C`` matches a single byte)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        data = data.decode("utf-8", "replace").encode("utf-8")
    val.kind = _STRING
    ffi.wasm_byte_vec_new(ctypes.byref(val.of.string), len(data),
                          ctypes.cast(ctypes.c_char_p(data), ctypes.POINTER(ffi.wasm_byte_t)))


def _host_callbacks(host: HostCalls) -> dict[str, Any]:
    """C callbacks serving each host function; a failure gives the neutral answer."""

    def wrap(body: Callable[[Any, Any], None]) -> Any:
        def callback(_data: Any, _ctx: Any, _ty: Any, args: Any, _nargs: int,
                     results: Any, _nresults: int) -> int:
            try:
                body(args, results)
            except BaseException:  # noqa: BLE001 - must never unwind into wasmtime
                pass
            return 0
        return ffi.wasmtime_component_func_callback_t(callback)

    def log(args: Any, _results: Any) -> None:
        host.log(int(args[0].of.u8), _text(args[1]))

    def regex_match(args: Any, results: Any) -> None:
        results[0].kind = _BOOL
        results[0].of.boolean = False
        results[0].of.boolean = bool(host.regex_match(_text(args[0]), _text(args[1])))

    def regex_find(args: Any, results: Any) -> None:
        results[0].kind = _OPTION
        results[0].of.option = None
        found = host.regex_find(_text(args[0]), _text(args[1]))
        if found is None:
            return
        inner = _Val()
        inner.kind = _LIST
        ffi.wasmtime_component_vallist_new_uninit(ctypes.byref(inner.of.list), len(found))
        for i, part in enumerate(found):
            _set_string(inner.of.list.data[i], part)
        results[0].of.option = ffi.wasmtime_component_val_new(ctypes.byref(inner))

    def now_ms(_args: Any, results: Any) -> None:
        results[0].kind = _S64
        results[0].of.s64 = 0
        results[0].of.s64 = host.now_ms()

    return {"log": wrap(log), "regex-match": wrap(regex_match),
            "regex-find-submatch": wrap(regex_find), "now-ms": wrap(now_ms)}


class ComponentLinker:
    """WASI 0.2 (with nothing behind it) and the host interface, for one engine."""

    def __init__(self, engine: wasmtime.Engine, host_interface: str, host: HostCalls) -> None:
        self._engine = engine  # the linker must not outlive it
        self._callbacks = _host_callbacks(host)  # C callbacks live as long as the linker
        self.ptr: Any = ffi.wasmtime_component_linker_new(engine.ptr())
        err = ffi.wasmtime_component_linker_add_wasip2(self.ptr)
        if err:
            raise _error_text(err)
        root = ffi.wasmtime_component_linker_root(self.ptr)
        try:
            name = host_interface.encode()
            inst = ctypes.POINTER(ffi.wasmtime_component_linker_instance_t)()
            err = ffi.wasmtime_component_linker_instance_add_instance(root, name, len(name),
                                                                     ctypes.byref(inst))
            if err:
                raise _error_text(err)
            try:
                for func_name, callback in self._callbacks.items():
                    raw = func_name.encode()
                    err = ffi.wasmtime_component_linker_instance_add_func(
                        inst, raw, len(raw), callback, None, _NO_FINALIZER)
                    if err:
                        raise _error_text(err)
            finally:
                ffi.wasmtime_component_linker_instance_delete(inst)
        finally:
            ffi.wasmtime_component_linker_instance_delete(root)

    def __del__(self) -> None:
        ptr, self.ptr = getattr(self, "ptr", None), None
        if ptr:
            ffi.wasmtime_component_linker_delete(ptr)


# --- one line: fresh store, instantiation, one call, the result lifted ---

class ComponentCaller:
    """Calls ``export`` (``func(string) -> result<list<event>, plugin-error>``, checked
    at load) in a fresh instance per line."""

    __slots__ = ("_component", "_engine", "_engine_ptr", "_export", "_index", "_linker", "_max_memory",
                 "_stderr_token")

    def __init__(self, engine: wasmtime.Engine, linker: ComponentLinker, component: Component,
                 export: str, stderr_token: int | None, max_memory_bytes: int | None) -> None:
        self._engine = engine
        self._engine_ptr = _Handle(_address(engine.ptr()))
        self._linker = linker
        self._component = component
        self._export = export
        name = export.encode()
        self._index: Any = ffi.wasmtime_component_get_export_index(component.ptr(), None, name, len(name))
        if not self._index:
            raise CallFailed(f"export {export} not found")
        self._stderr_token = _token(stderr_token)
        self._max_memory = None if max_memory_bytes is None else ctypes.c_int64(max_memory_bytes)

    def __del__(self) -> None:
        index, self._index = getattr(self, "_index", None), None
        if index:
            ffi.wasmtime_component_export_index_delete(index)

    def _instantiate(self, store: _Handle, stderr_token: int | None = None) -> tuple[Any, Any]:
        """A fresh instance in ``store`` (given its WASI context, memory cap and deadline
        first): (the store's context, the instance).  Its stderr goes to the sink with
        ``stderr_token`` (this call's own), else with the caller's."""
        token = self._stderr_token if stderr_token is None else _token(stderr_token)
        ctx = _prepare_store(store, self._max_memory, True, token)
        instance = ffi.wasmtime_component_instance_t()
        err = _instantiate(self._linker.ptr, ctx, self._component.ptr(), ctypes.byref(instance))
        if err:
            raise _error_text(err)
        return ctx, instance

    def instantiate_only(self) -> None:
        """Instantiates once and drops it: the load-time probe of a component."""
        store = _store_new(self._engine_ptr, None, _NO_FINALIZER)
        try:
            self._instantiate(store)
        finally:
            _store_delete(store)

    def run(self, line: bytes, max_output: int, stderr_token: int | None = None) -> tuple[bool, Any]:
        """(True, [event dicts]) or (False, (message, code)) for the plugin's own error.
        ``line`` must be valid UTF-8.  ``stderr_token``: this call's stderr token (wasmtime
        writes a component's stderr from threads of its own, so a thread cannot tell whose
        call it is; a token per call can)."""
        store = _store_new(self._engine_ptr, None, _NO_FINALIZER)
        try:
            ctx, instance = self._instantiate(store, stderr_token)
            func = ffi.wasmtime_component_func_t()
            if not _get_func(ctypes.byref(instance), ctx, self._index, ctypes.byref(func)):
                raise CallFailed(f"export {self._export} not found")
            arg = _Val()
            arg.kind = _STRING
            buffer = ctypes.create_string_buffer(line, len(line))  # borrowed by the call
            arg.of.string.size = len(line)
            arg.of.string.data = ctypes.cast(buffer, ctypes.POINTER(ffi.wasm_byte_t))
            result = _Val()
            err = _call(ctypes.byref(func), ctx, ctypes.byref(arg), _ONE, ctypes.byref(result), _ONE)
            if err:
                raise _error_text(err)
            try:
                return _lift(result, max_output)
            finally:
                _val_delete(ctypes.byref(result))
        finally:
            _store_delete(store)


class _Budget:
    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left


def _taken(val: Any, budget: _Budget) -> str:
    data = _text(val)
    budget.left -= len(data)
    if budget.left < 0:
        raise OutputTooLarge("output is over the limit")
    return data.decode("utf-8", "replace")


def _lift(result: Any, max_output: int) -> tuple[bool, Any]:
    """The result tree as Python values; its shape was checked against the WIT at load."""
    budget = _Budget(max_output)
    payload = result.of.result
    inner = payload.val.contents
    if not payload.is_ok:
        fields = inner.of.record.data
        message = _taken(fields[0].val, budget)
        code = fields[1].val.of.option
        return False, (message, _taken(code.contents, budget) if code else None)
    events = inner.of.list
    out: list[dict[str, Any]] = []
    for i in range(events.size):
        fields = events.data[i].of.record.data
        item: dict[str, Any] = {"type": _taken(fields[0].val, budget)}
        # The record's optional strings after kind: in STRING_FIELDS' order, as the WIT
        # lists them (component.EXPORT_TYPE spells it out; checked at load).
        for j, name in enumerate(STRING_FIELDS, 1):
            value = fields[j].val.of.option
            if value:
                item[name] = _taken(value.contents, budget)
        pairs = fields[7].val.of.list
        if pairs.size:
            data: dict[str, str] = {}
            for k in range(pairs.size):
                pair = pairs.data[k].of.tuple.data
                data[_taken(pair[0], budget)] = _taken(pair[1], budget)
            item["data"] = data
        out.append(item)
    return True, out


def deserialize_component(engine: wasmtime.Engine, compiled: memoryview) -> Component:
    """A component from its cache entry's bytes, without the copy wasmtime-py's
    ``Component.deserialize`` makes of them (it takes only bytes: a 35-50 MB copy)."""
    if compiled.readonly:
        return Component.deserialize(engine, bytes(compiled))
    buffer = (ctypes.c_uint8 * len(compiled)).from_buffer(compiled)
    try:
        return _component_from(ffi.wasmtime_component_deserialize, engine.ptr(), buffer, len(compiled))
    finally:
        del buffer  # the view must be releasable, even when wasmtime refused it


def deserialize_component_file(engine: wasmtime.Engine, path: bytes) -> Component:
    """A component from a cache entry's file (``path``: UTF-8), which wasmtime maps rather
    than copies: only the pages a run touches are read."""
    return _component_from(ffi.wasmtime_component_deserialize_file, engine.ptr(), path)


def _component_from(deserialize: Callable[..., Any], *args: Any) -> Component:
    """The component a wasmtime_component_deserialize* call writes (its last argument), or
    its error."""
    ptr = ctypes.POINTER(ffi.wasmtime_component_t)()
    err = deserialize(*args, ctypes.byref(ptr))
    if err:
        raise wasmtime.WasmtimeError._from_ptr(err)
    return Component._from_ptr(ptr)

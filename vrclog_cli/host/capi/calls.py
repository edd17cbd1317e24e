"""One call in a fresh instance: a store per call, pooled pre-linked instantiation,
unchecked calls and direct memory access.  The per-line path of every ABI version,
kept flat on purpose (each attribute read and each ctypes conversion shows per line).
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

from ..abi import unpack_result
from . import library as lib
from .engine import Engine, InstancePre
from .failures import CallFailed, call_failed, take_trap
from .library import Handle
from .trampolines import on_deadline, on_stderr

_store_new, _store_delete, _store_context = lib.store_new, lib.store_delete, lib.store_context
_store_limiter, _wasi_config_new = lib.store_limiter, lib.wasi_config_new
_wasi_config_set_stderr_custom, _set_wasi = lib.wasi_config_set_stderr_custom, lib.context_set_wasi
_set_epoch_deadline = lib.context_set_epoch_deadline
_set_deadline_callback = lib.store_epoch_deadline_callback
_export_get, _memory_data, _memory_data_size = lib.instance_export_get, lib.memory_data, lib.memory_data_size
_instantiate, _call = lib.instance_pre_instantiate, lib.func_call_unchecked
_memmove = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t)(
    ctypes._memmove_addr)  # type: ignore[attr-defined]
_NO_FINALIZER = lib.NO_FINALIZER

_TWO_ARGS = ctypes.c_size_t(2)
_EPOCH_DEADLINE = ctypes.c_uint64(1)
_NO_LIMIT = ctypes.c_int64(-1)
_NAME_LENGTHS: dict[bytes, ctypes.c_size_t] = {}


def _name_length(name: bytes) -> ctypes.c_size_t:
    length = _NAME_LENGTHS.get(name)
    if length is None:
        length = _NAME_LENGTHS.setdefault(name, ctypes.c_size_t(len(name)))
    return length


_KIND_FUNC = lib.EXTERN_FUNC
_KIND_MEMORY = lib.EXTERN_MEMORY
_i64_args = lib.ValRaw * 2
#: Where a call's trap is written: a wasm_trap_t*.
_TrapSlot = ctypes.c_void_p


def _prepare_store(store: Handle, max_memory: ctypes.c_int64 | None, needs_wasi: bool,
                   stderr_token: ctypes.c_void_p | None) -> Handle:
    """Memory cap (unless the engine's pool already enforces it: ``max_memory`` None),
    WASI (only when wanted) and the epoch deadline of a fresh store; its context."""
    ctx: Handle = _store_context(store)
    if max_memory is not None:
        _store_limiter(store, max_memory, _NO_LIMIT, _NO_LIMIT, _NO_LIMIT, _NO_LIMIT)
    if needs_wasi or stderr_token is not None:
        wasi = _wasi_config_new()
        if stderr_token is not None:
            _wasi_config_set_stderr_custom(wasi, on_stderr, stderr_token, _NO_FINALIZER)
        err = _set_wasi(ctx, wasi)
        if err:
            raise call_failed(err)
    _set_epoch_deadline(ctx, _EPOCH_DEADLINE)
    _set_deadline_callback(store, on_deadline, None, _NO_FINALIZER)
    return ctx


def _token(stderr_token: int | None) -> ctypes.c_void_p | None:
    return None if stderr_token is None else ctypes.c_void_p(stderr_token)


class Instance:
    """One fresh instance in its own store; ``close`` frees both.

    Not thread-safe: each call owns its instance on one thread.
    """

    __slots__ = ("_ctx", "_inst", "_mem", "_store", "_trap")

    def __init__(self, engine: Engine, pre: InstancePre,
                 max_memory_bytes: int, stderr_token: int | None) -> None:
        self._store: Handle | None = _store_new(Handle(_address(engine.ptr())), None,
                                                 _NO_FINALIZER)
        try:
            self._ctx = _prepare_store(self._store, ctypes.c_int64(max_memory_bytes), True,
                                       _token(stderr_token))
            self._inst = lib.InstanceRef()
            self._trap = _TrapSlot()
            err = _instantiate(Handle(_address(pre.ptr())), self._ctx, ctypes.byref(self._inst),
                               ctypes.byref(self._trap))
            if err:
                raise call_failed(err)
            if self._trap:
                raise take_trap(self._trap)
            self._mem = self._export(b"memory", _KIND_MEMORY)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._store is not None:
            _store_delete(self._store)
            self._store = None

    def _export(self, name: bytes, kind: int) -> Any:
        item = lib.Extern()
        if not _export_get(self._ctx, ctypes.byref(self._inst), name, _name_length(name),
                           ctypes.byref(item)):
            raise CallFailed(f"export {name.decode()} not found")
        if item.kind != kind:
            raise CallFailed(f"export {name.decode()} has the wrong kind")
        return item.of.memory if kind == _KIND_MEMORY else item.of.func

    def func(self, name: bytes) -> Any:
        return self._export(name, _KIND_FUNC)

    def call(self, func: Any, *args: int) -> int:
        """Calls with i32 arguments; returns the first result (0 when none)."""
        raw = _i64_args()
        for i, value in enumerate(args):
            raw[i].i32 = value
        err = _call(self._ctx, ctypes.byref(func), raw, _TWO_ARGS, ctypes.byref(self._trap))
        if err:
            raise call_failed(err)
        if self._trap:
            raise take_trap(self._trap)
        return int(raw[0].i64)

    def memory(self) -> tuple[int, int]:
        """(base address, size in bytes) of linear memory, valid until wasm runs again."""
        mem = ctypes.byref(self._mem)
        return _memory_data(self._ctx, mem) or 0, _memory_data_size(self._ctx, mem)

    def write(self, offset: int, data: bytes) -> None:
        base, size = self.memory()
        if offset < 0 or offset + len(data) > size:
            raise CallFailed(f"memory of {size} bytes cannot hold {len(data)} bytes at {offset:#x}")
        ctypes.memmove(base + offset, data, len(data))

    def read(self, offset: int, length: int) -> bytes:
        base, size = self.memory()
        if offset < 0 or length < 0 or offset + length > size:
            raise CallFailed(
                f"range [{offset:#x}, {offset + length:#x}) is outside memory of {size} bytes")
        return ctypes.string_at(base + offset, length)


def _address(pointer: Any) -> int:
    return ctypes.cast(pointer, ctypes.c_void_p).value or 0


class _Scratch(threading.local):
    """ctypes objects reused by every call on one thread (allocating them costs more than the call)."""

    def __init__(self) -> None:
        inst = lib.InstanceRef()
        item = lib.Extern()  # the export being called
        mem_item = lib.Extern()  # the memory export
        trap = _TrapSlot()
        raw = _i64_args()
        # One tuple, read once per line: each attribute read on a thread-local costs
        # about as much as a ctypes call's conversion.  byrefs and fields keep their
        # objects alive.
        self.hot = (ctypes.byref(inst), ctypes.byref(item), ctypes.byref(item.of.func),
                    ctypes.byref(mem_item), ctypes.byref(mem_item.of.memory),
                    trap, ctypes.byref(trap), raw[0], raw[1], raw)


_scratch = _Scratch()

_MEMORY, _PARSE_LINE, _FREE, _ALLOC = b"memory", b"parse_line", b"free", b"alloc"
_MEMORY_LEN, _PARSE_LINE_LEN, _FREE_LEN, _ALLOC_LEN = (
    _name_length(n) for n in (_MEMORY, _PARSE_LINE, _FREE, _ALLOC))


class LineCaller:
    """The whole per-line sequence of each ABI version: the hot path, kept flat on purpose.

    v1: fresh store -> pooled instantiation -> init export -> input at ``offset``
    -> parse_line -> copy the output -> free -> store deleted.
    v2: the same, but the input goes where ``alloc(len)`` says, and no free.
    """

    __slots__ = ("_engine", "_engine_ptr", "_init", "_init_len", "_max_memory", "_min_memory",
                 "_needs_wasi", "_pre_keep", "_pre_ptr")

    def __init__(self, engine: Engine, pre: InstancePre,
                 init: bytes | None, needs_wasi: bool,
                 min_memory_bytes: int = 0, max_memory_bytes: int | None = None) -> None:
        """``engine`` must come from make_engine.  A pooled one caps every memory at the
        limit, so these stores need no limiter of their own (one call less per line);
        for one that allocates on demand, ``max_memory_bytes`` is that cap.
        ``min_memory_bytes``: the memory's declared minimum, which every instance has
        from the start (memory never shrinks): input inside it needs no size query.
        Its stderr goes to no sink: under --verbose, the linker's fd_write shows it."""
        self._engine = engine  # keeps the engine alive as long as the pointer is used
        self._pre_keep = pre
        self._engine_ptr = Handle(_address(engine.ptr()))
        self._pre_ptr = Handle(_address(pre.ptr()))
        self._init = init
        self._init_len = _name_length(init) if init is not None else None
        self._needs_wasi = needs_wasi
        self._min_memory = min_memory_bytes
        self._max_memory = None if max_memory_bytes is None else ctypes.c_int64(max_memory_bytes)

    def _instantiate(self, store: Handle, hot: tuple[Any, ...]) -> Any:
        """A fresh instance in ``store``, its init export run and its memory looked up
        (into the scratch); returns the store's context."""
        inst_ref, item_ref, func_ref, mem_item_ref, _mem_ref, trap, trap_ref, _a0, _a1, raw = hot
        ctx = _prepare_store(store, self._max_memory, self._needs_wasi, None)
        err = _instantiate(self._pre_ptr, ctx, inst_ref, trap_ref)
        if err:
            raise call_failed(err)
        if trap:
            raise take_trap(trap)
        if self._init is not None:
            if not _export_get(ctx, inst_ref, self._init, self._init_len, item_ref):
                raise CallFailed("init export not found")
            err = _call(ctx, func_ref, raw, _TWO_ARGS, trap_ref)
            if err:
                failed = call_failed(err)
                if failed.exit_code != 0:  # proc_exit(0) in _start is success
                    raise failed
            elif trap:
                raise take_trap(trap)
        if not _export_get(ctx, inst_ref, _MEMORY, _MEMORY_LEN, mem_item_ref):
            raise CallFailed("export memory not found")
        return ctx

    @staticmethod
    def _call2(ctx: Any, hot: tuple[Any, ...], name: bytes, name_len: Any, a: int, b: int) -> int:
        """Calls export ``name`` with two i32 arguments; its first result as an i64."""
        inst_ref, item_ref, func_ref, _mi, _m, trap, trap_ref, arg0, arg1, raw = hot
        if not _export_get(ctx, inst_ref, name, name_len, item_ref):
            raise CallFailed(f"export {name.decode()} not found")
        arg0.i32 = a
        arg1.i32 = b
        err = _call(ctx, func_ref, raw, _TWO_ARGS, trap_ref)
        if err:
            raise call_failed(err)
        if trap:
            raise take_trap(trap)
        return int(arg0.i64)

    def run(self, offset: int, payload: bytes, max_output: int) -> tuple[int, int, bytes | None]:
        """ABI v1: (out_ptr, out_len, output); output is None when the range is too long
        or outside memory."""
        hot = _scratch.hot
        mem_ref = hot[4]
        store = _store_new(self._engine_ptr, None, _NO_FINALIZER)
        try:
            ctx = self._instantiate(store, hot)
            end = offset + len(payload)
            if end > self._min_memory and end > (size := _memory_data_size(ctx, mem_ref)):
                raise CallFailed(f"memory of {size} bytes cannot hold the input at {offset:#x}")
            # Pooled memories never move (each slot reserves the whole cap up front and
            # grows in place), so this base stays valid after parse_line grows memory.
            base = _memory_data(ctx, mem_ref)
            _memmove(base + offset, payload, len(payload))
            out_ptr, out_len = unpack_result(
                self._call2(ctx, hot, _PARSE_LINE, _PARSE_LINE_LEN, offset, len(payload)))
            end = out_ptr + out_len
            if out_len > max_output or (end > self._min_memory and end > _memory_data_size(ctx, mem_ref)):
                return out_ptr, out_len, None
            output = ctypes.string_at(base + out_ptr, out_len)
            self._call2(ctx, hot, _FREE, _FREE_LEN, out_ptr, out_len)
            return out_ptr, out_len, output
        finally:
            _store_delete(store)

    def run_v2(self, line: bytes, max_output: int) -> tuple[int, int, bytes | None]:
        """ABI v2: the line's bytes where ``alloc(len)`` says; otherwise as ``run``.
        An alloc that traps or gives an unusable range raises CallFailed(during="alloc")."""
        hot = _scratch.hot
        mem_ref = hot[4]
        length = len(line)
        store = _store_new(self._engine_ptr, None, _NO_FINALIZER)
        try:
            ctx = self._instantiate(store, hot)
            try:
                ptr = self._call2(ctx, hot, _ALLOC, _ALLOC_LEN, length, 0) & 0xFFFFFFFF
            except CallFailed as exc:
                exc.during = f"alloc({length})"
                raise
            end = ptr + length
            if length and (ptr == 0 or (end > self._min_memory and end > (
                    size := _memory_data_size(ctx, mem_ref)))):
                raise CallFailed(
                    "returned 0" if ptr == 0 else
                    f"returned {ptr:#x}: [{ptr:#x}, {end:#x}) is outside memory of {size} bytes",
                    during=f"alloc({length})")
            base = _memory_data(ctx, mem_ref)  # pooled memories never move (see run)
            if length:
                _memmove(base + ptr, line, length)
            out_ptr, out_len = unpack_result(
                self._call2(ctx, hot, _PARSE_LINE, _PARSE_LINE_LEN, ptr, length))
            end = out_ptr + out_len
            if out_len > max_output or (end > self._min_memory and end > _memory_data_size(ctx, mem_ref)):
                return out_ptr, out_len, None
            return out_ptr, out_len, ctypes.string_at(base + out_ptr, out_len)
        finally:
            _store_delete(store)

"""The per-call fast path, written against wasmtime's C API (``wasmtime._ffi``).

wasmtime-py's high-level wrappers cost hundreds of microseconds per fresh
instance (a pooled instantiation in wasmtime itself costs a few).  This module
is the only place that touches raw C handles: one fresh store per call,
pooled pre-linked instantiation, unchecked calls and direct memory access.
Everything here releases the GIL while wasm runs (ctypes CDLL calls).
"""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi

from ...errors import PluginLoadError
from ...limits import format_size
from ..abi import unpack_result
from ..installed import wasmtime_version

_REQUIRED_SYMBOLS = (
    "wasmtime_store_new", "wasmtime_store_delete", "wasmtime_store_context",
    "wasmtime_store_limiter", "wasmtime_context_set_wasi", "wasi_config_new",
    "wasi_config_set_stderr_custom", "wasmtime_context_set_epoch_deadline",
    "wasmtime_store_epoch_deadline_callback", "wasmtime_instance_pre_instantiate",
    "wasmtime_instance_export_get", "wasmtime_func_call_unchecked",
    "wasmtime_memory_data", "wasmtime_memory_data_size", "wasmtime_caller_export_get",
    "wasmtime_error_new", "wasmtime_pooling_allocation_config_new",
    "wasmtime_pooling_allocation_strategy_set",
    "wasmtime_pooling_allocation_config_linear_memory_keep_resident_set",
    "wasmtime_pooling_allocation_config_table_keep_resident_set",
    "wasmtime_pooling_allocation_config_total_stacks_set",
    "wasmtime_val_raw", "wasmtime_extern_t", "wasmtime_caller_context", "wasmtime_context_t",
    "wasmtime_update_deadline_kind_t", "WASMTIME_EXTERN_FUNC", "WASMTIME_EXTERN_MEMORY",
    "wasmtime_error_t", "wasm_trap_t", "wasmtime_instance_t", "wasmtime_func_unchecked_callback_t",
    "wasmtime_linker_define_func_unchecked", "dll",
)


class RuntimeApiError(PluginLoadError):
    """The installed wasmtime does not offer the C API this module relies on (exit 3,
    one line: a clear load error, not a crash)."""


def check_api() -> None:
    missing = [name for name in _REQUIRED_SYMBOLS if not hasattr(ffi, name)]
    if missing:
        raise RuntimeApiError(
            f"wasmtime {wasmtime_version()} lacks C API symbols vrclog needs: {', '.join(missing)} "
            "(vrclog supports the wasmtime versions its pyproject.toml allows)"
        )


# The bindings below deliberately have no ``argtypes``: ctypes then skips its
# per-argument conversion, which costs more than most of these calls do
# (0.66 against 0.30 µs for memory_data_size).  The price is discipline: every
# argument must already be a ctypes object of the C type (a Python int would be
# passed as a 32-bit C int), so pointers travel as ``_Handle``s or byrefs and
# sizes as prebuilt ``c_size_t``s.
#
# Bookkeeping calls (store setup, export lookup, memory access) return in
# nanoseconds and never run wasm: bound through PyDLL they keep the GIL, so
# worker threads do not hand the GIL back and forth ~20 times per line.  Only
# the calls that run wasm (instantiation, function calls) release it, which
# they must: a spinning plugin would otherwise stall every other thread.
check_api()  # before the names below are bound: a missing one is a load error, not exit 70
_gil_held = ctypes.PyDLL(ffi.dll._name)
_gil_released = ctypes.CDLL(ffi.dll._name)


class _Handle(ctypes.c_void_p):
    """An opaque C pointer that stays a ctypes object when returned (a plain
    c_void_p result becomes an int, which could not be passed back untyped)."""


def _bind(lib: ctypes.CDLL, name: str, restype: Any) -> Any:
    fn = getattr(lib, name)
    fn.restype = restype
    return fn


_store_new = _bind(_gil_held, "wasmtime_store_new", _Handle)
_store_delete = _bind(_gil_held, "wasmtime_store_delete", None)
_store_context = _bind(_gil_held, "wasmtime_store_context", _Handle)
_store_limiter = _bind(_gil_held, "wasmtime_store_limiter", None)
_wasi_config_new = _bind(_gil_held, "wasi_config_new", _Handle)
_wasi_config_set_stderr_custom = _bind(_gil_held, "wasi_config_set_stderr_custom", None)
_set_wasi = _bind(_gil_held, "wasmtime_context_set_wasi", ctypes.c_void_p)
_set_epoch_deadline = _bind(_gil_held, "wasmtime_context_set_epoch_deadline", None)
_set_deadline_callback = _bind(_gil_held, "wasmtime_store_epoch_deadline_callback", None)
_export_get = _bind(_gil_held, "wasmtime_instance_export_get", ctypes.c_bool)
_memory_data = _bind(_gil_held, "wasmtime_memory_data", ctypes.c_void_p)
_memory_data_size = _bind(_gil_held, "wasmtime_memory_data_size", ctypes.c_size_t)
_caller_export_get = _bind(_gil_held, "wasmtime_caller_export_get", ctypes.c_bool)
_caller_context = _bind(_gil_held, "wasmtime_caller_context", _Handle)
_memmove = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t)(
    ctypes._memmove_addr)  # type: ignore[attr-defined]
# These run wasm (a start function, or the export itself): they release the GIL.
_instantiate = _bind(_gil_released, "wasmtime_instance_pre_instantiate", ctypes.c_void_p)
_call = _bind(_gil_released, "wasmtime_func_call_unchecked", ctypes.c_void_p)

_TWO_ARGS = ctypes.c_size_t(2)
_EPOCH_DEADLINE = ctypes.c_uint64(1)
_NO_LIMIT = ctypes.c_int64(-1)
_NAME_LENGTHS: dict[bytes, ctypes.c_size_t] = {}


def _name_length(name: bytes) -> ctypes.c_size_t:
    length = _NAME_LENGTHS.get(name)
    if length is None:
        length = _NAME_LENGTHS.setdefault(name, ctypes.c_size_t(len(name)))
    return length


class CallFailed(Exception):
    """A trap or error while instantiating or calling; ``exit_code`` set for proc_exit,
    ``during`` naming the host's step (such as v2's ``alloc``) when it was not parse_line."""

    def __init__(self, message: str, exit_code: int | None = None, *,
                 during: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.during = during


class OutputTooLarge(CallFailed):
    """A component's answer holds more text than the output limit."""


#: Per memory slot, how much of a freed instance's memory wasmtime resets in
#: place (a memset back to the initial image, of at most this many bytes of
#: the accessible memory) instead of handing back to the kernel.  Without it
#: every line page-faults its input, stack and data pages anew and pays an
#: madvise on the way out: about 25 µs of a 60 µs line.  The reset is
#: wasmtime's, so isolation between lines holds.  The pool also caps every
#: memory at ``max_memory_bytes``, which is why per-line stores need no limiter.
KEEP_RESIDENT_BYTES = 1 << 20
#: The same for component plugins, which carry a language runtime whose every call
#: dirties megabytes (the QuickJS sample: 218 -> 113 µs a line with 8 MiB kept; the
#: CPython one 1210 -> 1060 µs).  Core plugins keep 1 MiB: resetting more costs a
#: 12 µs plugin more than the faults it saves.  Components get an engine of their own.
COMPONENT_KEEP_RESIDENT_BYTES = 8 << 20
#: The same for tables (function pointers; a page or two for most plugins).
#: Otherwise wasmtime madvises a freed table away: a syscall and a page fault
#: on every line (about 1 µs of 20).
TABLE_KEEP_RESIDENT_BYTES = 64 << 10


# --- how much address space the engine may reserve ---------------------------------
#
# By default every memory slot of the pool reserves wasmtime's 4 GiB plus guard
# regions, so compiled code needs no bounds checks: 18 slots are ~74 GiB of
# address space.  That is free on a 64-bit host, but a process under an
# address-space limit (ulimit -v, some batch schedulers and CI containers)
# would have wasmtime panic inside Engine() (an abort that cannot be caught).
# So the sizing is chosen before: the fast one where the limit allows it, else
# memories reserved only up to --memory-limit (bounds-checked code: see README,
# Performance, for what it costs), else instances allocated on demand; below
# that, a load error that names the limit.

MIB = 1 << 20
GIB = 1 << 30
WASMTIME_RESERVATION = 4 * GIB  # wasmtime's default on 64-bit hosts
WASMTIME_GUARD = 32 * MIB
SMALL_GUARD = 64 << 10
SLOT_OVERHEAD = 4 * MIB  # a slot's table and instance data, rounded up (measured ~0.2 MiB)
#: What the rest of the process may still map: threads' stacks, malloc arenas, code.
HEADROOM = 384 * MIB


class AddressSpaceTooSmall(RuntimeApiError):
    """The process's address-space limit leaves too little for even one instance."""


@dataclass(frozen=True)
class EngineSizing:
    pooled: bool = True
    #: Address space reserved per linear memory; None: wasmtime's default (no bounds checks).
    reservation: int | None = None
    guard: int | None = None
    #: Pool slots, when fewer than asked for (the fast sizing with fewer instances at once).
    slots: int | None = None

    @property
    def settings(self) -> str:
        """What of the sizing shapes compiled code (bounds checks): part of the cache key."""
        if self.reservation is None:
            return "reservation=default"
        return f"reservation={self.reservation},guard={self.guard}"

    def reserves(self, slots: int) -> int:
        """Address space the engine reserves (pooled), or its instances at once (on demand)."""
        per_memory = (self.reservation or WASMTIME_RESERVATION) + 2 * (self.guard or WASMTIME_GUARD)
        return (slots if self.pooled else 2) * (per_memory + SLOT_OVERHEAD)


def address_space_room() -> int | None:
    """Bytes this process may still map under its address-space limit; None: no limit."""
    if sys.platform == "win32":  # no such limit
        return None
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    return int(soft) - _mapped_now()


def _mapped_now() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return GIB  # no /proc (macOS): a generous guess of what is mapped already


def on_demand_sizing(max_memory_bytes: int) -> EngineSizing:
    """No pool, each memory reserving just the limit (bounds-checked code): what fits under
    an address-space limit whatever the number of memories an instance has."""
    return EngineSizing(False, -(-max_memory_bytes // SMALL_GUARD) * SMALL_GUARD, SMALL_GUARD)  # whole pages


def plan_engine(max_memory_bytes: int, slots: int, room: int | None,
                min_slots: int | None = None) -> EngineSizing:
    """The fastest sizing that fits in ``room`` bytes of address space (None: no limit).
    ``min_slots``: the fewest slots the caller can work with (its calls at once); the fast
    sizing with as many slots as fit, down to that, comes before bounds-checked code."""
    on_demand = on_demand_sizing(max_memory_bytes)
    fast = EngineSizing()
    if room is None or fast.reserves(slots) + HEADROOM <= room:
        return fast
    if min_slots is not None and min_slots < slots:
        fit = (room - HEADROOM) // fast.reserves(1)
        if fit >= min_slots:
            return EngineSizing(slots=min(fit, slots))
    for sizing in (replace(on_demand, pooled=True), on_demand):
        if sizing.reserves(slots) + HEADROOM <= room:
            return sizing
    assert room is not None  # without a limit the first sizing fits
    raise AddressSpaceTooSmall(
        f"the address-space limit (ulimit -v) leaves {format_size(max(room, 0))} to map: too little "
        f"for plugin instances of {format_size(max_memory_bytes)} (--memory-limit) and the rest of "
        f"vrclog (~{format_size(HEADROOM + on_demand.reserves(1))}); "
        "raise the limit or lower --memory-limit")


#: What one component instance may take from a components' pool: a component bundles
#: several core modules (componentize-py's: 14 modules, 3 memories), each instance of
#: which takes a core-instance slot, and its memories and tables slots of their own.  The
#: pool holds this much for every slot, so ``instance_slots`` components fit at once; one
#: that needs more fails to load, saying which limit (its probe instantiates it).
COMPONENT_CORE_INSTANCES = 32
COMPONENT_MEMORIES = 8
COMPONENT_TABLES = 32


def make_engine(max_memory_bytes: int, instance_slots: int,
                sizing: EngineSizing | None = None,
                keep_resident: int = KEEP_RESIDENT_BYTES, components: bool = False) -> wasmtime.Engine:
    """An engine with epoch interruption and (normally) a pooling allocator.

    The pool makes instantiation a slot reuse with copy-on-write memory
    instead of fresh mappings; slots bound how many instances live at once.
    ``sizing``: from ``plan_engine`` (the default plans for this process's limit).
    ``components``: a pool sized for component plugins (``COMPONENT_*`` per slot).
    """
    check_api()
    if sizing is None:
        sizing = plan_engine(max_memory_bytes, instance_slots, address_space_room())
    instance_slots = sizing.slots or instance_slots
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.cranelift_opt_level = "speed"
    if sizing.reservation is not None:
        config.memory_reservation = sizing.reservation
        config.memory_reservation_for_growth = 0
        config.memory_guard_size = sizing.guard or 0
    if sizing.pooled:
        pool = ffi.wasmtime_pooling_allocation_config_new()
        try:
            cores, memories, tables = (COMPONENT_CORE_INSTANCES, COMPONENT_MEMORIES, COMPONENT_TABLES) \
                if components else (1, 1, 1)
            ffi.wasmtime_pooling_allocation_config_total_core_instances_set(pool, instance_slots * cores)
            ffi.wasmtime_pooling_allocation_config_total_memories_set(pool, instance_slots * memories)
            ffi.wasmtime_pooling_allocation_config_total_tables_set(pool, instance_slots * tables)
            if components:
                ffi.wasmtime_pooling_allocation_config_total_component_instances_set(pool, instance_slots)
                ffi.wasmtime_pooling_allocation_config_max_core_instances_per_component_set(pool, cores)
                ffi.wasmtime_pooling_allocation_config_max_memories_per_component_set(pool, memories)
                ffi.wasmtime_pooling_allocation_config_max_tables_per_component_set(pool, tables)
            # No async calls: without this the pool reserves 1000 fiber stacks (2 GiB).
            ffi.wasmtime_pooling_allocation_config_total_stacks_set(pool, 0)
            ffi.wasmtime_pooling_allocation_config_max_memory_size_set(pool, max_memory_bytes)
            ffi.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(
                pool, keep_resident)
            ffi.wasmtime_pooling_allocation_config_table_keep_resident_set(
                pool, TABLE_KEEP_RESIDENT_BYTES)
            ffi.wasmtime_pooling_allocation_strategy_set(config.ptr(), pool)
        finally:
            ffi.wasmtime_pooling_allocation_config_delete(pool)
    return wasmtime.Engine(config)


# --- epoch deadline: one C callback for all stores, routed to a Python hook ---

DeadlineHook = Callable[[], "str | None"]
_deadline_hook: DeadlineHook | None = None
#: A KeyboardInterrupt came inside the deadline callback (it trapped the call instead).
_interrupted = False


def take_interrupted() -> bool:
    """Whether Ctrl-C trapped a call (see _on_deadline) since the last take: the caller
    raises KeyboardInterrupt then, which ctypes would otherwise have swallowed."""
    global _interrupted
    taken, _interrupted = _interrupted, False
    return taken
_CONTINUE = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE


def set_deadline_hook(hook: DeadlineHook) -> None:
    """Install the policy asked at every epoch tick a running call sees.

    The hook runs on the thread executing the wasm; it returns None to let the
    call go on for one more tick, or a message to trap it with.
    """
    global _deadline_hook
    _deadline_hook = hook


@ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.POINTER(ffi.wasmtime_context_t),
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ffi.wasmtime_update_deadline_kind_t),
)
def _on_deadline(_ctx: Any, _data: Any, delta: Any, kind: Any) -> int:
    global _interrupted
    try:
        verdict = _deadline_hook() if _deadline_hook is not None else None
    except KeyboardInterrupt:  # Ctrl-C where Python's own handler is in force (plugin check)
        _interrupted = True
        verdict = "vrclog: interrupted (Ctrl-C)"
    except BaseException as exc:  # noqa: BLE001 - must never unwind into wasmtime
        verdict = f"internal error in deadline hook: {exc!r}"
    if verdict is None:
        delta[0] = 1
        kind[0] = _CONTINUE
        return 0
    err = ffi.wasmtime_error_new(verdict.encode("utf-8", "replace"))
    return ctypes.cast(err, ctypes.c_void_p).value or 0


# --- WASI stderr: routed to a Python sink only when one is wanted ---

#: sink(token, bytes): token is what the Instance was created with.  wasmtime
#: may deliver the bytes from a worker thread, after the call has returned.
StderrSink = Callable[[int, bytes], None]
_stderr_sink: StderrSink | None = None


def set_stderr_sink(sink: StderrSink | None) -> None:
    global _stderr_sink
    _stderr_sink = sink


@ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_void_p, ctypes.POINTER(ctypes.c_ubyte), ctypes.c_size_t)
def _on_stderr(token: Any, buf: Any, size: int) -> int:
    try:
        if _stderr_sink is not None and size:
            _stderr_sink(token or 0, ctypes.string_at(buf, size))
    except BaseException:  # noqa: BLE001 - must never unwind into wasmtime
        pass
    return size


# A NULL finalizer: wasmtime skips it.  A Python callback here would be called
# while the interpreter shuts down (when the linker is freed) and crash it.
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()


# --- one fresh store per call ---

_KIND_FUNC = int(ffi.WASMTIME_EXTERN_FUNC.value)
_KIND_MEMORY = int(ffi.WASMTIME_EXTERN_MEMORY.value)
_i64_args = ffi.wasmtime_val_raw * 2


_ErrorPtr = ctypes.POINTER(ffi.wasmtime_error_t)
_TrapPtr = ctypes.POINTER(ffi.wasm_trap_t)


def _error_text(err: Any) -> CallFailed:
    """Takes ownership of a wasmtime_error_t (an address or a pointer) and frees it."""
    wrapped = wasmtime.WasmtimeError._from_ptr(ctypes.cast(err, _ErrorPtr))
    code = getattr(wrapped, "code", None)
    return CallFailed(str(wrapped), code if isinstance(wrapped, wasmtime.ExitTrap) else None)


def _take_trap(slot: Any) -> CallFailed:
    """Takes ownership of the trap in ``slot`` and clears the slot for the next call
    (wasmtime writes it on a trap only, never clears it)."""
    trap = _TrapPtr.from_buffer_copy(slot)
    ctypes.memset(ctypes.addressof(slot), 0, ctypes.sizeof(slot))
    return CallFailed(str(wasmtime.Trap._from_ptr(trap)))


def _prepare_store(store: _Handle, max_memory: ctypes.c_int64 | None, needs_wasi: bool,
                   stderr_token: ctypes.c_void_p | None) -> _Handle:
    """Memory cap (unless the engine's pool already enforces it: ``max_memory`` None),
    WASI (only when wanted) and the epoch deadline of a fresh store; its context."""
    ctx: _Handle = _store_context(store)
    if max_memory is not None:
        _store_limiter(store, max_memory, _NO_LIMIT, _NO_LIMIT, _NO_LIMIT, _NO_LIMIT)
    if needs_wasi or stderr_token is not None:
        wasi = _wasi_config_new()
        if stderr_token is not None:
            _wasi_config_set_stderr_custom(wasi, _on_stderr, stderr_token, _NO_FINALIZER)
        err = _set_wasi(ctx, wasi)
        if err:
            raise _error_text(err)
    _set_epoch_deadline(ctx, _EPOCH_DEADLINE)
    _set_deadline_callback(store, _on_deadline, None, _NO_FINALIZER)
    return ctx


def _token(stderr_token: int | None) -> ctypes.c_void_p | None:
    return None if stderr_token is None else ctypes.c_void_p(stderr_token)


class Instance:
    """One fresh instance in its own store; ``close`` frees both.

    Not thread-safe: each call owns its instance on one thread.
    """

    __slots__ = ("_ctx", "_inst", "_mem", "_store", "_trap")

    def __init__(self, engine: wasmtime.Engine, pre: wasmtime.InstancePre,
                 max_memory_bytes: int, stderr_token: int | None) -> None:
        self._store: _Handle | None = _store_new(_Handle(_address(engine.ptr())), None,
                                                 _NO_FINALIZER)
        try:
            self._ctx = _prepare_store(self._store, ctypes.c_int64(max_memory_bytes), True,
                                       _token(stderr_token))
            self._inst = ffi.wasmtime_instance_t()
            self._trap = _TrapPtr()
            err = _instantiate(_Handle(_address(pre.ptr())), self._ctx, ctypes.byref(self._inst),
                               ctypes.byref(self._trap))
            if err:
                raise _error_text(err)
            if self._trap:
                raise _take_trap(self._trap)
            self._mem = self._export(b"memory", _KIND_MEMORY)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._store is not None:
            _store_delete(self._store)
            self._store = None

    def _export(self, name: bytes, kind: int) -> Any:
        item = ffi.wasmtime_extern_t()
        if not _export_get(self._ctx, ctypes.byref(self._inst), name, _name_length(name),
                           ctypes.byref(item)):
            raise CallFailed(f"export {name.decode()} not found")
        if int(item.kind) != kind:
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
            raise _error_text(err)
        if self._trap:
            raise _take_trap(self._trap)
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


# --- host functions as unchecked C callbacks ---

#: impl(caller, *i32 args) -> result (None for no result); caller_memory(caller)
#: gives the calling instance's memory when the function needs it.
HostImpl = Callable[..., "int | None"]
_VALTYPES = {"i32": wasmtime.ValType.i32(), "i64": wasmtime.ValType.i64()}


class _Scratch(threading.local):
    """ctypes objects reused by every call on one thread (allocating them costs more than the call)."""

    def __init__(self) -> None:
        inst = ffi.wasmtime_instance_t()
        item = ffi.wasmtime_extern_t()  # the export being called
        mem_item = ffi.wasmtime_extern_t()  # the memory export
        trap = _TrapPtr()
        raw = _i64_args()
        # One tuple, read once per line: each attribute read on a thread-local costs
        # about as much as a ctypes call's conversion.  byrefs and fields keep their
        # objects alive.
        self.hot = (ctypes.byref(inst), ctypes.byref(item), ctypes.byref(item.of.func),
                    ctypes.byref(mem_item), ctypes.byref(mem_item.of.memory),
                    trap, ctypes.byref(trap), raw[0], raw[1], raw)
        caller_item = ffi.wasmtime_extern_t()  # the caller's memory, inside host calls
        self.caller = (caller_item, ctypes.byref(caller_item), ctypes.byref(caller_item.of.memory))


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
                 "_needs_wasi", "_pre_keep", "_pre_ptr", "_stderr_token")

    def __init__(self, engine: wasmtime.Engine, pre: wasmtime.InstancePre,
                 init: bytes | None, needs_wasi: bool, stderr_token: int | None,
                 min_memory_bytes: int = 0, max_memory_bytes: int | None = None) -> None:
        """``engine`` must come from make_engine.  A pooled one caps every memory at the
        limit, so these stores need no limiter of their own (one call less per line);
        for one that allocates on demand, ``max_memory_bytes`` is that cap.
        ``min_memory_bytes``: the memory's declared minimum, which every instance has
        from the start (memory never shrinks): input inside it needs no size query."""
        self._engine = engine  # keeps the engine alive as long as the pointer is used
        self._pre_keep = pre
        self._engine_ptr = _Handle(_address(engine.ptr()))
        self._pre_ptr = _Handle(_address(pre.ptr()))
        self._init = init
        self._init_len = _name_length(init) if init is not None else None
        self._needs_wasi = needs_wasi
        self._stderr_token = _token(stderr_token)
        self._min_memory = min_memory_bytes
        self._max_memory = None if max_memory_bytes is None else ctypes.c_int64(max_memory_bytes)

    def _instantiate(self, store: _Handle, hot: tuple[Any, ...]) -> Any:
        """A fresh instance in ``store``, its init export run and its memory looked up
        (into the scratch); returns the store's context."""
        inst_ref, item_ref, func_ref, mem_item_ref, _mem_ref, trap, trap_ref, _a0, _a1, raw = hot
        ctx = _prepare_store(store, self._max_memory, self._needs_wasi, self._stderr_token)
        err = _instantiate(self._pre_ptr, ctx, inst_ref, trap_ref)
        if err:
            raise _error_text(err)
        if trap:
            raise _take_trap(trap)
        if self._init is not None:
            if not _export_get(ctx, inst_ref, self._init, self._init_len, item_ref):
                raise CallFailed("init export not found")
            err = _call(ctx, func_ref, raw, _TWO_ARGS, trap_ref)
            if err:
                failed = _error_text(err)
                if failed.exit_code != 0:  # proc_exit(0) in _start is success
                    raise failed
            elif trap:
                raise _take_trap(trap)
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
            raise _error_text(err)
        if trap:
            raise _take_trap(trap)
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


def caller_memory(caller: Any) -> tuple[int, int]:
    """(base, size) of the calling instance's exported memory; (0, 0) if none."""
    item, item_ref, mem = _scratch.caller
    if not _caller_export_get(caller, _MEMORY, _MEMORY_LEN, item_ref) or int(item.kind) != _KIND_MEMORY:
        return 0, 0
    ctx = _caller_context(caller)
    return _memory_data(ctx, mem) or 0, _memory_data_size(ctx, mem)


def _i32_reader(count: int) -> Callable[[Any], tuple[int, ...]]:
    """Reads a host call's ``count`` i32 arguments.  Spelled out for the counts the
    host functions use: a loop over the slots costs twice as much, on every call."""
    if count == 0:
        return lambda raw: ()
    if count == 3:
        return lambda raw: (raw[0].i32, raw[1].i32, raw[2].i32)
    if count == 4:
        return lambda raw: (raw[0].i32, raw[1].i32, raw[2].i32, raw[3].i32)
    if count == 6:
        return lambda raw: (raw[0].i32, raw[1].i32, raw[2].i32, raw[3].i32, raw[4].i32, raw[5].i32)
    return lambda raw: tuple([raw[i].i32 for i in range(count)])


def define_host_func(linker: wasmtime.Linker, module: str, name: str, params: tuple[str, ...],
                     results: tuple[str, ...], impl: HostImpl, *, fallback: int = 0) -> None:
    """Defines an import served by ``impl`` through wasmtime's unchecked-call path.

    About 10x cheaper per call than wasmtime-py's ``Func`` trampoline.  The
    callback never lets an exception reach wasmtime: a failure yields
    ``fallback`` as the result.
    """
    args = _i32_reader(len(params))
    returns = bool(results)
    wide = results == ("i64",)

    @ffi.wasmtime_func_unchecked_callback_t
    def callback(_env: Any, caller: Any, raw: Any, _n: int) -> int:
        try:
            result = impl(caller, *args(raw))
            if returns:
                if result is None:
                    raw[0].i64 = fallback
                elif wide:
                    raw[0].i64 = result
                else:
                    raw[0].i32 = result
        except BaseException:  # noqa: BLE001 - must never unwind into wasmtime
            if returns:
                raw[0].i64 = fallback
        return 0

    # The C callback must live as long as the linker (and every instance it makes):
    # keep it on the linker, not in a global, so a freed runtime frees it too.
    kept = linker.__dict__.setdefault("_vrclog_host_callbacks", [])
    kept.append(callback)
    ty = wasmtime.FuncType([_VALTYPES[p] for p in params], [_VALTYPES[r] for r in results])
    mod, nm = module.encode(), name.encode()
    err = ffi.wasmtime_linker_define_func_unchecked(
        linker.ptr(), mod, len(mod), nm, len(nm), ty.ptr(), callback, None, _NO_FINALIZER)
    if err:
        raise _error_text(err)

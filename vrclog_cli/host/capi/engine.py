"""Engines, compiled modules, linkers and pre-linked instances: the set-up a run does
once, each native handle owned by one object (``close()`` or collection frees it).

An engine here has epoch interruption and, normally, a pooling allocator whose size
is planned first against the process's address-space limit.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ...limits import format_size
from ...records import record, replace
from . import library as lib
from .failures import WasmError, check
from .library import RuntimeApiError

if TYPE_CHECKING:
    import wasmtime


class _Owned:
    """One native handle, freed once by ``close`` (or when collected)."""

    _free: Any = None

    def __init__(self, address: int | None) -> None:
        if not address:
            raise WasmError(f"wasmtime could not make a {type(self).__name__.lower()}")
        self._address: int | None = address

    def ptr(self) -> ctypes.c_void_p:
        if self._address is None:
            raise WasmError(f"this {type(self).__name__.lower()} is closed")
        return ctypes.c_void_p(self._address)

    def close(self) -> None:
        address, self._address = self._address, None
        if address:
            type(self)._free(address)

    def __del__(self) -> None:
        self.close()


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


@record(frozen=True)
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


def _configure(config: int, max_memory_bytes: int, instance_slots: int, sizing: EngineSizing,
               keep_resident: int, components: bool, compiler: str = "cranelift") -> None:
    """Applies vrclog's settings to a wasm_config_t (at ``config``)."""
    lib.config_epoch_interruption_set(config, True)
    lib.config_cranelift_opt_level_set(config, lib.OPT_LEVEL_SPEED)
    if compiler == "winch":
        lib.config_strategy_set(config, lib.STRATEGY_WINCH)
    if sizing.reservation is not None:
        lib.config_memory_reservation_set(config, sizing.reservation)
        lib.config_memory_reservation_for_growth_set(config, 0)
        lib.config_memory_guard_size_set(config, sizing.guard or 0)
    if not sizing.pooled:
        return
    pool = lib.pooling_config_new()
    try:
        cores, memories, tables = (COMPONENT_CORE_INSTANCES, COMPONENT_MEMORIES, COMPONENT_TABLES) \
            if components else (1, 1, 1)
        lib.pool_total_core_instances(pool, instance_slots * cores)
        lib.pool_total_memories(pool, instance_slots * memories)
        lib.pool_total_tables(pool, instance_slots * tables)
        if components:
            lib.pool_total_component_instances(pool, instance_slots)
            lib.pool_max_core_instances_per_component(pool, cores)
            lib.pool_max_memories_per_component(pool, memories)
            lib.pool_max_tables_per_component(pool, tables)
        # No async calls: without this the pool reserves 1000 fiber stacks (2 GiB).
        lib.pool_total_stacks(pool, 0)
        lib.pool_max_memory_size(pool, max_memory_bytes)
        lib.pool_linear_memory_keep_resident(pool, keep_resident)
        lib.pool_table_keep_resident(pool, TABLE_KEEP_RESIDENT_BYTES)
        lib.pooling_strategy_set(config, pool)
    finally:
        lib.pooling_config_delete(pool)


class Engine(_Owned):
    """A wasm_engine_t with vrclog's settings (``make_engine``)."""

    _free = lib.engine_delete

    def increment_epoch(self) -> None:
        if self._address:
            lib.engine_increment_epoch(self._address)


def _sizing_for(max_memory_bytes: int, instance_slots: int,
                sizing: EngineSizing | None) -> tuple[EngineSizing, int]:
    if sizing is None:
        sizing = plan_engine(max_memory_bytes, instance_slots, address_space_room())
    return sizing, sizing.slots or instance_slots


def make_engine(max_memory_bytes: int, instance_slots: int, sizing: EngineSizing | None = None,
                keep_resident: int = KEEP_RESIDENT_BYTES) -> Engine:
    """An engine for core plugins, with epoch interruption and (normally) a pooling allocator.

    The pool makes instantiation a slot reuse with copy-on-write memory
    instead of fresh mappings; slots bound how many instances live at once.
    ``sizing``: from ``plan_engine`` (the default plans for this process's limit).
    """
    sizing, slots = _sizing_for(max_memory_bytes, instance_slots, sizing)
    config = lib.config_new()
    _configure(config, max_memory_bytes, slots, sizing, keep_resident, components=False)
    return Engine(lib.engine_new_with_config(config))  # the engine owns the config now


#: From this size on a component is an interpreter's (componentize-py's CPython: 17.5 MiB)
#: rather than a script engine's (QuickJS: 1.5 MiB).
LARGE_COMPONENT_BYTES = 8 << 20


def component_keep_resident(large: bool) -> int:
    """How much of each memory a component engine's pool keeps resident between instances.

    8 MiB took the QuickJS sample from 218 to ~105-160 µs a line (its memory is
    reset by a memset instead of fresh pages).  An interpreter's memory starts as a
    large image: resetting 8 MiB of it cost the CPython sample ~230 µs of ~1.4 ms a
    line (1 410 vs 1 170 µs with none; 512 KiB: 1 180), so large ones keep none.
    """
    return 0 if large else COMPONENT_KEEP_RESIDENT_BYTES


def component_compilers() -> tuple[str, ...]:
    """The compilers to try on a component, in turn: the next only where one refuses it.

    Winch, wasmtime's baseline compiler, where it is supported in full (x86-64): it
    compiled the 17.5 MiB CPython sample in 2.1 s of CPU, where Cranelift took 8.4 s,
    and its lines ran 5-10 % slower (an interpreter's lines are mostly instantiation);
    the QuickJS sample in 0.4 s against 1.9 s, lines as fast.  Cranelift elsewhere
    (Winch's aarch64 backend is still in development), and for what Winch refuses.
    """
    import platform  # here: components only

    return ("winch", "cranelift") if platform.machine().lower() in ("x86_64", "amd64") else ("cranelift",)


def make_component_engine(max_memory_bytes: int, instance_slots: int, sizing: EngineSizing | None = None,
                          keep_resident: int = COMPONENT_KEEP_RESIDENT_BYTES,
                          compiler: str = "cranelift") -> wasmtime.Engine:
    """The same settings for component plugins, as a wasmtime-py engine (what its component
    API compiles with); the pool sized for ``COMPONENT_*`` per slot; ``compiler``: one of
    ``component_compilers``."""
    import wasmtime

    sizing, slots = _sizing_for(max_memory_bytes, instance_slots, sizing)
    config = wasmtime.Config()
    _configure(ctypes.cast(config.ptr(), ctypes.c_void_p).value or 0, max_memory_bytes, slots, sizing,
               keep_resident, components=True, compiler=compiler)
    return wasmtime.Engine(config)


class Module(_Owned):
    """A compiled core module (wasmtime_module_t)."""

    _free = lib.module_delete

    @classmethod
    def compile(cls, engine: Engine, wasm: bytes) -> Module:
        """Compiles (and validates) a binary; WasmError with wasmtime's message if invalid."""
        out = ctypes.c_void_p()
        check(lib.module_new(engine.ptr(), wasm, len(wasm), ctypes.byref(out)))
        return cls(out.value)

    @classmethod
    def deserialize(cls, engine: Engine, compiled: bytes | memoryview) -> Module:
        """A module from ``serialize``'s bytes (made by a compatible engine: wasmtime checks);
        a writable buffer (a view into a bytearray) is passed without a copy."""
        out = ctypes.c_void_p()
        if isinstance(compiled, memoryview) and not compiled.readonly:
            buffer = (ctypes.c_char * len(compiled)).from_buffer(compiled)
            check(lib.module_deserialize(engine.ptr(), ctypes.addressof(buffer), len(compiled),
                                         ctypes.byref(out)))
            del buffer  # the view may be released once wasmtime has copied what it keeps
        else:
            check(lib.module_deserialize(engine.ptr(), bytes(compiled), len(compiled), ctypes.byref(out)))
        return cls(out.value)

    def serialize(self) -> bytes:
        vec = lib.ByteVec()
        check(lib.module_serialize(self.ptr(), ctypes.byref(vec)))
        return lib.take_bytes(vec)


class InstancePre(_Owned):
    """A module pre-linked against a linker's definitions: instantiating it only fills a slot."""

    _free = lib.instance_pre_delete
    #: The linker and module it was made from, kept alive as long as it is.
    made_from: tuple[Linker, Module] | None = None


class Linker(_Owned):
    """A wasmtime_linker_t: WASI and the host functions, for every plugin of a runtime."""

    _free = lib.linker_delete

    def __init__(self, engine: Engine) -> None:
        super().__init__(lib.linker_new(engine.ptr()))
        self._engine = engine  # the linker refers to it
        #: The host functions' C callbacks: they must live as long as the linker and
        #: every instance it makes, and be freed with it (not kept in a global).
        self.callbacks: list[Any] = []

    def define_wasi(self) -> None:
        check(lib.linker_define_wasi(self.ptr()))

    def allow_shadowing(self, allow: bool) -> None:
        """Whether a later definition of a name replaces an earlier one (else an error)."""
        lib.linker_allow_shadowing(self.ptr(), allow)

    def instantiate_pre(self, module: Module) -> InstancePre:
        out = ctypes.c_void_p()
        check(lib.linker_instantiate_pre(self.ptr(), module.ptr(), ctypes.byref(out)))
        pre = InstancePre(out.value)
        pre.made_from = (self, module)
        return pre


@contextmanager
def functype(params: tuple[str, ...], results: tuple[str, ...]) -> Iterator[int]:
    """A wasm_functype_t of i32/i64 parameters and results, freed on leaving."""
    kinds = {"i32": lib.VALKIND_I32, "i64": lib.VALKIND_I64}

    def vec(names: tuple[str, ...]) -> lib.ValtypeVec:
        out = lib.ValtypeVec()
        if not names:
            lib.valtype_vec_new_empty(ctypes.byref(out))
            return out
        items = (ctypes.c_void_p * len(names))(*[lib.valtype_new(kinds[n]) for n in names])
        lib.valtype_vec_new(ctypes.byref(out), len(names), items)  # takes the valtypes
        return out

    ty = lib.functype_new(ctypes.byref(vec(params)), ctypes.byref(vec(results)))  # takes the vecs
    try:
        yield ty
    finally:
        lib.functype_delete(ty)

"""wasmtime's shared library, loaded without importing wasmtime-py, and the C API
declarations the run path uses.

wasmtime-py's ``import wasmtime`` declares its whole C API (``_bindings``: ~3 000
functions and structures) before anything runs: 25-30 ms of every plugin run's
start-up, about a third of it.  A run needs some 60 of them.  This module finds
the same library file wasmtime-py ships (so the versions cannot differ) and
declares only those; wasmtime-py is imported only for what needs it (WAT text,
components, ``plugin info``).  tests/test_capi_library.py holds every layout
here equal to wasmtime-py's own.
"""

from __future__ import annotations

import ctypes
import os
import sys
from importlib.machinery import PathFinder
from typing import Any

from ...errors import PluginLoadError
from ..installed import wasmtime_version


class RuntimeApiError(PluginLoadError):
    """The installed wasmtime does not offer the C API this package relies on (exit 3,
    one line: a clear load error, not a crash)."""


def _library_path() -> str:
    """Where wasmtime-py keeps its shared library, found as it finds it: the package
    folder, then ``<platform>-<machine>/``."""
    spec = PathFinder.find_spec("wasmtime")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeApiError("the wasmtime package is not installed")
    package = next(iter(spec.submodule_search_locations))
    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    name = {"win32": "_wasmtime.dll", "darwin": "_libwasmtime.dylib"}.get(platform, "_libwasmtime.so")
    machine = (os.uname().machine if hasattr(os, "uname") else
               os.environ.get("PROCESSOR_ARCHITECTURE", "")).lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return os.path.join(package, f"{platform}-{machine}", name)


PATH = _library_path()
try:
    #: Bookkeeping calls (store set-up, export lookup, memory access) return in
    #: nanoseconds and never run wasm: bound through PyDLL they keep the GIL, so
    #: worker threads do not hand the GIL back and forth ~20 times per line.
    gil_held = ctypes.PyDLL(PATH)
    #: The calls that run wasm (instantiation, function calls) release it, which they
    #: must: a spinning plugin would otherwise stall every other thread.
    gil_released = ctypes.CDLL(PATH)
except OSError as exc:
    raise RuntimeApiError(f"cannot load wasmtime's library {PATH}: {exc}") from None


# --- structures (layouts as in wasmtime's C headers; each pinned by a test) ---

class Handle(ctypes.c_void_p):
    """An opaque C pointer that stays a ctypes object when returned (a plain
    c_void_p result becomes an int, which could not be passed back untyped)."""


class ByteVec(ctypes.Structure):
    """wasm_byte_vec_t (also wasm_name_t and wasm_message_t)."""
    _fields_ = [("size", ctypes.c_size_t), ("data", ctypes.POINTER(ctypes.c_uint8))]


class ValtypeVec(ctypes.Structure):
    """wasm_valtype_vec_t."""
    _fields_ = [("size", ctypes.c_size_t), ("data", ctypes.POINTER(ctypes.c_void_p))]


class InstanceRef(ctypes.Structure):
    """wasmtime_instance_t."""
    _fields_ = [("store_id", ctypes.c_uint64), ("private", ctypes.c_size_t)]


class FuncRef(ctypes.Structure):
    """wasmtime_func_t."""
    _fields_ = [("store_id", ctypes.c_uint64), ("private", ctypes.c_void_p)]


class _StoreIndex(ctypes.Structure):
    _fields_ = [("store_id", ctypes.c_uint64), ("private1", ctypes.c_uint32)]


class MemoryRef(ctypes.Structure):
    """wasmtime_memory_t (wasmtime_table_t and wasmtime_tag_t share its layout)."""
    _fields_ = [("index", _StoreIndex), ("private2", ctypes.c_uint32)]


class _GlobalRef(ctypes.Structure):
    _fields_ = [("store_id", ctypes.c_uint64), ("private1", ctypes.c_uint32),
                ("private2", ctypes.c_uint32), ("private3", ctypes.c_uint32)]


class _ExternUnion(ctypes.Union):
    _fields_ = [("func", FuncRef), ("global_", _GlobalRef), ("table", MemoryRef),
                ("memory", MemoryRef), ("sharedmemory", ctypes.c_void_p), ("tag", MemoryRef)]


class Extern(ctypes.Structure):
    """wasmtime_extern_t: an export's kind and the item."""
    _fields_ = [("kind", ctypes.c_uint8), ("of", _ExternUnion)]


class ValRaw(ctypes.Union):
    """wasmtime_val_raw_t: one argument or result slot of an unchecked call."""
    _fields_ = [("i32", ctypes.c_int32), ("i64", ctypes.c_int64), ("f32", ctypes.c_float),
                ("f64", ctypes.c_double), ("v128", ctypes.c_uint8 * 16), ("anyref", ctypes.c_uint32),
                ("externref", ctypes.c_uint32), ("exnref", ctypes.c_uint32), ("funcref", ctypes.c_void_p)]


EXTERN_FUNC = 0
EXTERN_MEMORY = 3
VALKIND_I32 = 0
VALKIND_I64 = 1
OPT_LEVEL_SPEED = 1
STRATEGY_WINCH = 2  # wasmtime_strategy_t: auto 0, cranelift 1, winch 2
UPDATE_DEADLINE_CONTINUE = 0

class _Opaque(ctypes.Structure):
    """A C type known only by pointer."""


#: A wasmtime_caller_t*: a pointer type, so a callback receives a ctypes object that
#: can be passed on untyped (a c_void_p argument arrives as a Python int).
CallerPtr = ctypes.POINTER(_Opaque)
#: wasmtime_func_unchecked_callback_t(env, caller, args_and_results, count) -> wasm_trap_t*
UncheckedCallback = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, CallerPtr,
                                     ctypes.POINTER(ValRaw), ctypes.c_size_t)
#: wasmtime_store_epoch_deadline_callback's callback -> wasmtime_error_t*
DeadlineCallback = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p,
                                    ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint8))
#: wasi_config_set_stderr_custom's callback(token, bytes, size) -> written
StderrCallback = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_void_p, ctypes.POINTER(ctypes.c_ubyte),
                                  ctypes.c_size_t)
Finalizer = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
#: A NULL finalizer: wasmtime skips it.  A Python callback here would be called
#: while the interpreter shuts down (when the linker is freed) and crash it.
NO_FINALIZER = Finalizer()


# --- functions ---

def declare(lib: ctypes.CDLL, name: str, restype: Any, argtypes: list[Any] | None = None) -> Any:
    try:
        fn = getattr(lib, name)
    except AttributeError:
        raise RuntimeApiError(f"wasmtime {wasmtime_version()} lacks C API function {name} vrclog "
                             "needs (vrclog supports the wasmtime versions its pyproject.toml "
                             "allows)") from None
    fn.restype = restype
    if argtypes is not None:
        fn.argtypes = argtypes
    return fn


P = ctypes.c_void_p
SIZE = ctypes.c_size_t
U32, U64, I64 = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int64

# The per-line calls deliberately have no ``argtypes``: ctypes then skips its
# per-argument conversion, which costs more than most of these calls do
# (0.66 against 0.30 µs for memory_data_size).  The price is discipline: every
# argument must already be a ctypes object of the C type (a Python int would be
# passed as a 32-bit C int), so pointers travel as ``Handle``s or byrefs and
# sizes as prebuilt ``c_size_t``s.
store_new = declare(gil_held, "wasmtime_store_new", Handle)
store_delete = declare(gil_held, "wasmtime_store_delete", None)
store_context = declare(gil_held, "wasmtime_store_context", Handle)
store_limiter = declare(gil_held, "wasmtime_store_limiter", None)
wasi_config_new = declare(gil_held, "wasi_config_new", Handle)
wasi_config_set_stderr_custom = declare(gil_held, "wasi_config_set_stderr_custom", None)
context_set_wasi = declare(gil_held, "wasmtime_context_set_wasi", P)
context_set_epoch_deadline = declare(gil_held, "wasmtime_context_set_epoch_deadline", None)
store_epoch_deadline_callback = declare(gil_held, "wasmtime_store_epoch_deadline_callback", None)
instance_export_get = declare(gil_held, "wasmtime_instance_export_get", ctypes.c_bool)
memory_data = declare(gil_held, "wasmtime_memory_data", P)
memory_data_size = declare(gil_held, "wasmtime_memory_data_size", SIZE)
caller_export_get = declare(gil_held, "wasmtime_caller_export_get", ctypes.c_bool)
caller_context = declare(gil_held, "wasmtime_caller_context", Handle)
# These run wasm (a start function, or the export itself): they release the GIL.
instance_pre_instantiate = declare(gil_released, "wasmtime_instance_pre_instantiate", P)
func_call_unchecked = declare(gil_released, "wasmtime_func_call_unchecked", P)

# Set-up calls, once per run: typed, so ctypes checks what they are given.
config_new = declare(gil_held, "wasm_config_new", P, [])
config_epoch_interruption_set = declare(gil_held, "wasmtime_config_epoch_interruption_set", None,
                                         [P, ctypes.c_bool])
config_strategy_set = declare(gil_held, "wasmtime_config_strategy_set", None, [P, ctypes.c_uint8])
config_cranelift_opt_level_set = declare(gil_held, "wasmtime_config_cranelift_opt_level_set", None,
                                          [P, ctypes.c_uint8])
config_memory_reservation_set = declare(gil_held, "wasmtime_config_memory_reservation_set", None,
                                         [P, U64])
config_memory_reservation_for_growth_set = declare(
    gil_held, "wasmtime_config_memory_reservation_for_growth_set", None, [P, U64])
config_memory_guard_size_set = declare(gil_held, "wasmtime_config_memory_guard_size_set", None, [P, U64])
pooling_config_new = declare(gil_held, "wasmtime_pooling_allocation_config_new", P, [])
pooling_config_delete = declare(gil_held, "wasmtime_pooling_allocation_config_delete", None, [P])
pooling_strategy_set = declare(gil_held, "wasmtime_pooling_allocation_strategy_set", None, [P, P])
_POOL = "wasmtime_pooling_allocation_config_"
pool_total_core_instances = declare(gil_held, _POOL + "total_core_instances_set", None, [P, U32])
pool_total_memories = declare(gil_held, _POOL + "total_memories_set", None, [P, U32])
pool_total_tables = declare(gil_held, _POOL + "total_tables_set", None, [P, U32])
pool_total_component_instances = declare(gil_held, _POOL + "total_component_instances_set", None,
                                          [P, U32])
pool_max_core_instances_per_component = declare(
    gil_held, _POOL + "max_core_instances_per_component_set", None, [P, U32])
pool_max_memories_per_component = declare(gil_held, _POOL + "max_memories_per_component_set", None,
                                           [P, U32])
pool_max_tables_per_component = declare(gil_held, _POOL + "max_tables_per_component_set", None, [P, U32])
pool_total_stacks = declare(gil_held, _POOL + "total_stacks_set", None, [P, U32])
pool_max_memory_size = declare(gil_held, _POOL + "max_memory_size_set", None, [P, SIZE])
pool_linear_memory_keep_resident = declare(gil_held, _POOL + "linear_memory_keep_resident_set", None,
                                            [P, SIZE])
pool_table_keep_resident = declare(gil_held, _POOL + "table_keep_resident_set", None, [P, SIZE])
engine_new_with_config = declare(gil_held, "wasm_engine_new_with_config", P, [P])
engine_delete = declare(gil_held, "wasm_engine_delete", None, [P])
engine_increment_epoch = declare(gil_held, "wasmtime_engine_increment_epoch", None, [P])

# Compiling releases the GIL: it takes from milliseconds to seconds.
module_new = declare(gil_released, "wasmtime_module_new", P,
                      [P, ctypes.c_char_p, SIZE, ctypes.POINTER(P)])
module_deserialize = declare(gil_released, "wasmtime_module_deserialize", P,
                             [P, P, SIZE, ctypes.POINTER(P)])
module_serialize = declare(gil_held, "wasmtime_module_serialize", P, [P, ctypes.POINTER(ByteVec)])
module_delete = declare(gil_held, "wasmtime_module_delete", None, [P])
linker_new = declare(gil_held, "wasmtime_linker_new", P, [P])
linker_delete = declare(gil_held, "wasmtime_linker_delete", None, [P])
linker_allow_shadowing = declare(gil_held, "wasmtime_linker_allow_shadowing", None, [P, ctypes.c_bool])
linker_define_wasi = declare(gil_held, "wasmtime_linker_define_wasi", P, [P])
linker_define_func_unchecked = declare(
    gil_held, "wasmtime_linker_define_func_unchecked", P,
    [P, ctypes.c_char_p, SIZE, ctypes.c_char_p, SIZE, P, UncheckedCallback, P, Finalizer])
linker_instantiate_pre = declare(gil_held, "wasmtime_linker_instantiate_pre", P, [P, P, ctypes.POINTER(P)])
instance_pre_delete = declare(gil_held, "wasmtime_instance_pre_delete", None, [P])
valtype_new = declare(gil_held, "wasm_valtype_new", P, [ctypes.c_uint8])
valtype_vec_new = declare(gil_held, "wasm_valtype_vec_new", None,
                           [ctypes.POINTER(ValtypeVec), SIZE, ctypes.POINTER(P)])
valtype_vec_new_empty = declare(gil_held, "wasm_valtype_vec_new_empty", None, [ctypes.POINTER(ValtypeVec)])
functype_new = declare(gil_held, "wasm_functype_new", P, [ctypes.POINTER(ValtypeVec)] * 2)
functype_delete = declare(gil_held, "wasm_functype_delete", None, [P])

error_new = declare(gil_held, "wasmtime_error_new", P, [ctypes.c_char_p])
error_message = declare(gil_held, "wasmtime_error_message", None, [P, ctypes.POINTER(ByteVec)])
error_exit_status = declare(gil_held, "wasmtime_error_exit_status", ctypes.c_bool,
                             [P, ctypes.POINTER(ctypes.c_int)])
error_delete = declare(gil_held, "wasmtime_error_delete", None, [P])
trap_message = declare(gil_held, "wasm_trap_message", None, [P, ctypes.POINTER(ByteVec)])
trap_delete = declare(gil_held, "wasm_trap_delete", None, [P])
trap_new = declare(gil_held, "wasmtime_trap_new", P, [ctypes.c_char_p, SIZE])
byte_vec_delete = declare(gil_held, "wasm_byte_vec_delete", None, [ctypes.POINTER(ByteVec)])


def take_bytes(vec: ByteVec) -> bytes:
    """A wasm_byte_vec_t's bytes, the vector then freed."""
    try:
        return ctypes.string_at(vec.data, vec.size) if vec.size else b""
    finally:
        byte_vec_delete(ctypes.byref(vec))

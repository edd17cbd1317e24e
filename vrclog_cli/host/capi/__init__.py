"""The only code that touches wasmtime's C API, one concern a module:

- ``library``: wasmtime's shared library, loaded without importing wasmtime-py, and
  the declarations the run path uses;
- ``failures``: wasmtime's errors and traps as exceptions;
- ``engine``: engines (sized against the address-space limit), modules, linkers,
  pre-linked instances;
- ``trampolines``: the C callbacks into Python (epoch deadline, WASI stderr, host
  functions);
- ``calls``: one call in a fresh instance, the per-line path of each ABI version;
- ``components``: the per-line path of component plugins (imports wasmtime-py).

wasmtime-py's high-level wrappers cost hundreds of microseconds per fresh
instance (a pooled instantiation in wasmtime itself costs a few).  Everything
that runs wasm releases the GIL (ctypes CDLL calls).
"""

from __future__ import annotations

from .calls import Instance, LineCaller
from .engine import (
    COMPONENT_KEEP_RESIDENT_BYTES,
    KEEP_RESIDENT_BYTES,
    LARGE_COMPONENT_BYTES,
    AddressSpaceTooSmall,
    Engine,
    EngineSizing,
    InstancePre,
    Linker,
    Module,
    address_space_room,
    component_compilers,
    component_keep_resident,
    make_component_engine,
    make_engine,
    on_demand_sizing,
    plan_engine,
)
from .failures import CallFailed, OutputTooLarge, WasmError
from .library import RuntimeApiError
from .trampolines import (
    HostImpl,
    HostTrap,
    caller_memory,
    define_host_func,
    set_deadline_hook,
    set_stderr_sink,
    take_interrupted,
)

__all__ = [
    "COMPONENT_KEEP_RESIDENT_BYTES", "KEEP_RESIDENT_BYTES", "LARGE_COMPONENT_BYTES",
    "AddressSpaceTooSmall", "CallFailed", "Engine", "EngineSizing", "HostImpl", "HostTrap", "Instance",
    "InstancePre", "LineCaller", "Linker", "Module", "OutputTooLarge", "RuntimeApiError", "WasmError",
    "address_space_room", "caller_memory", "component_compilers", "component_keep_resident",
    "define_host_func", "make_component_engine", "make_engine", "on_demand_sizing", "plan_engine",
    "set_deadline_hook", "set_stderr_sink", "take_interrupted",
]

"""The C callbacks wasmtime calls into Python: the epoch deadline (one for all stores,
routed to a hook), WASI stderr (routed to a sink), and host functions as unchecked
calls.  None of them ever lets an exception unwind into wasmtime."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any

from . import library as lib
from .engine import Linker, functype
from .failures import check

# --- epoch deadline: one C callback for all stores, routed to a Python hook ---

DeadlineHook = Callable[[], "str | None"]
_deadline_hook: DeadlineHook | None = None
#: A KeyboardInterrupt came inside the deadline callback (it trapped the call instead).
_interrupted = False


def take_interrupted() -> bool:
    """Whether Ctrl-C trapped a call (see on_deadline) since the last take: the caller
    raises KeyboardInterrupt then, which ctypes would otherwise have swallowed."""
    global _interrupted
    taken, _interrupted = _interrupted, False
    return taken


def set_deadline_hook(hook: DeadlineHook) -> None:
    """Install the policy asked at every epoch tick a running call sees.

    The hook runs on the thread executing the wasm; it returns None to let the
    call go on for one more tick, or a message to trap it with.
    """
    global _deadline_hook
    _deadline_hook = hook


@lib.DeadlineCallback
def on_deadline(_ctx: Any, _data: Any, delta: Any, kind: Any) -> int:
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
        kind[0] = lib.UPDATE_DEADLINE_CONTINUE
        return 0
    return lib.error_new(verdict.encode("utf-8", "replace")) or 0


# --- WASI stderr: routed to a Python sink only when one is wanted ---

#: sink(token, bytes): token is what the Instance was created with.  wasmtime
#: may deliver the bytes from a worker thread, after the call has returned.
StderrSink = Callable[[int, bytes], None]
_stderr_sink: StderrSink | None = None


def set_stderr_sink(sink: StderrSink | None) -> None:
    global _stderr_sink
    _stderr_sink = sink


@lib.StderrCallback
def on_stderr(token: Any, buf: Any, size: int) -> int:
    try:
        if _stderr_sink is not None and size:
            _stderr_sink(token or 0, ctypes.string_at(buf, size))
    except BaseException:  # noqa: BLE001 - must never unwind into wasmtime
        pass
    return size


# --- host functions as unchecked C callbacks ---

#: impl(caller, *i32 args) -> result (None for no result); caller_memory(caller)
#: gives the calling instance's memory when the function needs it.
HostImpl = Callable[..., "int | None"]

_MEMORY = b"memory"
_MEMORY_LEN = ctypes.c_size_t(len(_MEMORY))


class _CallerScratch(threading.local):
    """The extern a host call's memory lookup is written into, one per thread."""

    def __init__(self) -> None:
        item = lib.Extern()
        self.caller = (item, ctypes.byref(item), ctypes.byref(item.of.memory))


_scratch = _CallerScratch()


def caller_memory(caller: Any) -> tuple[int, int]:
    """(base, size) of the calling instance's exported memory; (0, 0) if none."""
    item, item_ref, mem = _scratch.caller
    if not lib.caller_export_get(caller, _MEMORY, _MEMORY_LEN, item_ref) or item.kind != lib.EXTERN_MEMORY:
        return 0, 0
    ctx = lib.caller_context(caller)
    return lib.memory_data(ctx, mem) or 0, lib.memory_data_size(ctx, mem)


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


class HostTrap(Exception):
    """Raised by a host function's impl: the calling wasm traps with this message (as
    wasmtime's own WASI functions do on a pointer out of bounds)."""


def _new_trap(message: str) -> int:
    encoded = message.encode("utf-8", "replace")
    return lib.trap_new(encoded, len(encoded)) or 0


def define_host_func(linker: Linker, module: str, name: str, params: tuple[str, ...],
                     results: tuple[str, ...], impl: HostImpl, *, fallback: int = 0) -> None:
    """Defines an import served by ``impl`` through wasmtime's unchecked-call path.

    About 10x cheaper per call than wasmtime-py's ``Func`` trampoline.  The
    callback never lets an exception reach wasmtime: HostTrap traps the call, any
    other failure yields ``fallback`` as the result.
    """
    args = _i32_reader(len(params))
    returns = bool(results)
    wide = results == ("i64",)

    @lib.UncheckedCallback
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
        except HostTrap as trap:
            return _new_trap(str(trap))
        except BaseException:  # noqa: BLE001 - must never unwind into wasmtime
            if returns:
                raw[0].i64 = fallback
        return 0

    linker.callbacks.append(callback)
    mod, nm = module.encode(), name.encode()
    with functype(params, results) as ty:
        check(lib.linker_define_func_unchecked(linker.ptr(), mod, len(mod), nm, len(nm), ty, callback,
                                               None, lib.NO_FINALIZER))

"""How a failure inside wasmtime reaches Python: its error and trap objects turned into
exceptions carrying wasmtime's own message (the C objects freed)."""

from __future__ import annotations

import ctypes
from typing import Any

from . import library as lib


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


class WasmError(Exception):
    """wasmtime refused something at set-up: a module that does not compile, an entry of
    the compiled-module cache it cannot take, a link that fails.  The message is wasmtime's."""


def error_message(err: int) -> tuple[str, int | None]:
    """Takes ownership of a wasmtime_error_t (an address) and frees it: its message, and
    the exit code when it is a WASI proc_exit."""
    try:
        code = ctypes.c_int(0)
        exited = lib.error_exit_status(err, ctypes.byref(code))
        vec = lib.ByteVec()
        lib.error_message(err, ctypes.byref(vec))
        return lib.take_bytes(vec).decode("utf-8", "replace"), code.value if exited else None
    finally:
        lib.error_delete(err)


def call_failed(err: Any) -> CallFailed:
    """A call's wasmtime_error_t (an address or a pointer) as a CallFailed; frees it."""
    message, code = error_message(ctypes.cast(err, ctypes.c_void_p).value or 0)
    return CallFailed(message, code)


def check(err: int | None) -> None:
    """Raises WasmError for a set-up call's error (freeing it); nothing for NULL."""
    if err:
        raise WasmError(error_message(err)[0])


def take_trap(slot: Any) -> CallFailed:
    """Takes ownership of the trap in ``slot`` (a wasm_trap_t* holder) and clears the slot
    for the next call (wasmtime writes it on a trap only, never clears it)."""
    trap = ctypes.cast(slot, ctypes.c_void_p).value
    ctypes.memset(ctypes.addressof(slot), 0, ctypes.sizeof(slot))
    vec = lib.ByteVec()
    try:
        lib.trap_message(trap, ctypes.byref(vec))
        size = vec.size - 1 if vec.size else 0  # wasm_message_t counts its NUL
        text = ctypes.string_at(vec.data, size).decode("utf-8", "replace") if size > 0 else ""
        lib.byte_vec_delete(ctypes.byref(vec))
    finally:
        lib.trap_delete(trap)
    return CallFailed(text)

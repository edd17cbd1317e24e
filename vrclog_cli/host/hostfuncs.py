"""Host functions imported by plugins from module ``env`` (design.md section 2).

Every one of them must return normally: wasmtime-py keeps a raised exception
in one process-global slot shared by all threads, so an exception here could
surface in another thread's call.  Out-of-range pointers therefore give 0
(or, for ``log``, nothing), never an exception.
"""

from __future__ import annotations

import ctypes
import functools
import time
from collections.abc import Callable
from json.encoder import encode_basestring as _json_string  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

from ..limits import Limits
from . import budget, capi
from .abi import HOST_MODULE, HOST_SIGNATURES, WASI_MODULE

if TYPE_CHECKING:
    from .capi.components import HostCalls

ENOTSUP = 58  # WASI errno
NO_FIT = -1  # 0xFFFFFFFF as a signed i32: the submatch array does not fit
LogSink = Callable[[int, bytes], None]

_NO_SPAN = (-1, -1)
_UNANCHORED: Any = None  # RE2's search mode, set by _re2() before any pattern exists


@functools.cache
def _re2() -> tuple[Any, Any]:
    """(RE2, its options): re2 imported on the first pattern, not at start-up (~3-5 ms of
    every plugin run, and most lines of most runs call no regex)."""
    global _UNANCHORED
    with budget.off_the_clock():  # one-time: not the work of the line that happens to be first
        import re2
        from re2 import _re2

    options = re2.Options()
    options.max_mem = 8 << 20
    options.log_errors = False
    _UNANCHORED = _re2.RE2.Anchor.UNANCHORED  # a plain global: _spans runs on every host call
    return _re2.RE2, options


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: bytes) -> Any | None:
    """A compiled RE2 pattern, or None when it is invalid (cached either way).

    The google-re2 package's own RE2 object, not its re-style wrapper: the
    wrapper's search and groups cost about 5 µs a call on top of RE2's 1.5,
    and a plugin may call these on every line.
    """
    new_re2, options = _re2()
    regex = new_re2(pattern, options)
    return regex if regex.ok() else None


def _spans(regex: Any, text: bytes) -> list[tuple[int, int]] | None:
    """Byte spans of the leftmost match and each group ((-1, -1): unmatched); None: no match."""
    spans: list[tuple[int, int]] = regex.Match(_UNANCHORED, text, 0, len(text))
    return None if spans[0] == _NO_SPAN else spans


def _span(base: int, size: int, ptr: int, length: int) -> bytes | None:
    """The bytes at [ptr, ptr+len) of a memory, or None when out of range."""
    ptr &= 0xFFFFFFFF
    length &= 0xFFFFFFFF
    if base == 0 or ptr + length > size:
        return None
    return ctypes.string_at(base + ptr, length)


def _regex(limits: Limits, pattern: bytes | None) -> Any | None:
    """The compiled pattern; None for one out of range, over the pattern limit or invalid."""
    if pattern is None or len(pattern) > limits.max_pattern_bytes:
        return None
    return compile_pattern(pattern)


def regex_match(limits: Limits, base: int, size: int, s_ptr: int, s_len: int,
                re_ptr: int, re_len: int) -> int:
    text = _span(base, size, s_ptr, s_len)
    regex = _regex(limits, _span(base, size, re_ptr, re_len))
    return 1 if text is not None and regex is not None and _spans(regex, text) is not None else 0


def regex_find_submatch(limits: Limits, base: int, size: int, s_ptr: int, s_len: int,
                        re_ptr: int, re_len: int, out_ptr: int, out_max: int) -> int:
    text = _span(base, size, s_ptr, s_len)
    regex = _regex(limits, _span(base, size, re_ptr, re_len))
    if text is None or regex is None or (spans := _spans(regex, text)) is None:
        return 0
    # A compact JSON array of strings: the whole match, then each group ("" when unmatched).
    encoded = ("[" + ",".join([_json_string(text[a:b].decode("utf-8", "replace")) if a >= 0 else '""'
                               for a, b in spans]) + "]").encode()
    out_ptr &= 0xFFFFFFFF
    out_max &= 0xFFFFFFFF
    if len(encoded) > out_max:
        return NO_FIT
    if out_ptr + len(encoded) > size:
        return 0
    ctypes.memmove(base + out_ptr, encoded, len(encoded))
    return len(encoded)


class LogLimiter:
    """At most ``per_second`` messages a second per plugin; the rest are dropped."""

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self._window_start = -1.0
        self._count = 0

    def allow(self) -> bool:
        # The window opens at its first message: windows aligned to whole seconds let
        # a burst that straddles a second boundary through twice (20 in a millisecond).
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._count = now, 0
        self._count += 1
        return self._count <= self.per_second


def log_message(limits: Limits, base: int, size: int, ptr: int, length: int) -> bytes | None:
    """The message bytes of a log call, cut at the limit; None for an out-of-range pair."""
    if _span(base, size, ptr, 0) is None or (ptr & 0xFFFFFFFF) + (length & 0xFFFFFFFF) > size:
        return None
    return _span(base, size, ptr, min(length & 0xFFFFFFFF, limits.log_message_bytes))


def define_host_functions(linker: capi.Linker, limits: Limits,
                          allow_log: Callable[[], bool], on_log: LogSink) -> None:
    """Defines the ``env`` imports on a linker shared by every plugin and thread.

    ``allow_log`` is asked first, so a plugin flooding ``log`` costs one
    check per call, not a memory read and a decode.
    """

    def match(caller: object, *args: int) -> int:
        return regex_match(limits, *capi.caller_memory(caller), *args)

    def submatch(caller: object, *args: int) -> int:
        return regex_find_submatch(limits, *capi.caller_memory(caller), *args)

    def log(caller: object, level: int, ptr: int, length: int) -> None:
        if allow_log():
            message = log_message(limits, *capi.caller_memory(caller), ptr, length)
            if message is not None:
                on_log(level, message)

    def now_ms(_caller: object) -> int:
        return time.time_ns() // 1_000_000

    impls: dict[str, capi.HostImpl] = {
        "regex_match": match, "regex_find_submatch": submatch, "log": log, "now_ms": now_ms}
    for name, (params, results) in HOST_SIGNATURES.items():
        capi.define_host_func(linker, HOST_MODULE, name, params, results, impls[name])


def component_host_calls(limits: Limits, allow_log: Callable[[], bool], on_log: LogSink) -> HostCalls:
    """The ``vrclog:plugin/host`` interface for components: the functions above, on
    strings instead of memory ranges (a ``capi.components.HostCalls``)."""
    from .capi.components import HostCalls

    def log(level: int, message: bytes) -> None:
        if allow_log():
            on_log(level, message[: limits.log_message_bytes])

    def match(text: bytes, pattern: bytes) -> bool:
        regex = _regex(limits, pattern)
        return regex is not None and _spans(regex, text) is not None

    def find(text: bytes, pattern: bytes) -> list[bytes] | None:
        regex = _regex(limits, pattern)
        spans = _spans(regex, text) if regex is not None else None
        if spans is None:
            return None
        return [text[a:b] if a >= 0 else b"" for a, b in spans]

    def now_ms() -> int:
        return time.time_ns() // 1_000_000

    return HostCalls(log, match, find, now_ms)


# WASI errnos fd_write returns.
EBADF = 8
ENOMEM = 48
STDOUT, STDERR = 1, 2
#: The bytes one WASI call may take from the plugin's memory (wasmtime's "hostcall fuel"):
#: the iovec array, then the buffer written, count against it; past it, ENOMEM.
WASI_CALL_BYTES = 128 << 20
_NO_BYTES = (0, 0)


def _out_of_bounds(start: int, length: int) -> capi.HostTrap:
    return capi.HostTrap(f"Pointer out of bounds: Region {{ start: {start}, len: {length} }}")


def _first_buffer(base: int, size: int, iovs: int, iovs_len: int) -> tuple[int, int] | None:
    """(pointer, length) of the first non-empty iovec ((0, 0): none; None: over the bytes a
    call may take), found as WASI finds it: one iovec after another, trapping at the first
    one out of bounds.  The in-bounds ones are searched in one pass, not one by one (a
    plugin may pass 16 million empty ones)."""
    room = WASI_CALL_BYTES - 8 * iovs_len
    if room < 0:
        return None
    whole = (size - iovs) // 8 if iovs <= size else 0
    searched = min(iovs_len, whole)
    vectors = ctypes.string_at(base + iovs, 8 * searched) if searched else b""
    lengths = memoryview(vectors).cast("I")[1::2].tobytes()  # native order: zero or not
    zeros = len(lengths) - len(lengths.lstrip(b"\0"))
    if zeros < len(lengths):
        at = zeros // 4 * 8
        length = int.from_bytes(vectors[at + 4:at + 8], "little")
        return (int.from_bytes(vectors[at:at + 4], "little"), length) if length <= room else None
    if iovs_len > searched:  # the next iovec is out of bounds
        raise _out_of_bounds(iovs + 8 * searched, 8)
    return _NO_BYTES


def fd_write(base: int, size: int, fd: int, iovs: int, iovs_len: int, nwritten: int,
             on_stderr: Callable[[int, int], None]) -> int:
    """WASI's ``fd_write`` with stdio behind it that discards, answering as wasmtime's own
    does (its errnos, results and traps, in its order; a test pins it to wasmtime's),
    except that a stderr write's (address, length) goes to ``on_stderr``, on the plugin's
    own thread.

    Why not wasmtime's with its custom stderr stream: wasmtime hands each write to that
    stream to a thread of its own while the plugin's waits, so a plugin flooding stderr
    spent CPU its budget (its thread's time) never saw: a 1 s budget used 2.1 s of CPU on
    a quiet machine, 3.7 s on a busy one.
    """
    fd, iovs, iovs_len, nwritten = (fd & 0xFFFFFFFF, iovs & 0xFFFFFFFF, iovs_len & 0xFFFFFFFF,
                                    nwritten & 0xFFFFFFFF)
    if base == 0:
        raise capi.HostTrap("missing required memory export")
    buffer = _first_buffer(base, size, iovs, iovs_len)
    if buffer is None:
        return ENOMEM
    if fd not in (STDOUT, STDERR):
        return EBADF
    ptr, length = buffer
    if ptr + length > size:
        raise _out_of_bounds(ptr, length)
    if fd == STDERR and length:
        on_stderr(base + ptr, length)
    if nwritten + 4 > size:
        raise _out_of_bounds(nwritten, 4)
    ctypes.memmove(base + nwritten, length.to_bytes(4, "little"), 4)
    return 0


def define_wasi(linker: capi.Linker, limits: Limits, wants_stderr: Callable[[], bool] | None = None,
                on_stderr: Callable[[bytes], None] | None = None) -> None:
    """WASI with nothing behind it, minus the one call that could block forever.

    ``poll_oneoff`` with a clock subscription sleeps inside the host, where no
    epoch deadline can interrupt it; plugins get ENOTSUP instead.  With ``on_stderr``,
    ``fd_write`` is the one above: each stderr write's bytes (cut at the log message limit)
    go to ``on_stderr`` when ``wants_stderr`` (asked first, so a flood over the rate reads
    nothing).
    """
    linker.define_wasi()
    linker.allow_shadowing(True)
    capi.define_host_func(linker, WASI_MODULE, "poll_oneoff", ("i32",) * 4, ("i32",),
                          lambda *_: ENOTSUP)
    if on_stderr is not None:
        def show(address: int, length: int) -> None:
            if wants_stderr is None or wants_stderr():
                on_stderr(ctypes.string_at(address, min(length, limits.log_message_bytes)))

        def write(caller: object, fd: int, iovs: int, iovs_len: int, nwritten: int) -> int:
            return fd_write(*capi.caller_memory(caller), fd, iovs, iovs_len, nwritten, show)

        capi.define_host_func(linker, WASI_MODULE, "fd_write", ("i32",) * 4, ("i32",), write)
    linker.allow_shadowing(False)

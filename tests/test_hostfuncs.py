"""Host functions: RE2 semantics, bounds checks, limits, logging."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import time

import pytest
import re2
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vrclog_cli.errors import PluginRuntimeError
from vrclog_cli.host import hostfuncs
from vrclog_cli.host.plugin import PluginLog, Runtime
from vrclog_cli.limits import Limits

from .conftest import HOST_IMPORTS, RETURN_NO_EVENTS, wat_plugin

LIMITS = Limits()


class Memory:
    """A ctypes buffer standing in for a plugin's linear memory."""

    def __init__(self, size: int = 65536) -> None:
        self.buf = ctypes.create_string_buffer(size)
        self.base = ctypes.addressof(self.buf)
        self.size = size
        self.top = 0

    def put(self, data: bytes | str) -> tuple[int, int]:
        raw = data.encode() if isinstance(data, str) else data
        at = self.top
        ctypes.memmove(self.base + at, raw, len(raw))
        self.top += len(raw)
        return at, len(raw)

    def match(self, text: str, pattern: str) -> int:
        return hostfuncs.regex_match(LIMITS, self.base, self.size, *self.put(text), *self.put(pattern))

    def submatch(self, text: str, pattern: str, out_max: int = 1024) -> tuple[int, object]:
        out = 60000
        n = hostfuncs.regex_find_submatch(
            LIMITS, self.base, self.size, *self.put(text), *self.put(pattern), out, out_max)
        if n <= 0:
            return n, None
        return n, json.loads(ctypes.string_at(self.base + out, n))


def test_regex_match_re2_syntax() -> None:
    mem = Memory()
    assert mem.match("Round 12 begins", r"Round \d+ begins") == 1
    assert mem.match("round 12", r"(?i)ROUND") == 1
    assert mem.match("abc", r"^b") == 0
    assert mem.match("abc", r"(unclosed") == 0  # invalid pattern: no match


def test_submatch_groups_and_unmatched_group() -> None:
    n, groups = Memory().submatch("Player Ｃｈｅｒｒｙ wins", r"Player (?P<name>\S+) (wins)(!)?")
    assert n > 0
    assert groups == ["Player Ｃｈｅｒｒｙ wins", "Ｃｈｅｒｒｙ", "wins", ""]


PATTERNS = [r"Player (?P<name>\S+) (wins)(!)?", r"(\d+)|(x)", r"^(a*)(b?)$", r"\[VRPoker\] (.+?)\s*$",
            r"(?i)(é+)(.)", r"()", r"(unclosed", r"(\w+)@(\w+)?"]


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="ab1x !Éé日\"\\\x00\n[]VRPokerPlayerwins@", max_size=40)
       | st.binary(max_size=20).map(lambda b: b.decode("latin-1")),
       pattern=st.sampled_from(PATTERNS), raw=st.booleans())
@example(text="1x", pattern=r"(\d+)|(x)", raw=False)
@example(text="Player \xe9\xff wins", pattern=PATTERNS[0], raw=True)
def test_regex_functions_answer_as_the_re2_module_would(text: str, pattern: str, raw: bool) -> None:
    # The host calls RE2 through google-re2's own object, not its re-style module
    # functions; the answers must be what those functions give.
    data = text.encode("latin-1", "replace") if raw else text.encode()  # raw: may be invalid UTF-8
    try:
        match = re2.compile(pattern.encode(), options=hostfuncs._re2()[1]).search(data)
    except re2.error:
        match = None
    mem = Memory()
    t, n = mem.put(data)
    p, m = mem.put(pattern)
    assert hostfuncs.regex_match(LIMITS, mem.base, mem.size, t, n, p, m) == (match is not None)
    got = hostfuncs.regex_find_submatch(LIMITS, mem.base, mem.size, t, n, p, m, 60000, 4096)
    if match is None:
        assert got == 0
    else:
        groups = [match.group(0), *(g if g is not None else b"" for g in match.groups())]
        expected = json.dumps([g.decode("utf-8", "replace") for g in groups], ensure_ascii=False,
                              separators=(",", ":")).encode()
        assert ctypes.string_at(mem.base + 60000, got) == expected


def test_re2_is_imported_on_the_first_pattern_not_at_start_up() -> None:
    code = ("import sys; import vrclog_cli.host.hostfuncs as h; before = 're2' in sys.modules; "
            "h.compile_pattern(b'x'); print(before, 're2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_submatch_no_match_and_no_fit() -> None:
    mem = Memory()
    assert mem.submatch("abc", "x")[0] == 0
    assert mem.submatch("abcdef", "(abc)(def)", out_max=5)[0] == hostfuncs.NO_FIT


def test_catastrophic_regex_is_linear() -> None:
    started = time.monotonic()
    assert Memory().match("a" * 40 + "!", r"(a+)+$") == 0
    assert time.monotonic() - started < 0.5


def test_pattern_over_512_bytes_refused() -> None:
    mem = Memory()
    assert mem.match("a", "a" + "?" * 0 + "|a" * 255) == 1  # 511 bytes: allowed
    assert mem.match("a", "a" + "|a" * 256) == 0  # 513 bytes: refused


@pytest.mark.parametrize(("ptr", "length"), [(-16, 4), (65530, 100), (0, -1), (-1, -1)])
def test_out_of_range_spans_give_zero(ptr: int, length: int) -> None:
    mem = Memory()
    p, n = mem.put("abc")
    assert hostfuncs.regex_match(LIMITS, mem.base, mem.size, ptr, length, p, n) == 0
    assert hostfuncs.regex_match(LIMITS, mem.base, mem.size, p, n, ptr, length) == 0
    if ptr < 0 or ptr + 7 > mem.size:  # the 7-byte answer ["abc"] cannot be written there
        assert hostfuncs.regex_find_submatch(LIMITS, mem.base, mem.size, p, n, p, n, ptr, 100) == 0


def test_log_limiter() -> None:
    limiter = hostfuncs.LogLimiter(10)
    assert sum(limiter.allow() for _ in range(1000)) == 10




def expect_zero(call: str) -> str:
    return f"(if (i32.ne {call} (i32.const 0)) (then unreachable))\n"


def test_out_of_range_calls_from_a_real_plugin(make_plugin) -> None:  # type: ignore[no-untyped-def]
    body = (
        expect_zero("(call $match (i32.const -16) (i32.const 100) (i32.const 0) (i32.const 1))")
        + expect_zero("(call $match (i32.const 0) (i32.const 1) (i32.const 0x2ffff) (i32.const 9))")
        + expect_zero("(call $match (i32.const 0) (i32.const -1) (i32.const 0) (i32.const -1))")
        + expect_zero("(call $sub (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0) "
                      "(i32.const -8) (i32.const 64))")
        + expect_zero("(call $sub (i32.const -1) (i32.const -1) (i32.const 0) (i32.const 0) "
                      "(i32.const 0) (i32.const 64))")
        + "(call $log (i32.const 2) (i32.const -100) (i32.const 50))\n"
        + "(call $log (i32.const 2) (i32.const 0) (i32.const -1))\n"
        + "(if (i64.lt_s (call $now) (i64.const 1700000000000)) (then unreachable))\n"
        + RETURN_NO_EVENTS)
    logs: list[PluginLog] = []
    runtime = Runtime(on_log=logs.append)
    assert runtime.load(make_plugin(wat_plugin(body, imports=HOST_IMPORTS))).call("x") == []
    assert logs == []


def test_catastrophic_and_huge_patterns_from_a_plugin(make_plugin) -> None:  # type: ignore[no-untyped-def]
    evil = "(a+)+$"
    subject = "a" * 40 + "!"
    big = "(" + "a|" * 5000 + "b)"  # 10 KiB pattern
    extra = (f'(data (i32.const 0x22000) "{evil}")(data (i32.const 0x22100) "{subject}")'
             f'(data (i32.const 0x23000) "{big}")')
    body = (
        expect_zero(f"(call $match (i32.const 0x22100) (i32.const {len(subject)}) "
                    f"(i32.const 0x22000) (i32.const {len(evil)}))")
        + expect_zero(f"(call $match (i32.const 0x22100) (i32.const {len(subject)}) "
                      f"(i32.const 0x23000) (i32.const {len(big)}))")
        + RETURN_NO_EVENTS)
    runtime = Runtime()
    plugin = runtime.load(make_plugin(wat_plugin(body, imports=HOST_IMPORTS, extra=extra)))
    started = time.monotonic()
    assert plugin.call("x") == []
    assert time.monotonic() - started < 0.5


def test_log_messages_cut_rate_limited_and_replaced(make_plugin) -> None:  # type: ignore[no-untyped-def]
    extra = '(data (i32.const 0x22000) "bad \\ff byte")(data (i32.const 0x23000) "' + "x" * 300 + '")'
    body = """
      (call $log (i32.const 3) (i32.const 0x22000) (i32.const 10))
      (call $log (i32.const 1) (i32.const 0x23000) (i32.const 300))
      (local.set $p (i32.const 0))
      (loop $again
        (call $log (i32.const 0) (i32.const 0x22000) (i32.const 3))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br_if $again (i32.lt_u (local.get $p) (i32.const 10000))))
      """ + RETURN_NO_EVENTS
    logs: list[PluginLog] = []
    # 10 002 host calls: ~50 ms of CPU on a busy runner, the default budget (this checks the
    # cap on messages, not the budget).
    runtime = Runtime(Limits(timeout_s=10), on_log=logs.append)
    plugin = runtime.load(make_plugin(wat_plugin(body, imports=HOST_IMPORTS, extra=extra)))
    assert plugin.call("x") == []
    assert len(logs) == 10
    assert (logs[0].level_name, logs[0].message) == ("error", "bad \ufffd byte")
    assert logs[1].message == "x" * 256


def test_wasi_stdout_never_leaks_and_stderr_is_captured(make_plugin, capfd) -> None:  # type: ignore[no-untyped-def]
    imports = ('(import "wasi_snapshot_preview1" "fd_write" '
               "(func $write (param i32 i32 i32 i32) (result i32)))")
    extra = ('(data (i32.const 0x22000) "LEAK to stdout\\n")'
             '(data (i32.const 0x22100) "\\00\\20\\02\\00\\0f\\00\\00\\00")')  # iovec {0x22000, 15}
    body = """
      (drop (call $write (i32.const 1) (i32.const 0x22100) (i32.const 1) (i32.const 0x22200)))
      (drop (call $write (i32.const 2) (i32.const 0x22100) (i32.const 1) (i32.const 0x22200)))
      """ + RETURN_NO_EVENTS
    logs: list[PluginLog] = []
    runtime = Runtime(on_log=logs.append, capture_stderr=True)
    assert runtime.load(make_plugin(wat_plugin(body, imports=imports, extra=extra))).call("x") == []
    captured = capfd.readouterr()
    assert "LEAK" not in captured.out and "LEAK" not in captured.err
    assert [(log.level_name, log.message) for log in logs] == [("stderr", "LEAK to stdout")]


def test_wasi_has_no_files(make_plugin) -> None:  # type: ignore[no-untyped-def]
    # path_open on fd 3 (a preopen, if there were one) must fail with EBADF.
    imports = ('(import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 '
               "i64 i64 i32 i32) (result i32)))")
    extra = '(data (i32.const 0x22000) "etc/passwd")'
    body = """
      (if (i32.eqz (call $open (i32.const 3) (i32.const 0) (i32.const 0x22000) (i32.const 10)
                           (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 0x22100)))
          (then unreachable))
      """ + RETURN_NO_EVENTS
    assert Runtime().load(make_plugin(wat_plugin(body, imports=imports, extra=extra))).call("x") == []


def test_poll_oneoff_cannot_block(make_plugin) -> None:  # type: ignore[no-untyped-def]
    imports = ('(import "wasi_snapshot_preview1" "poll_oneoff" '
               "(func $poll (param i32 i32 i32 i32) (result i32)))")
    body = """
      (if (i32.eqz (call $poll (i32.const 0x22000) (i32.const 0x22100) (i32.const 1) (i32.const 0x22200)))
          (then unreachable))
      """ + RETURN_NO_EVENTS
    started = time.monotonic()
    assert Runtime().load(make_plugin(wat_plugin(body, imports=imports))).call("x") == []
    assert time.monotonic() - started < 0.5


def test_trap_inside_plugin_after_host_call_is_clean(make_plugin) -> None:  # type: ignore[no-untyped-def]
    body = "(drop (call $now)) unreachable"
    with pytest.raises(PluginRuntimeError, match="unreachable"):
        Runtime().load(make_plugin(wat_plugin(body, imports=HOST_IMPORTS))).call("x")


# --- a core module's WASI fd_write under --verbose: wasmtime's answers, stderr on our thread ---

FD_WRITE_CALLER = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "w") (result i64)
    (i64.extend_i32_u (call $w (i32.load (i32.const 0)) (i32.load (i32.const 4))
                               (i32.load (i32.const 8)) (i32.load (i32.const 12))))))"""
FD_WRITE_DATA = {0x1000: b"hello world\n", 0x1010: b"second\n", 0xFFF0: b"end of memory!!!"}


def fd_write_outcome(linking: tuple[object, object, int | None], fd: int, iovs: int, iovs_len: int,
                     nwritten: int, vectors: list[tuple[int, int]]) -> tuple[object, int | None]:
    """(errno, or "trap"), and the u32 at ``nwritten`` after the call (None: out of memory)."""
    import struct

    import wasmtime

    from vrclog_cli.host import capi

    engine, linker, stderr_token = linking
    assert isinstance(engine, capi.Engine) and isinstance(linker, capi.Linker)
    pre = linker.instantiate_pre(capi.Module.compile(engine, bytes(wasmtime.wat2wasm(FD_WRITE_CALLER))))
    inst = capi.Instance(engine, pre, 1 << 20, stderr_token)
    try:
        size = inst.memory()[1]
        for at, data in FD_WRITE_DATA.items():
            inst.write(at, data)
        table = b"".join(struct.pack("<II", ptr, length) for ptr, length in vectors)
        if iovs < size:
            inst.write(iovs, table[:size - iovs])
        if nwritten + 4 <= size:
            inst.write(nwritten, b"\xee" * 4)
        inst.write(0, struct.pack("<IIII", fd, iovs, iovs_len, nwritten))
        try:
            errno: object = inst.call(inst.func(b"w"))
        except capi.CallFailed:
            errno = "trap"
        after = int.from_bytes(inst.read(nwritten, 4), "little") if nwritten + 4 <= size else None
        return errno, after
    finally:
        inst.close()


@pytest.fixture(scope="module")
def fd_write_linkers():  # type: ignore[no-untyped-def]
    """wasmtime's own WASI, its stderr to a custom sink (the reference), and ours."""
    from vrclog_cli.host import capi, plugin

    engine = capi.make_engine(1 << 20, 8)
    theirs, ours = capi.Linker(engine), capi.Linker(engine)
    theirs.define_wasi()
    written: dict[str, list[bytes]] = {"theirs": [], "ours": []}
    hostfuncs.define_wasi(ours, Limits(log_message_bytes=4096), None, written["ours"].append)
    Runtime()  # installs vrclog's hooks, then the test's sink in their place for a while
    capi.set_stderr_sink(lambda _token, data: written["theirs"].append(data))
    try:
        yield (engine, theirs, 1), (engine, ours, None), written
    finally:
        capi.set_stderr_sink(plugin._route_stderr)


FD_WRITE_CASES = {
    "stderr": (2, 0x100, 1, 0x200, [(0x1000, 12)]),
    "stdout": (1, 0x100, 1, 0x200, [(0x1000, 12)]),
    "stdin": (0, 0x100, 1, 0x200, [(0x1000, 12)]),
    "no such fd": (3, 0x100, 1, 0x200, [(0x1000, 12)]),
    "the first non-empty iovec only": (2, 0x100, 3, 0x200, [(0x1000, 0), (0x1010, 7), (0x1000, 12)]),
    "none": (2, 0x100, 0, 0x200, []),
    "all empty": (2, 0x100, 2, 0x200, [(0x1000, 0), (0x30000, 0)]),
    "iovecs past the end": (2, 0xFFFC, 1, 0x200, []),
    "stdin, iovecs past the end": (0, 0xFFFC, 1, 0x200, []),
    "no such fd, iovecs past the end": (9, 0xFFFC, 1, 0x200, []),
    "a buffer past the end": (2, 0x100, 1, 0x200, [(0xFFF0, 100)]),
    "stdout, a buffer past the end": (1, 0x100, 1, 0x200, [(0xFFF0, 100)]),
    "a buffer to the end": (2, 0x100, 1, 0x200, [(0xFFF0, 16)]),
    "the count past the end": (2, 0x100, 1, 0xFFFE, [(0x1000, 12)]),
    "more iovecs than memory, the first non-empty": (2, 0x100, 10_000, 0x200, [(0x1000, 12)]),
    "more iovecs than memory, all empty": (2, 0xFF00, 10_000, 0x200, [(0x1000, 0)] * 32),
    "the most iovecs": (2, 0x100, 0xFFFFFE, 0x200, [(0x1000, 12)]),
    "one too many iovecs": (2, 0x100, 0xFFFFFF, 0x200, [(0x1000, 12)]),
    "stdin, too many iovecs": (0, 0x100, 0xFFFFFF, 0x200, [(0x1000, 12)]),
    "the most u32": (2, 0xFFFFFFF8, 0xFFFFFFFF, 0xFFFFFFFC, [(0x1000, 12)]),
}


@pytest.mark.parametrize("case", FD_WRITE_CASES, ids=list(FD_WRITE_CASES))
def test_fd_write_answers_as_wasmtimes_own(fd_write_linkers, case: str) -> None:  # type: ignore[no-untyped-def]
    theirs, ours, written = fd_write_linkers
    written["theirs"].clear()
    written["ours"].clear()
    args = FD_WRITE_CASES[case]
    assert fd_write_outcome(ours, *args) == fd_write_outcome(theirs, *args)
    assert written["ours"] == ([b"".join(written["theirs"])] if written["theirs"] else [])


@settings(max_examples=150, deadline=None)
@given(fd=st.sampled_from([0, 1, 2, 3, 0xFFFFFFFF]),
       iovs=st.sampled_from([0x100, 0xFFE0, 0xFFF8, 0xFFFC, 0x10000, 0xFFFFFFF8]),
       iovs_len=st.sampled_from([0, 1, 2, 4, 4096, 0xFFFFFE, 0xFFFFFF, 0xFFFFFFFF]),
       nwritten=st.sampled_from([0x200, 0xFFFC, 0xFFFE, 0xFFFFFFFE]),
       vectors=st.lists(st.tuples(st.sampled_from([0, 0x1000, 0x1010, 0xFFF0, 0x10000, 0xFFFFFFFF]),
                                  st.sampled_from([0, 1, 7, 16, 17, 0xFFFFFFFF])), max_size=4))
def test_fd_write_matches_wasmtimes_on_any_arguments(fd_write_linkers, fd: int, iovs: int,  # type: ignore[no-untyped-def]
                                                     iovs_len: int, nwritten: int,
                                                     vectors: list[tuple[int, int]]) -> None:
    theirs, ours, written = fd_write_linkers
    written["theirs"].clear()
    written["ours"].clear()
    args = (fd, iovs, iovs_len, nwritten, vectors)
    assert fd_write_outcome(ours, *args) == fd_write_outcome(theirs, *args)
    assert written["ours"] == ([b"".join(written["theirs"])] if written["theirs"] else [])

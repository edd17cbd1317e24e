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

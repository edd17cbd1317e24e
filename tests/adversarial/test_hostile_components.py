"""Hostile component plugins (design.md 2d), through the real vrclog process.

Each misbehaves on the line starting with B only: the good lines' events must
still come out, in order, with the exit code and one-line diagnostic of the
same fault in a core plugin.  Components whose world does not match are
refused at load (exit 3) with what is wrong named.  Nothing here may abort the
process (wasmtime panics on a WASI call without a context and on a string
argument that is not UTF-8: both are kept from happening).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..components import answering_events, component_wat, host_find_wat, wat_bytes
from ..conftest import VRCLOG_BIN, python
from .harness import run_vrclog, write_plugin

GOOD = ["good one", "good two"]
NOT_UTF8 = '(data (i32.const 2048) "' + wat_bytes(b"a\xff\xfe") + '")'

FAILING: dict[str, tuple[str, str, int, str]] = {
    # name: (bad core WAT, extra core items, exit code, diagnostic fragment)
    "trap": ("unreachable", "", 4, "runtime_error: p.wat: wasm `unreachable` instruction executed"),
    "endless loop": ("(loop $l (br $l))", "", 5, "timeout: p.wat: plugin ran longer than the 50 ms budget"),
    "memory bomb": ("""
        (block $full (loop $more
          (br_if $full (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
          (br $more)))
        unreachable""", "", 4, "runtime_error: p.wat: wasm `unreachable` instruction executed"),
    "list past the end of memory": ("""
        (i32.store8 (i32.const 256) (i32.const 0))
        (i32.store (i32.const 260) (i32.const 1024))
        (i32.store (i32.const 264) (i32.const 0x10000000))
        (return (i32.const 256))""", "", 4, "runtime_error: p.wat:"),
    "string that is not UTF-8": ("""
        (i32.store8 (i32.const 256) (i32.const 0))
        (i32.store (i32.const 260) (i32.const 1024))
        (i32.store (i32.const 264) (i32.const 1))
        (i32.store (i32.const 1024) (i32.const 2048))
        (i32.store (i32.const 1028) (i32.const 3))
        (return (i32.const 256))""", NOT_UTF8, 4,
        "runtime_error: p.wat: invalid utf-8"),
    "empty event type": (answering_events(1), "", 4, 'event 0 has an empty "type"'),
    "answer over the output limit": (answering_events(2000, "x" * 1000),
                                     f'(data (i32.const 2048) "{"x" * 1000}")', 4,
                                     "output is over the 1 MiB limit"),
    "plugin error": ("""
        (i32.store8 (i32.const 256) (i32.const 1))
        (i32.store (i32.const 260) (i32.const 2048))
        (i32.store (i32.const 264) (i32.const 7))
        (i32.store8 (i32.const 268) (i32.const 1))
        (i32.store (i32.const 272) (i32.const 2056))
        (i32.store (i32.const 276) (i32.const 4))
        (return (i32.const 256))""", '(data (i32.const 2048) "bad day") (data (i32.const 2056) "E042")',
        4, "plugin_error (E042): p.wat: bad day"),
}


@pytest.mark.parametrize("name", FAILING)
def test_a_hostile_component_fails_its_line_only(tmp_path: Path, name: str) -> None:
    bad, extra, code, fragment = FAILING[name]
    plugin = write_plugin(tmp_path, "p", component_wat(bad, core_extra=extra))
    outcome = run_vrclog("--plugin", plugin)
    assert outcome.code == code, outcome.stderr
    assert outcome.lines == GOOD
    assert outcome.stderr.startswith("<stdin>:2: ") and fragment in outcome.stderr, outcome.stderr
    assert len(outcome.stderr.splitlines()) == 1


@pytest.mark.posix  # resource.getrusage
def test_a_huge_list_of_events_is_bounded_and_survived(tmp_path: Path) -> None:
    """200 000 events of an empty type (17.6 MB in the guest): wasmtime copies them into a
    value tree (~19x; its hostcall fuel refuses answers much larger), vrclog refuses the
    line, and the process lives with its peak memory measured."""
    plugin = write_plugin(tmp_path, "p", component_wat(answering_events(200_000)))
    # A fresh parent, so its children's peak RSS is this vrclog's alone.
    measure = ("import resource, subprocess, sys; "
               "p = subprocess.run(sys.argv[1:], input=b'good one\\nBAD line\\ngood two\\n', "
               "capture_output=True); "
               "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "sys.stdout.write(p.stdout.decode() + p.stderr.decode())")
    result = python(measure, VRCLOG_BIN, "parse", "--plugin", plugin, "--timeout", "5s", "--jobs", "1")
    code, peak_kib = map(int, result.stdout.split("\n", 1)[0].split())
    assert code == 4, result.stdout
    assert '{"type":"good one"}\n{"type":"good two"}\n' in result.stdout
    assert 'event 0 has an empty "type"' in result.stdout
    assert peak_kib < 600 * 1024  # measured: ~380 MB


def test_a_host_answer_of_half_a_character_is_made_utf8_not_an_abort(tmp_path: Path) -> None:
    """RE2's \\C matches one byte: group 1 of "é" is half a character.  wasmtime aborts the
    process on a string that is not UTF-8, so the host replaces it before handing it over."""
    plugin = write_plugin(tmp_path, "p", host_find_wat(b"(\\C)"))
    outcome = run_vrclog("--plugin", plugin, stdin="abc\né\n".encode())
    assert outcome.code == 0, outcome.stderr
    assert outcome.lines == ["a", "\ufffd"]


def test_the_host_interface_from_a_hand_written_component(tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path, "p", host_find_wat(rb"^(\w+) \d+"))
    outcome = run_vrclog("--plugin", plugin, stdin=b"alpha 1\nno digits\nbeta 22\n")
    assert outcome.code == 0 and outcome.lines == ["alpha", "beta"], outcome.stderr


REFUSED: dict[str, tuple[str, str]] = {
    # name: (component WAT, what the one-line load error says)
    "mistyped export": (component_wat(export_result="string"),
                        "export parse-line has type func(string) -> string, "
                        "expected func(string) -> result<list<"),
    "missing export": (component_wat().replace('(func (export "parse-line")', '(func (export "parse")'),
                       "component does not export parse-line (world vrclog:plugin@1.0.0 plugin; "
                       "exports: event, plugin-error, parse"),
    "foreign import": (component_wat(
        component_head='(import "evil:net/socket" (instance $net (export "connect" (func))))'
                       '\n  (core func $connect (canon lower (func $net "connect")))',
        core_imports='(import "net" "connect" (func $connect))',
        instantiate_with='(with "net" (instance (export "connect" (func $connect))))'),
        "import evil:net/socket is not available (components may import WASI 0.2 "
        "interfaces and vrclog:plugin/host@1.0.0)"),
    "mistyped host function": (component_wat(
        component_head='(import "vrclog:plugin/host@1.0.0" (instance $host '
                       '(export "log" (func (param "message" string)))))'),
        "import vrclog:plugin/host@1.0.0#log has type func(string), expected func(u8, string)"),
    "unknown host function": (component_wat(
        component_head='(import "vrclog:plugin/host@1.0.0" (instance $host (export "exec" (func))))'),
        "import vrclog:plugin/host@1.0.0#exec is not a host function"),
    "WASI interface wasmtime lacks": (component_wat(
        component_head='(import "wasi:nothing/here@0.2.0" (instance $x (export "f" (func))))'),
        "import wasi:nothing/here@0.2.0 is not available"),
    "unknown WASI package": (component_wat(
        component_head='(import "wasi:evil/pwn@0.2.0" (instance $x (export "f" (func))))'),
        "import wasi:evil/pwn@0.2.0 is not available"),
    "unknown interface of a WASI package": (component_wat(
        component_head='(import "wasi:cli/evil@0.2.0" (instance $x (export "f" (func))))'),
        "import wasi:cli/evil@0.2.0 is not available"),
    "trap while starting": (component_wat(core_extra="(start $boom) (func $boom unreachable)"),
                            "cannot instantiate: wasm `unreachable` instruction executed"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_component_that_cannot_be_used_is_refused_at_load(tmp_path: Path, name: str) -> None:
    wat, fragment = REFUSED[name]
    plugin = write_plugin(tmp_path, "p", wat)
    outcome = run_vrclog("--plugin", plugin)
    assert outcome.code == 3, outcome.stderr
    assert outcome.stdout == ""
    assert outcome.stderr.startswith(f"vrclog: error: {plugin}: ") and fragment in outcome.stderr
    assert len(outcome.stderr.splitlines()) == 1


def test_a_refused_component_is_not_compiled_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The verdict is cached like compiled code: a refused interpreter's component was
    compiled again on every run (7 s and 390 MB each time)."""
    from wasmtime import component as wc

    from vrclog_cli import PluginLoadError, Runtime

    monkeypatch.setenv("VRCLOG_CACHE_DIR", str(tmp_path / "cache"))
    wat, fragment = REFUSED["foreign import"]
    plugin = write_plugin(tmp_path, "p", wat)
    with Runtime() as runtime, pytest.raises(PluginLoadError) as first:
        runtime.load(plugin)
    assert fragment in str(first.value) and list((tmp_path / "cache").glob("*-refused-*.cwasm"))

    def no_compile(*_args: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(wc, "Component", no_compile)
    with Runtime() as runtime, pytest.raises(PluginLoadError) as again:
        runtime.load(plugin)
    assert str(again.value) == str(first.value)

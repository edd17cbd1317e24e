"""Shared fixtures: the sample plugins, and small WAT plugins built per test."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vrclog_cli.host.plugin import Runtime

# Tests (and the vrclog processes they start) never touch the user's cache.  pytest-xdist's
# workers share one (entries are written atomically): each would otherwise compile the Python
# component sample again, ~20 s of CPU.
if (_test_run := os.environ.get("PYTEST_XDIST_TESTRUNUID")) is not None:
    _shared_cache = Path(tempfile.gettempdir()) / f"vrclog-test-cache-{_test_run}"
    _shared_cache.mkdir(mode=0o700, exist_ok=True)
    os.environ["VRCLOG_CACHE_DIR"] = str(_shared_cache)
else:
    os.environ["VRCLOG_CACHE_DIR"] = tempfile.mkdtemp(prefix="vrclog-test-cache-")

VRCLOG_BIN = str(Path(sys.executable).parent / "vrclog")
ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_plugins"
SAMPLE_LOGS = ROOT / "sample_logs"

def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``posix`` are skipped where there is no POSIX (Windows: see the CI workflow)."""
    if os.name == "posix":
        return
    skip = pytest.mark.skip(reason="POSIX only: FIFOs, signals to processes, ptys, file owners or ulimit")
    for item in items:
        if "posix" in item.keywords:
            item.add_marker(skip)


def vrclog(*args: str | Path, stdin: bytes = b"", env: dict[str, str] | None = None,
           timeout: float = 120, cwd: Path | None = None,
           address_space: int | None = None) -> subprocess.CompletedProcess[str]:
    """`vrclog ARGS` run to its end (in ``cwd``): stdin fed (empty by default, never the
    terminal's), ``env`` added to the environment, stdout and stderr decoded (bad bytes replaced).
    ``address_space``: run under that ``ulimit -v`` (bytes; POSIX), with no core dumps."""
    return _completed([VRCLOG_BIN, *map(str, args)], stdin, env, timeout, cwd, address_space)


def python(script: str, *args: str | Path, timeout: float = 120, cwd: Path | None = ROOT,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -c SCRIPT ARGS`` in this environment, run to its end as ``vrclog`` runs one:
    for what must happen in a process of its own (a crash, a fresh import, an exit code)."""
    return _completed([sys.executable, "-c", script, *map(str, args)], b"", env, timeout, cwd, None)


def _completed(argv: list[str], stdin: bytes, env: dict[str, str] | None, timeout: float,
               cwd: Path | None, address_space: int | None) -> subprocess.CompletedProcess[str]:
    def cap(limit: int) -> None:  # in the child, before exec
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    done = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout,
                          env={**os.environ, **env} if env else None, cwd=cwd,
                          preexec_fn=None if address_space is None else functools.partial(cap, address_space))
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(errors="replace"),
                                       done.stderr.decode(errors="replace"))


NO_EVENTS = '{"ok":true,"events":[]}'

# A valid ABI-v1 plugin with holes: {imports}, {body} of parse_line
# (params $p $n, result i64), {extra} module fields.  Memory: 3 pages; the
# data segment at 0x20000 holds a no-match answer of len(NO_EVENTS) bytes.
WAT_TEMPLATE = """
(module
  {imports}
  (memory (export "memory") 3)
  (global $heap (mut i32) (i32.const 0x28000))
  (func (export "abi_version") (result i32) i32.const 1)
  (func (export "alloc") (param $size i32) (result i32)
    (local $p i32)
    global.get $heap
    local.set $p
    global.get $heap
    local.get $size
    i32.add
    global.set $heap
    local.get $p)
  (func (export "free") (param i32 i32))
  (data (i32.const 0x20000) "{no_events}")
  (func (export "parse_line") (param $p i32) (param $n i32) (result i64)
    {body})
  {extra}
)
"""

# parse_line body returning the no-match answer at 0x20000.
RETURN_NO_EVENTS = f"(i64.or (i64.shl (i64.const {len(NO_EVENTS)}) (i64.const 32)) (i64.const 0x20000))"


def wat_plugin(body: str = RETURN_NO_EVENTS, *, imports: str = "", extra: str = "") -> str:
    return WAT_TEMPLATE.format(
        imports=imports, body=body, extra=extra, no_events=NO_EVENTS.replace('"', '\\"'))


def answer(text: str, at: int = 0x21000) -> tuple[str, str]:
    """(data segment, parse_line body) returning the given output text."""
    escaped = "".join(f"\\{b:02x}" for b in text.encode())
    segment = f'(data (i32.const {at}) "{escaped}")'
    body = f"(i64.or (i64.shl (i64.const {len(text.encode())}) (i64.const 32)) (i64.const {at}))"
    return segment, body


# Every env host function, as a plugin imports them.
HOST_IMPORTS = """
  (import "env" "regex_match" (func $match (param i32 i32 i32 i32) (result i32)))
  (import "env" "regex_find_submatch" (func $sub (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "log" (func $log (param i32 i32 i32)))
  (import "env" "now_ms" (func $now (result i64)))
"""

# Echo: answers {"ok":true,"events":[{"type":"echo","data":<input document>}]},
# so data is {"line": <the line>}.  A line starting with L loops forever and
# one starting with T traps, for timeout, signal and error tests.
ECHO_HEAD = '{"ok":true,"events":[{"type":"echo","data":'
ECHO_TAIL = "}]}"
FIRST_CHAR = '(i32.load8_u (i32.add (local.get $p) (i32.const 9)))'  # after {"line":"


def echo_plugin_wat(bad_body: str = "", *, imports: str = "", extra: str = "",
                    triggers: bool = True) -> str:
    """The echo plugin; with ``bad_body`` (instructions leaving an i64 answer), a
    line starting with B runs that body instead - the hostile-plugin template.
    ``triggers=False`` drops the L (loop) and T (trap) behaviours: a pure echo."""
    on_bad = (f"(if (i32.eq {FIRST_CHAR} (i32.const 66)) "
              f"(then (return (block (result i64) {bad_body}))))" if bad_body else "")
    special = f"""
    (if (i32.eq {FIRST_CHAR} (i32.const 76)) (then (loop $forever (br $forever))))
    (if (i32.eq {FIRST_CHAR} (i32.const 84)) (then unreachable))""" if triggers else ""
    body = f"""
    {on_bad}
    {special}
    (memory.copy (i32.const 0x30000) (i32.const 0x20100) (i32.const {len(ECHO_HEAD)}))
    (memory.copy (i32.const {0x30000 + len(ECHO_HEAD)}) (local.get $p) (local.get $n))
    (memory.copy (i32.add (i32.const {0x30000 + len(ECHO_HEAD)}) (local.get $n))
                 (i32.const 0x20200) (i32.const {len(ECHO_TAIL)}))
    (i64.or
      (i64.shl (i64.extend_i32_u
                 (i32.add (local.get $n) (i32.const {len(ECHO_HEAD) + len(ECHO_TAIL)})))
               (i64.const 32))
      (i64.const 0x30000))"""
    extra = (f'(data (i32.const 0x20100) "{ECHO_HEAD.replace(chr(34), chr(92) + chr(34))}")'
             f'(data (i32.const 0x20200) "{ECHO_TAIL}")' + extra)
    return wat_plugin(body, imports=imports, extra=extra).replace('(memory (export "memory") 3)',
                                                  '(memory (export "memory") 5)')


@pytest.fixture
def make_plugin(tmp_path: Path):  # type: ignore[no-untyped-def]
    counter = iter(range(10_000))

    def make(wat: str, suffix: str = ".wat") -> Path:
        path = tmp_path / f"plugin{next(counter)}{suffix}"
        path.write_text(wat)
        return path

    return make


@pytest.fixture(scope="session")
def runtime() -> Iterator[Runtime]:
    rt = Runtime()
    yield rt
    rt.close()


# An ABI v2 plugin: a bump allocator that grows memory, and an echo answering
# {"ok":true,"events":[{"type":"echo","data":{"line":"<the raw line>"}}]} (valid JSON
# for lines without quotes, backslashes or control characters).  ``alloc_body``
# replaces alloc's body (param $size, result i32); ``prefilter`` adds the section.
V2_HEAD = '{"ok":true,"events":[{"type":"echo","data":{"line":"'
V2_TAIL = '"}}]}'
BUMP_ALLOC = """
    (local $p i32) (local $end i32) (local $have i32)
    (local.set $p (global.get $heap))
    (local.set $end (i32.add (local.get $p) (local.get $size)))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then (if (i32.eq (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $have))
                                                         (i32.const 65535)) (i32.const 16)))
                        (i32.const -1))
              (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $p)"""


def wat_plugin_v2(alloc_body: str = BUMP_ALLOC, *, prefilter: str | None = None,
                  with_free: bool = False, version: int = 2) -> str:
    section = ""
    if prefilter is not None:
        section = '(@custom "vrclog.prefilter" "' + "".join(f"\\{b:02x}" for b in prefilter.encode()) + '")'
    head, tail = len(V2_HEAD), len(V2_TAIL)
    return f"""
(module
  {section}
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 0x1000))
  (func (export "abi_version") (result i32) i32.const {version})
  (func $alloc (export "alloc") (param $size i32) (result i32) {alloc_body})
  {'(func (export "free") (param i32 i32))' if with_free else ''}
  (func $grow (param $size i32) (result i32) {BUMP_ALLOC})
  (data (i32.const 0x100) "{V2_HEAD.replace('"', chr(92) + '"')}")
  (data (i32.const 0x200) "{V2_TAIL.replace('"', chr(92) + '"')}")
  (func (export "parse_line") (param $p i32) (param $n i32) (result i64)
    (local $out i32)
    (local.set $out (call $grow (i32.add (local.get $n) (i32.const {head + tail}))))
    (memory.copy (local.get $out) (i32.const 0x100) (i32.const {head}))
    (memory.copy (i32.add (local.get $out) (i32.const {head})) (local.get $p) (local.get $n))
    (memory.copy (i32.add (i32.add (local.get $out) (i32.const {head})) (local.get $n))
                 (i32.const 0x200) (i32.const {tail}))
    (i64.or (i64.shl (i64.extend_i32_u (i32.add (local.get $n) (i32.const {head + tail})))
                     (i64.const 32))
            (i64.extend_i32_u (local.get $out))))
)
"""


def stdout_lines(proc: subprocess.Popen[bytes], count: int, timeout: float = 60.0) -> bytes:
    """Waits until ``proc`` has written ``count`` lines on stdout, and returns them: the
    state a test sends its signal in, where a fixed sleep is outlasted on a busy machine
    (start-up alone can take seconds there)."""
    assert proc.stdout is not None
    stdout = proc.stdout
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(stdout.readline() for _ in range(count)),
                              daemon=True)
    reader.start()
    reader.join(timeout)
    assert not reader.is_alive(), f"not {count} lines on stdout within {timeout} s: {got}"
    return b"".join(got)


def interrupt_after(args: list[str | Path], stdin: bytes, wait_s: float = 0.0, *,
                    lines: int = 0) -> tuple[int, bytes]:
    """Runs `vrclog ARGS` fed ``stdin`` (left open), sends SIGINT once it has written
    ``lines`` lines on stdout and ``wait_s`` more seconds have passed: (exit code, stderr)."""
    proc = subprocess.Popen([VRCLOG_BIN, *map(str, args)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(stdin)
    proc.stdin.flush()
    if lines:
        stdout_lines(proc, lines)
    time.sleep(wait_s)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


def vrchat_log_folder(folder: Path, copies: int = 600) -> list[Path]:
    """Three logs named as VRChat names them, each ``copies`` times the sample session
    (600: ~28 000 lines, a few seconds through echo.wasm): for runs killed midway."""
    folder.mkdir()
    logs = []
    for name in ("output_log_2025-06-17_18-20-02.txt", "output_log_2025-06-18_09-00-00.txt",
                 "output_log_2025-06-19_21-30-45.txt"):
        log = folder / name
        log.write_bytes((SAMPLE_LOGS / "vrchat.log").read_bytes() * copies)
        logs.append(log)
    return logs

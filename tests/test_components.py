"""Component plugins end to end: the Python and JS samples, a Python component built here
with componentize-py as an author would, the host interface, the budget, Ctrl-C, the
cache and the library (design.md 2d)."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vrclog_cli import Limits, Runtime, parse_lines
from vrclog_cli.host.component import WIT_FILE, is_component
from vrclog_cli.host.plugin import Plugin

from .conftest import ROOT, SAMPLE_LOGS, SAMPLES, VRCLOG_BIN, stdout_lines, vrclog

PY_SAMPLE = SAMPLES / "python" / "vrpoker_py.wasm"
JS_SAMPLE = SAMPLES / "js" / "vrpoker_js.wasm"
POKER_LINE = "2024.01.15 23:59:59 Log        -  [VRPoker] Round 7 begins"
SPIN_SOURCE = Path(__file__).parent / "plugins" / "spin_py"


@pytest.fixture(scope="session")
def spin_py(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/plugins/spin_py built with componentize-py (the dev extra pins it)."""
    out = tmp_path_factory.mktemp("spin") / "spin_py.wasm"
    tool = Path(sys.executable).parent / "componentize-py"
    subprocess.run([str(tool), "-d", str(WIT_FILE.parent), "-w", "plugin", "componentize", "app",
                    "-p", str(SPIN_SOURCE), "-o", str(out)], check=True, capture_output=True, timeout=300)
    return out


def events_of(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.parametrize("sample", [PY_SAMPLE, JS_SAMPLE], ids=["python", "js"])
@pytest.mark.parametrize(("jobs", "workers"), [("1", "threads"), ("2", "processes")])
def test_the_samples_give_what_the_core_plugin_gives(sample: Path, jobs: str, workers: str) -> None:
    log = SAMPLE_LOGS / "vrpoker.log"
    core = vrclog("parse", "--plugin", SAMPLES / "vrpoker.wasm", log)
    got = vrclog("parse", "--plugin", sample, "--jobs", jobs, "--workers", workers, log)
    assert got.returncode == 0, got.stderr
    assert core.stdout.count("\n") == 10 and got.stdout == core.stdout


def test_many_python_components_at_once_fit_the_pool(tmp_path: Path) -> None:
    """componentize-py's component is 14 core instances: the components' pool holds room for
    that many per slot (a pool sized for core modules ran out after one line at a time)."""
    log = tmp_path / "poker.log"
    log.write_text("".join(f"2024.01.15 23:58:{i % 60:02d} Log        -  [VRPoker] Round {i} begins\n"
                           for i in range(3000)))
    core = vrclog("parse", "--plugin", SAMPLES / "vrpoker.wasm", log)
    # A budget of 1 s: this checks the pool, not the budget (its 3000 calls take 3-11 ms of
    # CPU each; one took over the default 50 ms in one suite run of many, never again in
    # 22 runs of this command, 6 of them beside 4 CPU hogs).
    got = vrclog("parse", "--plugin", PY_SAMPLE, "--jobs", "4", "--workers", "threads",
                 "--timeout", "1s", log)
    assert got.returncode == 0, got.stderr[-500:]
    assert got.stdout == core.stdout and got.stdout.count("\n") == 3000


@pytest.mark.parametrize("sample", [PY_SAMPLE, JS_SAMPLE], ids=["python", "js"])
def test_plugin_info_shows_the_world_imports_and_prefilter(sample: Path) -> None:
    result = vrclog("plugin", "info", "--json", sample)
    info = json.loads(result.stdout)
    assert result.returncode == 0 and info["valid"] and info["kind"] == "component"
    assert info["world"] == "vrclog:plugin@1.0.0 plugin"
    assert info["prefilter"] == {"substrings": ["[VRPoker]"]}
    assert "parse-line" in {e["name"] for e in info["exports"]}
    imports = {e["name"] for e in info["imports"]}
    assert any(name.startswith("wasi:cli/") for name in imports)


def test_plugin_check_passes_the_js_sample() -> None:
    result = vrclog("plugin", "check", JS_SAMPLE, "--sample", SAMPLE_LOGS / "vrpoker.log")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout and "the prefilter skips 12 of 22 sample lines" in result.stdout
    assert 'component, world vrclog:plugin@1.0.0 plugin; prefilter: {"substrings": ["[VRPoker]"]}' \
        in result.stdout


def test_a_python_component_built_here_uses_the_host_interface(spin_py: Path) -> None:
    result = vrclog("parse", "--plugin", spin_py, stdin=b"one\nhost abc 12\nhostile\n")
    assert result.returncode == 0, result.stderr
    assert events_of(result.stdout) == [
        {"type": "echo", "data": {"line": "one"}},
        {"type": "host", "data": {"matched": "True", "groups": "['host abc 12', 'abc', '12']",
                                  "clock": "True"}},
        {"type": "host", "data": {"matched": "False", "groups": "None", "clock": "True"}},
    ]
    assert "spin_py.wasm: warn: asked about host abc 12" in result.stderr  # host log, level warn


@pytest.mark.parametrize(("jobs", "workers"), [("1", "threads"), ("2", "threads"), ("2", "processes")])
def test_a_spinning_python_component_times_out_its_line_only(spin_py: Path, jobs: str, workers: str) -> None:
    result = vrclog("parse", "--plugin", spin_py, "--jobs", jobs, "--workers", workers,
                    stdin=b"one\nspin\ntwo\n")
    assert result.returncode == 5
    assert [e["data"] for e in events_of(result.stdout)] == [{"line": "one"}, {"line": "two"}]
    assert "<stdin>:2: timeout: spin_py.wasm: plugin ran longer than the 50 ms budget" in result.stderr


def test_a_spinning_component_is_stopped_soon_after_its_budget(spin_py: Path) -> None:
    """Its engine is ticked lazily (no tick before a call could be over its budget, see
    _Ticking), yet the clock runs from the call's start: stopped within a tick of it."""
    from vrclog_cli.errors import PluginTimeout

    with Runtime(Limits(timeout_s=0.2), on_log=lambda _log: None) as runtime:
        plugin = runtime.load(spin_py)
        assert plugin.call("one")
        for _ in range(3):
            started = time.thread_time()
            with pytest.raises(PluginTimeout):
                plugin.call("spin")
            assert 0.2 <= time.thread_time() - started < 0.2 + 0.05  # a tick is 5 ms


def test_a_run_of_components_only_leaves_the_core_engine_unticked() -> None:
    with Runtime(on_log=lambda _log: None) as runtime:
        plugin = runtime.load(JS_SAMPLE)
        assert plugin.call("2024.01.15 23:58:00 Log        -  [VRPoker] Round 1 begins")
        assert runtime._ticking is None  # only the components' lazy tickings wake the ticker
        runtime.load(SAMPLES / "vrpoker.wasm")
        assert runtime._ticking is not None


@pytest.mark.posix  # Windows has no SIGINT to send: Ctrl-C is a console event
@pytest.mark.parametrize(("jobs", "workers"), [("1", "threads"), ("2", "processes")])
def test_ctrl_c_during_a_slow_python_component(spin_py: Path, jobs: str, workers: str) -> None:
    vrclog("parse", "--plugin", spin_py, stdin=b"warm the cache\n")
    proc = subprocess.Popen([VRCLOG_BIN, "parse", "--plugin", str(spin_py), "--timeout", "60s",
                             "--jobs", jobs, "--workers", workers],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    head = b""
    for line in (b"one\n", b"two\n"):  # each written once done (stdin idle)
        proc.stdin.write(line)
        proc.stdin.flush()
        head += stdout_lines(proc, 1)
    proc.stdin.write(b"spin\n")
    proc.stdin.flush()
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    out = head + out
    elapsed = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert [e["data"] for e in events_of(out.decode())] == [{"line": "one"}, {"line": "two"}]
    assert err.decode() == "vrclog: interrupted after 2 lines (2 events written)\n"
    assert elapsed < 1.0  # measured 0.05 s (threads) and 0.11 s (processes)


def test_the_first_compilation_is_announced_once(tmp_path: Path) -> None:
    env = {"VRCLOG_CACHE_DIR": str(tmp_path / "cache")}
    first = vrclog("parse", "--plugin", JS_SAMPLE, SAMPLE_LOGS / "vrpoker.log", env=env)
    assert first.returncode == 0
    assert first.stderr == (f"vrclog: compiling {JS_SAMPLE} (1.5 MiB component) for its first use; "
                            "later runs load it from the cache\n")
    again = vrclog("parse", "--plugin", JS_SAMPLE, SAMPLE_LOGS / "vrpoker.log", env=env)
    assert again.returncode == 0 and again.stderr == "" and again.stdout == first.stdout
    quiet = vrclog("parse", "--quiet", "--plugin", JS_SAMPLE, SAMPLE_LOGS / "vrpoker.log",
                   env={"VRCLOG_CACHE_DIR": str(tmp_path / "other")})
    assert quiet.stderr == ""


def test_components_have_their_own_size_limit() -> None:
    assert PY_SAMPLE.stat().st_size > 10 << 20  # over the core limit, under the component one
    refused = vrclog("parse", "--plugin", PY_SAMPLE, "--plugin-size-limit", "10MiB", stdin=b"x\n")
    assert refused.returncode == 3
    assert refused.stderr == f"vrclog: error: {PY_SAMPLE}: larger than the 10 MiB plugin size limit\n"


def test_the_library_loads_calls_and_pickles_a_component() -> None:
    with Runtime() as runtime:
        plugin = runtime.load(JS_SAMPLE)
        _check_the_library_call(plugin)


def _check_the_library_call(plugin: Plugin) -> None:
    assert plugin.kind == "component" and plugin.abi_version is None
    line = "2024.01.15 23:58:44 Log        -  [VRPoker] Player Alice wins with Two Pair"
    [event] = plugin.call(line)
    assert event.type == "vrpoker_winner" and event.data == {"player": "Alice", "hand": "Two Pair"}
    assert plugin.call("no tag here") == [] and not plugin.accepts("no tag here")
    again = pickle.loads(pickle.dumps(plugin))
    assert again.kind == "component" and again.call(line) == [event]
    lines = (SAMPLE_LOGS / "vrpoker.log").read_text(encoding="utf-8").splitlines()
    assert [e.type for e in parse_lines(lines, plugins=[JS_SAMPLE], jobs=2)] == [
        e.type for e in parse_lines(lines, plugins=[SAMPLES / "vrpoker.wasm"])]


def test_a_component_comes_from_the_cache_the_second_time(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRCLOG_CACHE_DIR", str(tmp_path))
    with Runtime(Limits()) as runtime:
        assert not runtime.load(JS_SAMPLE).from_cache
    (entry,) = tmp_path.glob("*.cwasm")
    with Runtime(Limits()) as runtime:
        plugin = runtime.load(JS_SAMPLE)
        assert plugin.from_cache
        assert [e.data for e in plugin.call(POKER_LINE)] == [{"round": "7"}]
        if sys.platform.startswith("linux"):  # wasmtime maps the entry itself (its seal after it)
            assert entry.name in Path("/proc/self/maps").read_text()


def test_a_damaged_component_entry_is_compiled_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The payload wasmtime would map is checked first: one flipped byte is a miss."""
    monkeypatch.setenv("VRCLOG_CACHE_DIR", str(tmp_path))
    with Runtime(Limits()) as runtime:
        runtime.load(JS_SAMPLE)
    (entry,) = tmp_path.glob("*.cwasm")
    blob = bytearray(entry.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    entry.write_bytes(blob)
    notes: list[str] = []
    with Runtime(Limits(), on_log=lambda log: notes.append(log.message)) as runtime:
        plugin = runtime.load(JS_SAMPLE)
        assert not plugin.from_cache
        assert [e.data for e in plugin.call(POKER_LINE)] == [{"round": "7"}]
    assert any("is damaged (its checksum does not match)" in note for note in notes)
    with Runtime(Limits()) as runtime:
        assert runtime.load(JS_SAMPLE).from_cache  # written again, whole


def test_components_are_told_by_their_header() -> None:
    assert is_component(PY_SAMPLE.read_bytes()[:8]) and is_component(JS_SAMPLE.read_bytes()[:8])
    assert not is_component((SAMPLES / "vrpoker.wasm").read_bytes()[:8])


def test_the_wit_is_shipped_in_the_package() -> None:
    assert WIT_FILE.is_file() and WIT_FILE.parent.parent.parent.name == "vrclog_cli"
    assert "package vrclog:plugin@1.0.0;" in WIT_FILE.read_text(encoding="utf-8")
    assert os.path.relpath(WIT_FILE, ROOT) == os.path.join("vrclog_cli", "host", "wit", "plugin.wit")


@pytest.mark.posix
def test_ctrl_c_during_a_components_first_compile_stops_at_once(tmp_path: Path) -> None:
    """The Python sample compiles for seconds on first use, inside wasmtime, where no signal
    handler runs: Ctrl-C took 4-14 s.  Now the run stops within a moment of the signal, and
    the cache holds no entry (nothing half-written)."""
    cache = tmp_path / "cache"
    proc = subprocess.Popen([VRCLOG_BIN, "parse", "--plugin", str(SAMPLES / "python" / "vrpoker_py.wasm"),
                             str(SAMPLE_LOGS / "vrpoker.log")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "VRCLOG_CACHE_DIR": str(cache)})
    assert proc.stderr is not None
    notice = proc.stderr.readline()  # "vrclog: compiling ... for its first use; ...": it is compiling
    assert b"compiling" in notice, notice
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    elapsed = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert elapsed < 1.5, elapsed  # measured 0.05-0.1 s; it was 4-14 s
    assert out == b"" and b"Traceback" not in err
    assert not list(cache.glob("*.cwasm"))


def test_an_uncaught_python_exception_reads_as_one(spin_py: Path) -> None:
    """Not `wasm 'unreachable' instruction executed`: the exception's own line, and with
    -v its whole traceback as one block under the FILE:LINE it belongs to."""
    lines = "ok\nraise abç\nok\n".encode()
    plain = vrclog("parse", "--plugin", spin_py, stdin=lines)
    assert plain.returncode == 4
    error = "<stdin>:2: runtime_error: spin_py.wasm: ValueError: cannot read 'abç'"
    assert plain.stderr.splitlines()[-1] == error
    assert "compiling" in plain.stderr or len(plain.stderr.splitlines()) == 1  # (a first use says so)
    assert [json.loads(line)["data"]["line"] for line in plain.stdout.splitlines()] == ["ok", "ok"]
    verbose = vrclog("parse", "-v", "--plugin", spin_py, "--jobs", "2", "--workers", "processes", stdin=lines)
    assert verbose.returncode == 4
    assert verbose.stderr.splitlines() == [
        "<stdin>:2: runtime_error: spin_py.wasm: ValueError: cannot read 'abç'",
        "    Traceback (most recent call last):",
        '      File "/0/app.py", line 18, in parse_line',
        "    ValueError: cannot read 'abç'"]


# Tail calls: Cranelift compiles them, Winch (wasmtime's baseline compiler) refuses them.
WINCH_REFUSES = "(func $again (export \"again\") (return_call $again))"


def write_component(path: Path, wat: str) -> Path:
    import wasmtime

    path.write_bytes(wasmtime.wat2wasm(wat))
    return path


def test_components_compile_with_the_first_compiler_that_takes_them(tmp_path: Path) -> None:
    """Winch where it runs (x86-64: 4x faster to compile), Cranelift for what Winch refuses;
    either way the lines run, and a spinning line is stopped by its budget."""
    from vrclog_cli.errors import PluginTimeout
    from vrclog_cli.host import capi

    from .components import component_wat

    spin = "(loop $l (br $l))"
    plain = write_component(tmp_path / "plain.wasm", component_wat(spin))
    tail = write_component(tmp_path / "tail.wasm", component_wat(spin, core_extra=WINCH_REFUSES))
    first = capi.component_compilers()[0]
    for _ in range(2):  # compiled, then from the cache (and the refusal Winch gave, cached)
        runtime = Runtime(Limits(timeout_s=0.05))
        for path, compiler in ((plain, first), (tail, "cranelift")):
            plugin = runtime.load(path)
            assert plugin._engine is runtime.component_engine(compiler)[0], path.name
            assert [e.type for e in plugin.call("a line")] == ["a line"]
            with pytest.raises(PluginTimeout):
                plugin.call("B spins")
        runtime.close()


def test_a_component_no_compiler_takes_gets_one_message(tmp_path: Path) -> None:
    from .components import component_wat

    broken = component_wat(core_extra="(func $f (result i32) (i64.const 1))")
    path = tmp_path / "broken.wasm"
    import wasmtime

    try:
        path.write_bytes(wasmtime.wat2wasm(broken))
    except wasmtime.WasmtimeError:  # wat2wasm may validate: hand wasmtime the text then
        path = tmp_path / "broken.wat"
        path.write_text(broken)
    result = vrclog("parse", "--plugin", str(path), str(SAMPLE_LOGS / "vrchat.log"))
    assert result.returncode == 3, result.stderr
    assert result.stderr.count("invalid WebAssembly") == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_an_interpreter_sized_component_gets_the_engine_that_keeps_no_memory_resident() -> None:
    """Resetting 8 MiB of the CPython sample's memory image cost ~230 µs a line; the QuickJS
    sample gains from it (capi.component_keep_resident)."""
    from vrclog_cli.host import capi

    runtime = Runtime()
    compiler = capi.component_compilers()[0]
    assert runtime.load(PY_SAMPLE)._engine is runtime.component_engine(compiler, True)[0]
    assert runtime.load(JS_SAMPLE)._engine is runtime.component_engine(compiler, False)[0]
    assert capi.component_keep_resident(True) == 0 < capi.component_keep_resident(False)
    runtime.close()

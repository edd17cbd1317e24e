"""Load-time refusals: each bad plugin file is a PluginLoadError naming the problem."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from vrclog_cli.errors import PluginLoadError
from vrclog_cli.host.plugin import Runtime
from vrclog_cli.limits import Limits

from .conftest import RETURN_NO_EVENTS, ROOT, SAMPLES, wat_plugin


def refused(runtime: Runtime, path: Path | str) -> str:
    with pytest.raises(PluginLoadError) as info:
        runtime.load(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_sample_plugins_load(runtime: Runtime) -> None:
    for name in ("vrpoker", "minimal", "slow", "trap", "busy"):
        assert runtime.load(SAMPLES / f"{name}.wasm").name == f"{name}.wasm"


def test_wat_text_is_accepted(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    assert runtime.load(make_plugin(wat_plugin())).call("x") == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty file"),
        (bytes(range(256)) * 4, "not a WebAssembly module"),
        (b"\0asm\x01\0\0\0\x01\x05", "invalid WebAssembly module"),
        (b"hello, not wat", "not valid WAT text"),
    ],
)
def test_bad_file_contents(runtime: Runtime, tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "bad.wasm"
    path.write_bytes(content)
    assert expected in refused(runtime, path)


@pytest.mark.parametrize("source", ["sample_plugins/python/app.py", "sample_plugins/js/app.js",
                                    "sample_plugins/src/vrpoker.c"])
def test_a_plugin_source_is_told_to_be_built(runtime: Runtime, source: str) -> None:
    """A new user's slip: the source passed as the plugin.  Said plainly, not as a WAT error."""
    message = refused(runtime, ROOT / source)
    assert "plugin source, not a built plugin: build it to .wasm first" in message
    assert "WAT" not in message


def test_truncated_module(runtime: Runtime, tmp_path: Path) -> None:
    data = (SAMPLES / "vrpoker.wasm").read_bytes()
    path = tmp_path / "truncated.wasm"
    path.write_bytes(data[: len(data) // 2])
    assert "invalid WebAssembly module" in refused(runtime, path)


def test_missing_file(runtime: Runtime, tmp_path: Path) -> None:
    assert "cannot open" in refused(runtime, tmp_path / "nope.wasm")


def test_directory(runtime: Runtime, tmp_path: Path) -> None:
    assert "directory" in refused(runtime, tmp_path)


@pytest.mark.posix
def test_fifo_fails_at_once(runtime: Runtime, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.wasm"
    os.mkfifo(fifo)
    started = time.monotonic()
    assert "FIFO" in refused(runtime, fifo)
    assert time.monotonic() - started < 2


@pytest.mark.posix
def test_device_fails_at_once(runtime: Runtime) -> None:
    assert "device" in refused(runtime, "/dev/zero")


@pytest.mark.skipif(sys.platform != "win32", reason="Windows device names")
def test_a_windows_device_is_refused_unopened(runtime: Runtime) -> None:
    assert "device" in refused(runtime, "NUL")  # stat, not open: CON would wait for the keyboard


def test_size_cap_read_not_trusted_from_stat(tmp_path: Path) -> None:
    runtime = Runtime(Limits(max_plugin_bytes=1024))
    path = tmp_path / "big.wasm"
    path.write_bytes((SAMPLES / "vrpoker.wasm").read_bytes() + b"\0" * 2048)
    assert "size limit" in refused(runtime, path)


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 << 20])
def test_a_file_is_read_whole_up_to_its_limit_and_refused_past_it(tmp_path: Path, size: int) -> None:
    """One read of the size stat gives, then on to the end: every byte, never one past the limit."""
    from vrclog_cli.host.loader import read_plugin_file

    path = tmp_path / "blob.wasm"
    content = os.urandom(size)
    path.write_bytes(content)
    assert read_plugin_file(path, max(size, 1)) == content
    if size:
        with pytest.raises(PluginLoadError, match="size limit"):
            read_plugin_file(path, size - 1)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="a file whose stat says 0 bytes")
def test_a_file_longer_than_its_stat_size_is_read_to_its_end() -> None:
    from vrclog_cli.host.loader import read_plugin_file

    data = read_plugin_file(Path("/proc/self/status"), 1 << 20)
    assert data.startswith(b"Name:") and data.rstrip().count(b"\n") > 10


def test_padded_past_ten_mib(runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "padded.wasm"
    path.write_bytes((SAMPLES / "minimal.wasm").read_bytes() + b"\0" * (10 * 1024 * 1024))
    assert "10 MiB" in refused(runtime, path)


def test_wrong_abi_version(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    wat = wat_plugin().replace("(result i32) i32.const 1)", "(result i32) i32.const 3)")
    assert "abi_version returned 3; this vrclog supports ABI versions 1 and 2" in refused(
        runtime, make_plugin(wat))


@pytest.mark.parametrize(
    ("export", "pattern"),
    [
        ("abi_version", '(export "abi_version")'),
        ("alloc", '(export "alloc")'),
        ("free", '(export "free")'),
        ("parse_line", '(export "parse_line")'),
        ("memory", '(export "memory")'),
    ],
)
def test_each_missing_export(runtime: Runtime, make_plugin, export: str, pattern: str) -> None:  # type: ignore[no-untyped-def]
    wat = wat_plugin().replace(pattern, "")
    assert f"missing export {export}" in refused(runtime, make_plugin(wat))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('(func (export "parse_line") (param $p i32) (param $n i32) (result i64)\n    '
         + RETURN_NO_EVENTS,
         '(func (export "parse_line") (param $p i32) (param $n i32) (result i32)\n    (i32.const 0)',
         "export parse_line has type (i32,i32)->i32, expected (i32,i32)->i64"),
        ('(func (export "free") (param i32 i32))', '(func (export "free") (param i32))',
         "export free has type (i32)->(), expected (i32,i32)->()"),
        ('(func (export "abi_version") (result i32) i32.const 1)',
         '(func (export "abi_version") (result i64) i64.const 1)',
         "export abi_version has type ()->i64, expected ()->i32"),
    ],
)
def test_wrong_signature(runtime: Runtime, make_plugin, old: str, new: str, message: str) -> None:  # type: ignore[no-untyped-def]
    wat = wat_plugin()
    assert old in wat
    assert message in refused(runtime, make_plugin(wat.replace(old, new)))


def test_unknown_import_module(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    wat = wat_plugin(imports='(import "os" "system" (func (param i32) (result i32)))')
    assert "import os.system is not available" in refused(runtime, make_plugin(wat))


def test_unknown_env_import(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    wat = wat_plugin(imports='(import "env" "open_file" (func (param i32) (result i32)))')
    assert "import env.open_file is not a vrclog host function" in refused(runtime, make_plugin(wat))


def test_host_import_with_wrong_type(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    wat = wat_plugin(imports='(import "env" "now_ms" (func (result i32)))')
    assert "import env.now_ms has type ()->i32, expected ()->i64" in refused(runtime, make_plugin(wat))


def test_unknown_wasi_function(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    wat = wat_plugin(imports='(import "wasi_snapshot_preview1" "no_such_call" (func))')
    assert "no_such_call" in refused(runtime, make_plugin(wat))


def test_memory_too_small_for_input_region(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    wat = wat_plugin().replace('(memory (export "memory") 3)', '(memory (export "memory") 1 1)')
    wat = wat.replace("0x20000", "0x100").replace("0x28000", "0x200")
    assert "input region" in refused(runtime, make_plugin(wat))


def test_start_that_never_returns_is_a_load_error(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    wat = wat_plugin(extra='(func (export "_start") (loop $l (br $l)))')
    started = time.monotonic()
    message = refused(runtime, make_plugin(wat))
    assert "did not finish within 50 ms" in message
    assert time.monotonic() - started < 2


def test_start_calling_proc_exit_zero_works(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    wat = wat_plugin(
        imports='(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))',
        extra='(func (export "_start") (call $exit (i32.const 0)))',
    )
    assert runtime.load(make_plugin(wat)).call("line") == []


def test_start_calling_proc_exit_nonzero_is_refused(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    wat = wat_plugin(
        imports='(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))',
        extra='(func (export "_start") (call $exit (i32.const 3)))',
    )
    assert "_start failed" in refused(runtime, make_plugin(wat))


def test_initialize_runs_in_every_instance(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    # parse_line traps unless _initialize set the flag in this very instance.
    body = "(if (i32.eqz (global.get $ready)) (then unreachable))\n" + RETURN_NO_EVENTS
    wat = wat_plugin(body, extra="""
      (global $ready (mut i32) (i32.const 0))
      (func (export "_initialize") (global.set $ready (i32.const 1)))""")
    plugin = runtime.load(make_plugin(wat))
    assert plugin.call("a") == [] and plugin.call("b") == []


def test_initialize_preferred_over_start(runtime: Runtime, make_plugin) -> None:  # type: ignore[no-untyped-def]
    wat = wat_plugin(extra="""
      (func (export "_initialize"))
      (func (export "_start") unreachable)""")
    assert runtime.load(make_plugin(wat)).call("x") == []

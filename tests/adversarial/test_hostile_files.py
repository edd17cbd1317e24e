"""Hostile plugin files and broken ABIs, through the real process: exit 3, the file named, no hang."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from ..conftest import SAMPLES, echo_plugin_wat, wat_plugin
from .harness import run_vrclog, write_plugin


def refused(plugin: Path | str, fragment: str) -> None:
    started = time.monotonic()
    outcome = run_vrclog("--plugin", plugin, timeout=30)
    assert time.monotonic() - started < 10
    assert outcome.code == 3, outcome.stderr
    assert outcome.stdout == ""
    assert outcome.stderr.startswith(f"vrclog: error: {plugin}") and fragment in outcome.stderr
    assert len(outcome.stderr.splitlines()) == 1


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.wasm").write_bytes(b"")
    refused(tmp_path / "e.wasm", "empty file")


def test_random_bytes(tmp_path: Path) -> None:
    (tmp_path / "r.wasm").write_bytes(random.Random(1).randbytes(4096))
    refused(tmp_path / "r.wasm", "not a WebAssembly module")


def test_random_bytes_with_magic(tmp_path: Path) -> None:
    (tmp_path / "r.wasm").write_bytes(b"\0asm\x01\0\0\0" + random.Random(2).randbytes(4096))
    refused(tmp_path / "r.wasm", "invalid WebAssembly module")


def test_truncated_module(tmp_path: Path) -> None:
    data = (SAMPLES / "vrpoker.wasm").read_bytes()
    (tmp_path / "t.wasm").write_bytes(data[: len(data) * 2 // 3])
    refused(tmp_path / "t.wasm", "invalid WebAssembly module")


def test_directory(tmp_path: Path) -> None:
    refused(tmp_path, "is a directory")


@pytest.mark.posix
def test_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "f.wasm")
    refused(tmp_path / "f.wasm", "is a FIFO")


@pytest.mark.posix
def test_dev_zero() -> None:
    refused("/dev/zero", "is a device")


def test_padded_past_ten_mib(tmp_path: Path) -> None:
    (tmp_path / "big.wasm").write_bytes((SAMPLES / "minimal.wasm").read_bytes() + bytes(10 * 1024 * 1024))
    refused(tmp_path / "big.wasm", "10 MiB plugin size limit")


def test_missing_path(tmp_path: Path) -> None:
    refused(tmp_path / "nope.wasm", "cannot open: No such file or directory")


def test_wrong_abi_version(tmp_path: Path) -> None:
    wat = wat_plugin().replace("(result i32) i32.const 1)", "(result i32) i32.const 7)")
    refused(write_plugin(tmp_path, "p", wat),
            "abi_version returned 7; this vrclog supports ABI versions 1 and 2")


@pytest.mark.parametrize("export", ["memory", "abi_version", "alloc", "free", "parse_line"])
def test_missing_export(tmp_path: Path, export: str) -> None:
    refused(write_plugin(tmp_path, "p", wat_plugin().replace(f'(export "{export}")', "")),
            f"missing export {export}")


RETURN_I64 = "(i64.or (i64.shl (i64.const 23) (i64.const 32)) (i64.const 0x20000))"


@pytest.mark.parametrize(("old", "new", "extra", "fragment"), [
    ('(func (export "abi_version") (result i32) i32.const 1)',
     '(func (export "abi_version") (param i32) (result i32) i32.const 1)', "",
     "export abi_version has type (i32)->i32, expected ()->i32"),
    ('(func (export "alloc")', "(func $unexported_alloc",
     '(func (export "alloc") (param i64) (result i32) i32.const 0)',
     "export alloc has type (i64)->i32, expected (i32)->i32"),
    ('(func (export "free") (param i32 i32))',
     '(func (export "free") (param i32 i32) (result i32) i32.const 0)', "",
     "export free has type (i32,i32)->i32, expected (i32,i32)->()"),
    ("(param $p i32) (param $n i32) (result i64)\n    " + RETURN_I64,
     "(param $p i32) (param $n i32) (result i32)\n    (i32.const 0)", "",
     "export parse_line has type (i32,i32)->i32, expected (i32,i32)->i64"),
])
def test_wrong_signature(tmp_path: Path, old: str, new: str, extra: str, fragment: str) -> None:
    wat = wat_plugin(extra=extra)
    assert old in wat
    refused(write_plugin(tmp_path, "p", wat.replace(old, new, 1)), fragment)


def test_unknown_import(tmp_path: Path) -> None:
    wat = wat_plugin(imports='(import "env" "system" (func (param i32) (result i32)))')
    refused(write_plugin(tmp_path, "p", wat), "import env.system is not a vrclog host function")


def test_imported_memory_is_refused(tmp_path: Path) -> None:
    wat = wat_plugin(imports='(import "js" "mem" (memory 1))')
    refused(write_plugin(tmp_path, "p", wat), "import js.mem is not available")


def test_memory_too_small(tmp_path: Path) -> None:
    wat = wat_plugin().replace('(memory (export "memory") 3)', '(memory (export "memory") 1 1)')
    wat = wat.replace("0x20000", "0x100").replace("0x28000", "0x200")
    refused(write_plugin(tmp_path, "p", wat), "input region")


def test_start_that_never_returns(tmp_path: Path) -> None:
    refused(write_plugin(tmp_path, "p", wat_plugin(extra='(func (export "_start") (loop $l (br $l)))')),
            "did not finish within 50 ms")


def test_start_with_proc_exit_zero_works(tmp_path: Path) -> None:
    wat = echo_plugin_wat(
        imports='(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))',
        extra='(func (export "_start") (call $exit (i32.const 0)))')
    outcome = run_vrclog("--plugin", write_plugin(tmp_path, "p", wat), stdin=b"a\nb\n")
    assert outcome.code == 0 and outcome.lines == ["a", "b"]


def test_initialize_must_run(tmp_path: Path) -> None:
    wat = echo_plugin_wat(extra="""(global $ready (mut i32) (i32.const 0))
        (func (export "_initialize") (global.set $ready (i32.const 1)))""")
    wat = wat.replace("(func (export \"parse_line\") (param $p i32) (param $n i32) (result i64)",
                      "(func (export \"parse_line\") (param $p i32) (param $n i32) (result i64)\n"
                      "    (if (i32.eqz (global.get $ready)) (then unreachable))")
    outcome = run_vrclog("--plugin", write_plugin(tmp_path, "p", wat), stdin=b"a\nb\n")
    assert outcome.code == 0 and outcome.lines == ["a", "b"]

"""What a run imports holds the line on start-up (README, Performance): every module a
built-in run and a plugin run import beyond the interpreter's own start must be in the
allowed list below, each with the reason it is needed.  A new import on these paths is
a test failure to be argued for here, not a silent ~1-30 ms on every run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SAMPLES

_SHOW = """
import sys
before = set(sys.modules)
from vrclog_cli.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(sorted(set(sys.modules) - before)))
"""

#: Outside packages and the standard library, by top-level name (C accelerators, named
#: with a leading underscore, go with their module).
ALLOWED = {
    "click": "the command line",
    "vrclog_cli": "vrclog itself (its modules are checked below)",
    "collections": "click, and everywhere",
    "typing": "click", "inspect": "click", "ast": "inspect", "dis": "inspect",
    "opcode": "dis", "token": "tokenize", "tokenize": "linecache", "linecache": "inspect",
    "weakref": "click and threading", "weakrefset": "weakref", "gettext": "click's messages",
    "locale": "gettext",
    "datetime": "click.types and event timestamps", "math": "datetime", "uuid": "click.types",
    "platform": "uuid", "threading": "the worker pool and the epoch ticker", "queue": "the worker pool",
    "heapq": "the ordered pool", "json": "JSON Lines out, and plugin output in", "signal": "stop signals",
    "select": "reading a pipe without blocking a stop", "zlib": "gzip-compressed logs",
    "gc": "the time budget",
}
#: What a plugin run adds, and why.
ALLOWED_FOR_PLUGINS = {
    "ctypes": "wasmtime's C API", "struct": "ctypes", "copy": "platformdirs.api",
    "hashlib": "the plugin's digest (cache key)",
    "blake2": "hashlib", "sha512": "hashlib (random's seed)",
    "platformdirs": "the compiled-module cache's folder (README, Plugins: the cache)",
    "tempfile": "platformdirs.unix", "random": "tempfile", "bisect": "random", "shutil": "tempfile",
    "bz2": "shutil", "lzma": "shutil", "_compression": "bz2", "resource": "the address-space limit",
    "socket": "waking the main thread from a signal while wasm runs on it", "selectors": "socket",
    "array": "socket",
}
#: vrclog's own modules that neither run needs: the wasm side stays out of built-in runs,
#: and the plugin authors' tools, components and wasmtime-py out of both.
NEVER = ("vrclog_cli.authoring", "vrclog_cli.host.embed",
         "vrclog_cli.host.capi.components", "wasmtime", "rich",
         "dataclasses")  # 0.4-2.8 ms a class: the run's records are vrclog_cli.records
NOT_FOR_BUILTIN = ("vrclog_cli.host.capi", "vrclog_cli.host.plugin", "vrclog_cli.host.loader",
                   "vrclog_cli.host.module_cache", "vrclog_cli.run.wakeup")


ONLY_311 = pytest.mark.skipif(sys.version_info[:2] != (3, 11),
                              reason="the standard library's imports differ by version")


def imported(*args: str, tmp_path: Path) -> set[str]:
    log = tmp_path / "empty.log"
    log.write_bytes(b"")
    result = subprocess.run([sys.executable, "-c", _SHOW, *args, str(log)], capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def top_level(modules: set[str]) -> set[str]:
    return {m.split(".")[0].lstrip("_") for m in modules} - {""}


def _known(name: str, allowed: dict[str, str]) -> bool:
    return name in allowed or any(name == a.lstrip("_") for a in allowed)


@ONLY_311
def test_a_builtin_run_imports_only_what_it_needs(tmp_path: Path) -> None:
    modules = imported("parse", tmp_path=tmp_path)
    extra = {m for m in top_level(modules) if not _known(m, ALLOWED)}
    assert extra == set(), f"new imports on the built-in path: {sorted(extra)}"
    assert not {m for m in modules if m.startswith(NEVER + NOT_FOR_BUILTIN)}


@ONLY_311
def test_a_plugin_run_imports_only_what_it_needs(tmp_path: Path) -> None:
    modules = imported("parse", "--plugin", str(SAMPLES / "vrpoker.wasm"), tmp_path=tmp_path)
    allowed = ALLOWED | ALLOWED_FOR_PLUGINS
    extra = {m for m in top_level(modules) if not _known(m, allowed)}
    assert extra == set(), f"new imports on the plugin path: {sorted(extra)}"
    assert not {m for m in modules if m.startswith(NEVER)}, "wasmtime-py or a tool on the run path"
    assert "vrclog_cli.vrchat.builtin" not in modules  # its patterns: a plugin run never needs them
    assert "vrclog_cli.host.capi.library" in modules  # the check sees the plugin path at all


def test_the_builtin_parser_is_still_told_apart_where_its_module_is_loaded_late() -> None:
    """batch asks for the built-in parser's class only once its module is loaded (by name):
    the name must be the module's, or every built-in run would lose its fast path."""
    from vrclog_cli.run.batch import as_builtin, sole_builtin
    from vrclog_cli.vrchat.builtin import BuiltinParser

    parser = BuiltinParser()
    assert sole_builtin([parser]) is parser and as_builtin(parser) is parser
    assert as_builtin(object()) is None

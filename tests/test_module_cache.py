"""The on-disk cache of compiled plugins: reuse, corruption, atomicity, opt-out."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vrclog_cli import module_cache
from vrclog_cli.plugin import Runtime

from .conftest import SAMPLES

LINE = "2024.01.15 23:59:59 Log        -  [VRPoker] Round 7 begins"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VRCLOG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.cwasm")) if cache.exists() else []


def test_second_load_does_not_recompile(cache: Path) -> None:
    first = Runtime().load(SAMPLES / "vrpoker.wasm")
    assert not first.from_cache and len(entries(cache)) == 1
    second = Runtime().load(SAMPLES / "vrpoker.wasm")
    assert second.from_cache
    assert second.call(LINE)[0].data == {"round": "7"}


def test_key_follows_content_not_name(cache: Path, tmp_path: Path) -> None:
    Runtime().load(SAMPLES / "vrpoker.wasm")
    copy = tmp_path / "renamed.wasm"
    shutil.copy(SAMPLES / "vrpoker.wasm", copy)
    assert Runtime().load(copy).from_cache
    Runtime().load(SAMPLES / "minimal.wasm")
    assert len(entries(cache)) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_damaged_entry_is_ignored_and_rebuilt(cache: Path, damage: str) -> None:
    Runtime().load(SAMPLES / "vrpoker.wasm")
    (entry,) = entries(cache)
    blob = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        entry.write_bytes(blob[:-100] + bytes([blob[-100] ^ 0xFF]) + blob[-99:])
    else:
        entry.write_bytes(b"not a module at all")
    plugin = Runtime().load(SAMPLES / "vrpoker.wasm")
    assert not plugin.from_cache
    assert plugin.call(LINE)[0].type == "vrpoker_round"
    assert Runtime().load(SAMPLES / "vrpoker.wasm").from_cache  # rebuilt entry is good


def test_cache_can_be_switched_off(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VRCLOG_CACHE_DIR", "off")
    assert not Runtime().load(SAMPLES / "vrpoker.wasm").from_cache
    assert not Runtime().load(SAMPLES / "vrpoker.wasm").from_cache
    assert entries(cache) == []


def test_unwritable_cache_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("VRCLOG_CACHE_DIR", str(blocker / "cache"))
    assert Runtime().load(SAMPLES / "vrpoker.wasm").call(LINE)[0].type == "vrpoker_round"


def test_no_temporary_files_left(cache: Path) -> None:
    Runtime().load(SAMPLES / "vrpoker.wasm")
    assert [p.name for p in cache.iterdir() if p.name.startswith(".tmp-")] == []


def test_cli_second_run_uses_cache(cache: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_text("")
    vrclog = Path(sys.executable).parent / "vrclog"
    env_cmd = [str(vrclog), "parse", "--plugin", str(SAMPLES / "vrpoker.wasm"), str(empty)]
    assert subprocess.run(env_cmd, capture_output=True, timeout=60).returncode == 0
    (entry,) = entries(cache)
    before = entry.stat().st_mtime_ns
    assert subprocess.run(env_cmd, capture_output=True, timeout=60).returncode == 0
    assert entries(cache) == [entry] and entry.stat().st_mtime_ns == before
    assert module_cache.cache_dir() == cache

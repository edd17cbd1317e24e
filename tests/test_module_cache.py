"""The on-disk cache of compiled plugins: reuse, corruption, atomicity, opt-out."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vrclog_cli.host import module_cache
from vrclog_cli.host.plugin import PluginLog, Runtime

from .conftest import SAMPLES, VRCLOG_BIN, vrclog

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


#: Each damage spoil does, and the --verbose note it gives.
DAMAGES = {"truncate": "is not an entry of this vrclog", "flip": "is damaged",
           "checksum": "is damaged", "garbage": "is not an entry of this vrclog"}


def spoil(entry: Path, damage: str) -> None:
    """Damages a cache entry: "truncate" (half of it), "flip" (a byte of the payload),
    "checksum" (its last byte) or "garbage"."""
    blob = bytearray(entry.read_bytes())
    if damage == "truncate":
        del blob[len(blob) // 2:]
    elif damage in ("flip", "checksum"):
        blob[len(blob) // 2 if damage == "flip" else -1] ^= 0xFF
    else:
        blob = bytearray(b"not a module at all")
    entry.write_bytes(blob)


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_entry_is_ignored_and_rebuilt(cache: Path, damage: str) -> None:
    Runtime().load(SAMPLES / "vrpoker.wasm")
    (entry,) = entries(cache)
    spoil(entry, damage)
    seen: list[PluginLog] = []
    plugin = Runtime(on_log=seen.append).load(SAMPLES / "vrpoker.wasm")
    assert not plugin.from_cache
    assert [log.message for log in seen] == [f"compiled-module cache: {entry} {DAMAGES[damage]}"
                                             + (" (its checksum does not match)" if "damaged" in
                                                DAMAGES[damage] else "") + "; compiled again"]
    assert plugin.call(LINE)[0].type == "vrpoker_round"
    assert Runtime().load(SAMPLES / "vrpoker.wasm").from_cache  # rebuilt entry is good


@pytest.mark.parametrize("damage", [None, *DAMAGES])
def test_a_mapped_entry_loads_or_misses_as_a_read_one_and_is_unmapped(
        cache: Path, monkeypatch: pytest.MonkeyPatch, damage: str | None) -> None:
    """Entries from MAP_FROM_BYTES on (a component's) are mapped, not read: every entry is here."""
    monkeypatch.setattr(module_cache, "MAP_FROM_BYTES", 1)
    Runtime().load(SAMPLES / "vrpoker.wasm")
    (entry,) = entries(cache)
    if damage is not None:
        spoil(entry, damage)
    plugin = Runtime().load(SAMPLES / "vrpoker.wasm")
    assert plugin.from_cache is (damage is None)
    assert plugin.call(LINE)[0].data == {"round": "7"}
    if sys.platform.startswith("linux"):
        maps = Path("/proc/self/maps").read_text()
        assert entry.name not in maps  # closed once loaded (or refused)


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
    binary = Path(sys.executable).parent / "vrclog"
    env_cmd = [str(binary), "parse", "--plugin", str(SAMPLES / "vrpoker.wasm"), str(empty)]
    assert subprocess.run(env_cmd, capture_output=True, timeout=60).returncode == 0
    (entry,) = entries(cache)
    before = entry.stat().st_ino  # a rewrite is a new file (written aside, then renamed)
    assert subprocess.run(env_cmd, capture_output=True, timeout=60).returncode == 0
    assert entries(cache) == [entry] and entry.stat().st_ino == before
    assert module_cache.cache_dir() == cache



# --- the cache holds machine code that will run: who may write it, how big, crashes ---

def test_the_folder_is_made_private(cache: Path) -> None:
    Runtime().load(SAMPLES / "vrpoker.wasm")
    assert cache.stat().st_mode & 0o777 == 0o700


@pytest.mark.posix
@pytest.mark.parametrize("how", ["world-writable", "another user's", "read-only"])
def test_an_untrusted_or_read_only_folder_is_not_used(cache: Path, how: str) -> None:
    import os

    cache.mkdir(mode=0o700)
    if how == "world-writable":
        cache.chmod(0o777)
    elif how == "another user's":
        if os.geteuid() != 0:
            pytest.skip("needs root to give the folder away")
        os.chown(cache, 65534, 65534)
    else:
        cache.chmod(0o500)
    plugin = Runtime().load(SAMPLES / "vrpoker.wasm")
    assert plugin.call(LINE)[0].data == {"round": "7"} and not plugin.from_cache
    if how != "read-only":
        assert module_cache.problem(cache) is not None and entries(cache) == []
        assert not Runtime().load(SAMPLES / "vrpoker.wasm").from_cache


def test_an_untrusted_folder_is_one_verbose_note(cache: Path, tmp_path: Path) -> None:

    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    log = tmp_path / "log.txt"
    log.write_text(LINE + "\n" + LINE + "\n")
    args: list[str | Path] = ["parse", "--plugin", SAMPLES / "vrpoker.wasm", "--plugin",
                              SAMPLES / "echo.wasm", log]
    env = {"VRCLOG_CACHE_DIR": str(cache)}
    loud = vrclog(*args, "--verbose", env=env)
    assert loud.returncode == 0
    assert loud.stderr.count("compiled-module cache not used") == 1
    assert f"{cache} is writable by others (plugins are compiled in memory)" in loud.stderr
    quiet = vrclog(*args, env=env)
    assert quiet.returncode == 0 and quiet.stderr == ""


@pytest.mark.posix
def test_an_entry_someone_else_placed_is_not_loaded(cache: Path) -> None:
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root to give the entry away")
    Runtime().load(SAMPLES / "vrpoker.wasm")
    (entry,) = entries(cache)
    os.chown(entry, 65534, 65534)
    assert not Runtime().load(SAMPLES / "vrpoker.wasm").from_cache


def test_the_cache_keeps_the_newest_entries(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    from .conftest import wat_plugin

    monkeypatch.setattr(module_cache, "MAX_ENTRIES", 3)
    for i in range(6):
        path = tmp_path / f"p{i}.wat"
        path.write_text(wat_plugin(extra=f'(global i32 (i32.const {i}))'))
        Runtime().load(path)
    assert len(entries(cache)) == 3
    assert Runtime().load(tmp_path / "p5.wat").from_cache  # the newest stayed
    assert not Runtime().load(tmp_path / "p0.wat").from_cache


@pytest.mark.posix
def test_a_writer_killed_mid_write_leaves_no_temporary_file(cache: Path) -> None:
    """A real process is SIGKILLed while its entry is written aside; the next writer sweeps."""
    import os
    import signal
    import time

    child = subprocess.Popen([sys.executable, "-c", f"""
import os, time
from vrclog_cli.host import module_cache
from vrclog_cli.host.plugin import PluginLog, Runtime
os.replace = lambda *a: time.sleep(600)  # killed between writing and renaming
Runtime().load({str(SAMPLES / "vrpoker.wasm")!r})
"""], env={**os.environ, "VRCLOG_CACHE_DIR": str(cache)})
    deadline = time.monotonic() + 60
    while not list(cache.glob(".tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(cache.glob(".tmp-*")), "the writer never started its write"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    Runtime().load(SAMPLES / "minimal.wasm")  # the next writer
    assert list(cache.glob(".tmp-*")) == []
    assert len(entries(cache)) == 1


def test_two_processes_fill_the_cache_at_once(cache: Path, tmp_path: Path) -> None:
    import os

    empty = tmp_path / "empty.log"
    empty.write_text("")
    procs = [subprocess.Popen([VRCLOG_BIN, "parse", *[a for p in plugins for a in ("--plugin", str(p))],
                               str(empty)], env={**os.environ, "VRCLOG_CACHE_DIR": str(cache)})
             for plugins in ([SAMPLES / "vrpoker.wasm", SAMPLES / "echo.wasm"],
                             [SAMPLES / "echo.wasm", SAMPLES / "vrpoker.wasm"])]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert len(entries(cache)) == 2 and list(cache.glob(".tmp-*")) == []
    assert all(Runtime().load(SAMPLES / name).from_cache for name in ("vrpoker.wasm", "echo.wasm"))


def _key_of(cache: Path, wasm: Path) -> Path:
    """The entry a plugin's load writes (the only one in a fresh cache)."""
    for old in entries(cache):
        old.unlink()
    Runtime().load(wasm)
    (entry,) = entries(cache)
    return entry


@pytest.mark.posix
@pytest.mark.parametrize("plant", ["fifo", "symlink to a fifo", "symlink to /dev/zero",
                                   "symlink to a good entry", "directory"])
def test_an_entry_that_is_not_a_regular_file_is_a_miss_not_a_hang(cache: Path, tmp_path: Path,
                                                                    plant: str) -> None:
    """A FIFO (or a link to one) would block the open for ever, /dev/zero would be read
    without end: neither is opened as an entry.  In a process of its own, with a deadline."""
    import os

    entry = _key_of(cache, SAMPLES / "vrpoker.wasm")
    good = entry.read_bytes()
    entry.unlink()
    if plant == "fifo":
        os.mkfifo(entry)
    elif plant == "symlink to a fifo":
        os.mkfifo(tmp_path / "fifo")
        entry.symlink_to(tmp_path / "fifo")
    elif plant == "symlink to /dev/zero":
        entry.symlink_to("/dev/zero")
    elif plant == "symlink to a good entry":
        (tmp_path / "elsewhere.cwasm").write_bytes(good)
        entry.symlink_to(tmp_path / "elsewhere.cwasm")
    else:
        entry.mkdir()
    log = tmp_path / "log.txt"
    log.write_text(LINE + "\n")
    result = vrclog("parse", "--verbose", "--plugin", SAMPLES / "vrpoker.wasm", log, timeout=60,
                    env={"VRCLOG_CACHE_DIR": str(cache)})
    assert result.returncode == 0, result.stderr
    assert '"round":"7"' in result.stdout
    assert f"compiled-module cache: {entry} " in result.stderr and "compiled again" in result.stderr
    if plant != "directory":  # the recompiled code took the planted name's place
        assert entry.is_file() and not entry.is_symlink()


@pytest.mark.parametrize("how", ["copy", "hard link", "symlink"])
def test_another_plugins_entry_under_this_key_never_runs(cache: Path, tmp_path: Path, how: str) -> None:
    """trap.wasm's key holding vrpoker's valid entry: loading trap.wasm must compile trap.wasm
    (its own behaviour: it traps), not run vrpoker's code."""
    import os

    if how == "symlink" and sys.platform == "win32":
        pytest.skip("symbolic links need privileges on Windows")
    trap_entry = _key_of(cache, SAMPLES / "trap.wasm")
    poker_entry = _key_of(cache, SAMPLES / "vrpoker.wasm")
    if how == "copy":
        shutil.copy(poker_entry, trap_entry)
    elif how == "hard link":
        os.link(poker_entry, trap_entry)
    else:
        trap_entry.symlink_to(poker_entry)
    seen: list[PluginLog] = []
    plugin = Runtime(on_log=seen.append).load(SAMPLES / "trap.wasm")
    assert not plugin.from_cache
    notes = " ".join(log.message for log in seen)
    assert "another plugin" in notes or "symbolic link" in notes
    log = tmp_path / "log.txt"
    log.write_text(LINE + "\n")
    result = vrclog("parse", "--plugin", SAMPLES / "trap.wasm", log, env={"VRCLOG_CACHE_DIR": str(cache)})
    assert result.returncode == 4 and result.stdout == ""


@pytest.mark.parametrize("version", [1, 2])
def test_an_entry_of_an_old_format_is_a_miss(cache: Path, version: int) -> None:
    """Versions 1 and 2 put the seal before the payload (2 with the key in it)."""
    import hashlib

    entry = _key_of(cache, SAMPLES / "vrpoker.wasm")
    blob = entry.read_bytes()
    head = module_cache.MAGIC + entry.stem.encode() + b"\n"
    payload = blob[:-len(head) - 32]
    assert blob[-len(head) - 32:-32] == head
    old = f"vrclog-module-cache-{version}\n".encode() + (entry.stem.encode() + b"\n" if version == 2 else b"")
    checked = (old if version == 2 else b"") + payload
    entry.write_bytes(old + hashlib.sha256(checked).digest() + payload)
    assert not Runtime().load(SAMPLES / "vrpoker.wasm").from_cache
    assert Runtime().load(SAMPLES / "vrpoker.wasm").from_cache


class _Text:
    """A Serializable of bytes: entries without wasmtime."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return self.data


def _by_name(_engine: None, path: bytes) -> bytes:
    return Path(path.decode()).read_bytes()[:7]


def _from_memory(_engine: None, payload: memoryview) -> bytes:
    return bytes(payload[:7])


def test_an_entry_replaced_while_it_is_loaded_by_name_is_read_again(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mapped entry is checked, then handed over by name: if the name meanwhile holds
    another file (a cold run storing the same plugin), what was loaded was not what was
    checked, so the new file is checked and loaded in its turn."""
    monkeypatch.setattr(module_cache, "MAP_FROM_BYTES", 1)
    target = module_cache.store(_Text(b"checked" * 100), "k")
    assert target is not None
    assert module_cache.load_with(_from_memory, None, "k", _by_name) == b"checked"
    calls: list[bytes] = []

    def stored_again_meanwhile(engine: None, path: bytes) -> bytes:
        if not calls:
            assert module_cache.store(_Text(b"swapped" * 100), "k") == target
        calls.append(path)
        return _by_name(engine, path)

    module_cache.take_notes()
    assert module_cache.load_with(_from_memory, None, "k", stored_again_meanwhile) == b"swapped"
    assert len(calls) == 2
    assert module_cache.take_notes() == []


def test_an_entry_replaced_on_every_attempt_is_a_miss(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module_cache, "MAP_FROM_BYTES", 1)
    target = module_cache.store(_Text(b"checked" * 100), "k")
    assert target is not None
    calls: list[bytes] = []

    def stored_again_meanwhile(engine: None, path: bytes) -> bytes:
        calls.append(path)
        assert module_cache.store(_Text(b"swapped" * 100), "k") == target
        return _by_name(engine, path)

    module_cache.take_notes()
    assert module_cache.load_with(_from_memory, None, "k", stored_again_meanwhile) is None
    assert len(calls) == module_cache.LOAD_ATTEMPTS
    assert module_cache.take_notes() == [f"compiled-module cache: {target} was replaced while it was "
                                         "loaded; compiled again"]


def test_an_entry_replaced_by_a_foreign_one_while_it_is_loaded_is_a_miss(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(module_cache, "MAP_FROM_BYTES", 1)
    target = module_cache.store(_Text(b"checked" * 100), "k")
    other = module_cache.store(_Text(b"foreign" * 100), "o")  # a key as long
    assert target is not None and other is not None

    def swapped_meanwhile(engine: None, path: bytes) -> bytes:
        if other.exists():
            os.replace(other, target)
        return _by_name(engine, path)

    module_cache.take_notes()
    assert module_cache.load_with(_from_memory, None, "k", swapped_meanwhile) is None
    assert module_cache.take_notes() == [f"compiled-module cache: {target} was written for another "
                                         "plugin or engine; compiled again"]


def test_an_entry_touched_by_another_run_while_it_is_loaded_is_still_a_hit(
        cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hit touches its entry; two workers loading one entry at once (``--workers
    processes``) must not take each other's touch for a replacement."""
    import os

    monkeypatch.setattr(module_cache, "MAP_FROM_BYTES", 1)
    target = module_cache.store(_Text(b"checked" * 100), "k")
    assert target is not None
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))

    def touched_meanwhile(engine: None, path: bytes) -> bytes:
        os.utime(path)  # what another worker's hit does
        return _by_name(engine, path)

    module_cache.take_notes()
    assert module_cache.load_with(_from_memory, None, "k", touched_meanwhile) == b"checked"
    assert module_cache.take_notes() == []

"""An on-disk cache of compiled plugins, so each plugin content compiles once.

Entries live under ``$VRCLOG_CACHE_DIR``, else ``$XDG_CACHE_HOME/vrclog``,
else ``~/.cache/vrclog``; ``VRCLOG_CACHE_DIR=off`` disables the cache.  The
key covers the plugin's SHA-256, the wasmtime version and the engine settings
that shape compiled code.  Each entry carries a SHA-256 of its own payload:
deserializing damaged machine code could crash the process, so a damaged or
foreign entry is ignored and rebuilt, never loaded.  Writes are atomic.

The cache holds machine code that will run: its folder is made 0700, and a
folder (or entry) that another user owns or others may write is not used at
all.  It keeps the newest 64 entries, 256 MiB at most; a crashed writer's
temporary file is removed by the next writer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

import wasmtime

from .capi import wasmtime_version

T = TypeVar("T")


class Serializable(Protocol):
    """A compiled module or component."""

    def serialize(self) -> bytearray: ...

MAGIC = b"vrclog-module-cache-1\n"


def cache_dir() -> Path | None:
    """``$VRCLOG_CACHE_DIR`` (``off`` for none), else the user cache folder each OS's users
    expect: ``$XDG_CACHE_HOME/vrclog`` or ``~/.cache/vrclog``, ``~/Library/Caches/vrclog``
    on macOS, ``%LOCALAPPDATA%\\vrclog\\Cache`` on Windows (platformdirs knows them)."""
    configured = os.environ.get("VRCLOG_CACHE_DIR")
    if configured:
        return None if configured.lower() in ("off", "0", "none") else Path(configured)
    from platformdirs import user_cache_path

    return user_cache_path("vrclog", appauthor=False)


def cache_key(digest: str, engine_settings: str) -> str:
    """The entry name of a plugin's compiled code: its content's SHA-256 (hex) and the
    settings that shape compiled code."""
    settings = hashlib.sha256(f"{wasmtime_version()}|{engine_settings}".encode()).hexdigest()[:16]
    return f"{digest}-{settings}"


#: Entries kept: the newest this many, and no more than MAX_BYTES in all (oldest go first).
MAX_ENTRIES = 64
MAX_BYTES = 256 << 20
TMP_PREFIX = ".tmp-"
#: A temporary file older than this whose writer cannot be asked (no pid in its name,
#: or Windows) is a crashed write.
STALE_TMP_S = 600


def problem(directory: Path) -> str | None:
    """Why the folder cannot be trusted with machine code we will run, or None.

    ``Module.deserialize`` runs what it reads; the entry's checksum stops damage,
    not someone who can write there.  POSIX only: Windows folders under
    %LOCALAPPDATA% are the user's own by their ACL.
    """
    if sys.platform == "win32":
        return None
    try:
        info = directory.lstat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{directory}: {exc.strerror}"
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        return f"{directory} is not a folder"
    if info.st_uid != os.getuid():
        return f"{directory} belongs to another user"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{directory} is writable by others"
    return None


_reported: set[str] = set()


def unsafe_note() -> str | None:
    """The first time a process finds the cache folder untrusted: the note to show."""
    directory = cache_dir()
    if directory is None or (why := problem(directory)) is None or why in _reported:
        return None
    _reported.add(why)
    return f"compiled-module cache not used: {why} (plugins are compiled in memory)"


def _trusted_dir() -> Path | None:
    directory = cache_dir()
    return None if directory is None or problem(directory) is not None else directory


def load(engine: wasmtime.Engine, key: str) -> wasmtime.Module | None:
    """The cached module, or None when absent, damaged, unusable or in an untrusted folder."""
    return load_with(wasmtime.Module.deserialize, engine, key)


def load_with(deserialize: Callable[[wasmtime.Engine, bytes], T], engine: wasmtime.Engine,
              key: str) -> T | None:
    """``load`` for what ``deserialize`` makes (a module or a component)."""
    directory = _trusted_dir()
    if directory is None:
        return None
    path = directory / f"{key}.cwasm"
    try:
        with open(path, "rb") as f:
            if sys.platform != "win32" and os.fstat(f.fileno()).st_uid != os.getuid():
                return None  # placed there by someone else
            blob = f.read()
    except OSError:
        return None
    header_len = len(MAGIC) + 32
    if not blob.startswith(MAGIC) or len(blob) < header_len:
        return None
    checksum, payload = blob[len(MAGIC):header_len], blob[header_len:]
    if hashlib.sha256(payload).digest() != checksum:
        return None
    try:
        module = deserialize(engine, payload)
    except wasmtime.WasmtimeError:
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: the last to be evicted
    return module


def store(module: Serializable, key: str) -> Path | None:
    """Writes the module atomically, then trims the cache; a cache that cannot be
    written (or is not trusted) is skipped silently."""
    directory = cache_dir()
    if directory is None:
        return None
    try:
        payload = bytes(module.serialize())
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if problem(directory) is not None:
            return None
        sweep(directory)
        # The writer's pid in the name: a later sweep can tell a crashed write from a running one.
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=".cwasm")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + hashlib.sha256(payload).digest() + payload)
            target = directory / f"{key}.cwasm"
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        trim(directory)
        return target
    except (OSError, wasmtime.WasmtimeError):
        return None


def sweep(directory: Path) -> None:
    """Removes temporary files that crashed writers left behind."""
    now = time.time()
    for tmp in directory.glob(f"{TMP_PREFIX}*"):
        writer = tmp.name[len(TMP_PREFIX):].split("-", 1)[0]
        try:
            if writer.isdigit() and os.name == "posix":
                if _alive(int(writer)):
                    continue
            elif now - tmp.stat().st_mtime < STALE_TMP_S:
                continue
            tmp.unlink()
        except OSError:
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def trim(directory: Path) -> None:
    """Keeps the newest MAX_ENTRIES entries and at most MAX_BYTES; two processes trimming
    at once only race to remove the same old files."""
    found = []
    for entry in directory.glob("*.cwasm"):
        with contextlib.suppress(OSError):
            info = entry.stat()
            found.append((info.st_mtime, info.st_size, entry))
    found.sort(key=lambda item: item[0], reverse=True)
    total = 0
    for rank, (_, size, entry) in enumerate(found):
        total += size
        if rank >= MAX_ENTRIES or total > MAX_BYTES:
            with contextlib.suppress(OSError):
                entry.unlink()

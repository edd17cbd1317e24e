"""An on-disk cache of compiled plugins, so each plugin content compiles once.

Entries live under ``$VRCLOG_CACHE_DIR``, else ``$XDG_CACHE_HOME/vrclog``,
else ``~/.cache/vrclog``; ``VRCLOG_CACHE_DIR=off`` disables the cache.  The
key covers the plugin's SHA-256, the wasmtime version and the engine settings
that shape compiled code.  Each entry carries a SHA-256 of its own payload:
deserializing damaged machine code could crash the process, so a damaged or
foreign entry is ignored and rebuilt, never loaded.  Writes are atomic.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import wasmtime

from .capi import wasmtime_version

MAGIC = b"vrclog-module-cache-1\n"


def cache_dir() -> Path | None:
    configured = os.environ.get("VRCLOG_CACHE_DIR")
    if configured:
        return None if configured.lower() in ("off", "0", "none") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vrclog"


def cache_key(digest: str, engine_settings: str) -> str:
    """The entry name of a plugin's compiled code: its content's SHA-256 (hex) and the
    settings that shape compiled code."""
    settings = hashlib.sha256(f"{wasmtime_version()}|{engine_settings}".encode()).hexdigest()[:16]
    return f"{digest}-{settings}"


def load(engine: wasmtime.Engine, key: str) -> wasmtime.Module | None:
    """The cached module, or None when absent, damaged or unusable."""
    directory = cache_dir()
    if directory is None:
        return None
    try:
        blob = (directory / f"{key}.cwasm").read_bytes()
    except OSError:
        return None
    header_len = len(MAGIC) + 32
    if not blob.startswith(MAGIC) or len(blob) < header_len:
        return None
    checksum, payload = blob[len(MAGIC):header_len], blob[header_len:]
    if hashlib.sha256(payload).digest() != checksum:
        return None
    try:
        return wasmtime.Module.deserialize(engine, payload)
    except wasmtime.WasmtimeError:
        return None


def store(module: wasmtime.Module, key: str) -> Path | None:
    """Writes the module atomically; a cache that cannot be written is skipped silently."""
    directory = cache_dir()
    if directory is None:
        return None
    try:
        payload = bytes(module.serialize())
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".cwasm")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + hashlib.sha256(payload).digest() + payload)
            target = directory / f"{key}.cwasm"
            os.replace(tmp, target)
            return target
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except (OSError, wasmtime.WasmtimeError):
        return None

"""An on-disk cache of compiled plugins, so each plugin content compiles once.

Entries live under ``$VRCLOG_CACHE_DIR``, else ``$XDG_CACHE_HOME/vrclog``,
else ``~/.cache/vrclog``; ``VRCLOG_CACHE_DIR=off`` disables the cache.  The
key covers the plugin's SHA-256, the wasmtime version and the engine settings
that shape compiled code.  Each entry carries its own key and a SHA-256 of
key and payload, after the payload (so that a component's entry is a compiled
artefact wasmtime maps in place): deserializing damaged machine code could crash the process,
and another plugin's entry copied or linked under this key would run that
plugin's code, so a damaged or foreign entry is ignored and rebuilt, never
loaded (with a note under --verbose).  Entries are opened without following
symbolic links and without blocking, only regular files are read, and no more
than MAX_BYTES.  Writes are atomic.

The cache holds machine code that will run: its folder is made 0700, and a
folder (or entry) that another user owns or others may write is not used at
all.  It keeps the newest 64 entries, 256 MiB at most; a crashed writer's
temporary file is removed by the next writer.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from . import capi
from .installed import wasmtime_version

if TYPE_CHECKING:
    import mmap

T = TypeVar("T")
E = TypeVar("E")  # what deserialize takes: an engine (None for a refusal's text)


class Serializable(Protocol):
    """A compiled module or component."""

    def serialize(self) -> bytes | bytearray: ...

#: Version 3: the seal (this magic, the key, the checksum) after the payload, no longer
#: before it (version 1 and 2 entries are misses).
MAGIC = b"vrclog-module-cache-3\n"


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


def load(engine: capi.Engine, key: str) -> capi.Module | None:
    """The cached module, or None when absent, damaged, unusable or in an untrusted folder."""
    return load_with(capi.Module.deserialize, engine, key)


def _wasmtime_errors() -> tuple[type[Exception], ...]:
    """What wasmtime raises for an entry it refuses: vrclog's own C API's error, and
    wasmtime-py's where it is loaded (components are compiled through it)."""
    loaded = sys.modules.get("wasmtime")
    return (capi.WasmError,) + ((loaded.WasmtimeError,) if loaded is not None else ())


#: Why entries were passed over since the last take_notes (for --verbose).
_notes: list[str] = []


def take_notes() -> list[str]:
    """Why cache entries were not used since the last call (each one line), and forgets them."""
    notes = _notes[:]
    del _notes[:len(notes)]
    return notes


def _miss(path: Path, why: str) -> None:
    _notes.append(f"compiled-module cache: {path} {why}; compiled again")


#: From this size on an entry is mapped rather than read (a component's: 35-50 MB).
MAP_FROM_BYTES = 1 << 20


def _read_entry(path: Path) -> tuple[bytearray | mmap.mmap, os.stat_result] | None:
    """The bytes of an entry this user wrote as a regular file, at most MAX_BYTES, and the
    file's status; None (with a note, unless it is simply absent) otherwise.  Never follows
    a symbolic link and never blocks (a FIFO planted there would hang the run)."""
    if sys.platform == "win32":  # no O_NOFOLLOW or O_NONBLOCK: looked at before it is opened
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return None
        if not stat.S_ISREG(mode):
            _miss(path, "is not a regular file")
            return None
        flags = os.O_RDONLY | os.O_BINARY | os.O_NOINHERIT
    else:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a symbolic link
        _miss(path, "is a symbolic link" if exc.errno == errno.ELOOP else f"cannot be opened: {exc.strerror}")
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            _miss(path, "is not a regular file")
            return None
        if sys.platform != "win32" and info.st_uid != os.getuid():
            _miss(path, "belongs to another user")
            return None
        size = info.st_size
        if size > MAX_BYTES:
            _miss(path, f"is larger than the cache's {MAX_BYTES >> 20} MiB")
            return None
        if size >= MAP_FROM_BYTES:
            # Mapped, not read: the checksum and wasmtime then read the page cache's own
            # pages (a 43 MB entry read and hashed: 75-84 ms; mapped and hashed: 35-36).
            # A private mapping (ACCESS_COPY) is writable, as the no-copy deserialize
            # needs, and nothing is written back.  Entries are only ever replaced whole
            # (written aside, then renamed), never truncated in place under a reader.
            import mmap  # here: core modules' entries are small, and read

            try:
                return mmap.mmap(fd, size, access=mmap.ACCESS_COPY), info
            except ValueError:  # shorter than it was a moment ago: being replaced
                _miss(path, "changed while it was opened")
                return None
        # Read in place into one buffer: joining chunks then slicing the payload out
        # copied it twice.
        blob = bytearray(size)
        view = memoryview(blob)
        total = 0
        with io.FileIO(fd, closefd=False) as raw:
            while total < size and (got := raw.readinto(view[total:])):
                total += got
        return (blob if total == size else blob[:total]), info
    except OSError as exc:
        _miss(path, f"cannot be read: {exc.strerror}")
        return None
    finally:
        os.close(fd)


def _head(key: str) -> bytes:
    return MAGIC + key.encode() + b"\n"


def _seal(key: str, payload: bytes | memoryview) -> bytes:
    """What follows an entry's payload: the magic, its key, a SHA-256 of payload and both."""
    head = _head(key)
    digest = hashlib.sha256(payload)
    digest.update(head)
    return head + digest.digest()


def _opened(key: str, blob: bytearray | mmap.mmap) -> memoryview | str:
    """The payload of an entry sealed for ``key`` (a view into ``blob``: no copy), or why not."""
    head = _head(key)
    start = len(blob) - len(head) - 32
    if start < 0 or blob[start:start + len(MAGIC)] != MAGIC:
        return "is not an entry of this vrclog"
    if blob[start:start + len(head)] != head:
        return "was written for another plugin or engine"
    payload = memoryview(blob)[:start]
    if _seal(key, payload)[-32:] != blob[start + len(head):]:
        payload.release()
        return "is damaged (its checksum does not match)"
    return payload


#: How often a mapped entry that another run replaced mid-load is read again before it
#: is compiled: two cold runs that store one plugin at once replace each other's entry.
LOAD_ATTEMPTS = 3


class _Replaced(Exception):
    """The entry's name came to hold another file while wasmtime loaded it."""


def load_with(deserialize: Callable[[E, memoryview], T], engine: E, key: str,
              deserialize_file: Callable[[E, bytes], T] | None = None) -> T | None:
    """``load`` for what ``deserialize`` makes (a module or a component).  With
    ``deserialize_file`` (given the entry's path, UTF-8), a mapped entry, once its seal is
    checked, is handed to wasmtime by name: wasmtime maps the file in place of copying it
    (the Python sample's 45 MB entry: 39 ms copied, 4 ms mapped); it ignores the seal
    after its artefact."""
    directory = _trusted_dir()
    if directory is None:
        return None
    path = directory / f"{key}.cwasm"
    for _attempt in range(LOAD_ATTEMPTS):
        with contextlib.suppress(_Replaced):
            return _load_once(deserialize, engine, key, deserialize_file, path)
    _miss(path, "was replaced while it was loaded")
    return None


def _load_once(deserialize: Callable[[E, memoryview], T], engine: E, key: str,
               deserialize_file: Callable[[E, bytes], T] | None, path: Path) -> T | None:
    found = _read_entry(path)
    if found is None:
        return None
    blob, checked = found
    payload = _opened(key, blob)
    try:
        if isinstance(payload, str):
            _miss(path, payload)
            return None
        if deserialize_file is None or isinstance(blob, bytearray) or (by_name := _utf8(path)) is None:
            module = deserialize(engine, payload)
        else:
            # Mapped for the run's life: vrclog never truncates an entry in place (it
            # renames a new file in), and on Windows a mapped entry is not replaced or
            # trimmed meanwhile (those writes fail, and are skipped).
            payload.release()
            blob.close()
            module = deserialize_file(engine, by_name)
            if not _same_file(checked, path):
                # Replaced between the check and wasmtime's open: what wasmtime mapped
                # was not what was checked.  The new file is checked in its turn.
                raise _Replaced
    except _wasmtime_errors() as exc:
        _miss(path, f"was refused by wasmtime ({str(exc).strip().splitlines()[0]})")
        return None
    finally:
        if not isinstance(payload, str):
            payload.release()  # wasmtime keeps a copy of what it needs
        if not isinstance(blob, bytearray):
            blob.close()
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: the last to be evicted
    return module


def _utf8(path: Path) -> bytes | None:
    """The path as wasmtime's C API takes one (UTF-8), if it has a UTF-8 spelling."""
    try:
        return str(path).encode("utf-8")
    except UnicodeEncodeError:  # a non-UTF-8 name on POSIX: the entry is copied instead
        return None


def _same_file(checked: os.stat_result, path: Path) -> bool:
    """Whether ``path`` still names the file whose status is ``checked``.  Not its mtime:
    every hit touches its entry (the last to be evicted), so another run's hit on the
    same entry moves it mid-load (seen as a false "replaced" in CI, --workers processes);
    entries change only by a new file renamed in, which the inode tells."""
    try:
        now = os.stat(path)
    except OSError:
        return False
    return os.path.samestat(checked, now) and now.st_size == checked.st_size


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
        import tempfile  # only to write an entry: every warm start spares its import

        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=".cwasm")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.write(_seal(key, payload))
            target = directory / f"{key}.cwasm"
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        trim(directory)
        return target
    except OSError:
        return None
    except _wasmtime_errors():
        return None


class _Verdict:
    """Why a plugin was refused after its compile (a Serializable of its text)."""

    def __init__(self, why: str) -> None:
        self.why = why

    def serialize(self) -> bytearray:
        return bytearray(self.why.encode("utf-8", "replace"))


def store_refusal(key: str, why: str) -> None:
    """Remembers that the plugin cached under ``key`` is refused, and why (without its
    path): a component refused after seconds of compiling is not compiled on every run."""
    store(_Verdict(why), _refusal_key(key))


def load_refusal(key: str) -> str | None:
    """Why the plugin cached under ``key`` was refused, if it was (store_refusal)."""
    return load_with(lambda _engine, payload: bytes(payload).decode("utf-8", "replace"), None,
                     _refusal_key(key))


def _refusal_key(key: str) -> str:
    """A verdict is this vrclog's: another version may accept what this one refuses."""
    from .. import __version__

    return f"{key}-refused-{__version__}"


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

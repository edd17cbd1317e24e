"""The cursor (``--state FILE``): per source, where the next run starts (design.md 11).

For each file it holds the file's identity as it was when saved (its size and the
SHA-256 of its first bytes) and the byte offset after the last line whose events
were all written and flushed (with the number of lines before it, so that line
numbers go on).  The next run starts a file there when the file is still the same
one: no smaller than it was, and its first bytes unchanged (a rotated-away,
replaced or truncated log starts from its beginning again).

The file is JSON, replaced atomically: written to a temporary file beside it,
flushed to disk, then renamed over it; and only after the output it covers was
flushed.  A run killed at any moment repeats at most the lines after the last
save and loses none.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Protocol

from ..errors import OutputError, UsageError
from ..records import asdict, record

FORMAT = "vrclog-state"
VERSION = 1
#: How many of a file's first bytes its identity covers: VRChat's first lines hold the
#: second the log began, so no other log begins with the same bytes.
HEAD_BYTES = 4096


class StateError(UsageError):
    """A state file that is not one vrclog can read (another version's, or damaged)."""


@record(frozen=True)
class Cursor:
    #: The file's size and the SHA-256 of its first ``head_bytes`` bytes, when saved.
    size: int
    head: str
    head_bytes: int
    #: The byte offset after the last line whose events were all written (of the
    #: decompressed stream, for a gzip file), and how many lines come before it.
    offset: int
    line: int


def file_head(path: str, count: int = HEAD_BYTES) -> tuple[str, int]:
    """The SHA-256 of a file's first ``count`` bytes (fewer where it is smaller), and how
    many bytes that is."""
    with open(path, "rb") as f:
        data = f.read(count)
    return hashlib.sha256(data).hexdigest(), len(data)


class CursorKeeper(Protocol):
    """What a run's cursor does: a State file, or a database that is its own (sinks/sqlite.py)."""

    def start_of(self, source: str) -> tuple[int, int]: ...
    def advance(self, source: str, offset: int, line: int) -> None: ...
    def save(self) -> None: ...


def cursor_now(source: str, offset: int, line: int) -> Cursor | None:
    """A cursor at ``offset`` of ``source`` as the file is now (its size and head); None
    where it is gone (nothing left to resume)."""
    try:
        size = os.stat(source).st_size
        head, count = file_head(source, HEAD_BYTES)
    except OSError:
        return None
    return Cursor(size, head, count, offset, line)


def resume_point(source: str, cursor: Cursor | None) -> tuple[int, int]:
    """Where a run starts ``source``: (byte offset, lines before it); (0, 0) for a file
    without a cursor, or one that is no longer the file it saw."""
    if cursor is None:
        return 0, 0
    try:
        size = os.stat(source).st_size
        head, count = file_head(source, cursor.head_bytes)
    except OSError:
        return 0, 0
    if size < cursor.size or count != cursor.head_bytes or head != cursor.head:
        return 0, 0  # truncated, or another file under the same name
    return cursor.offset, cursor.line


class State:
    """A state file's cursors, read at the start of a run and saved as it goes."""

    def __init__(self, path: str | os.PathLike[str], cursors: dict[str, Cursor] | None = None) -> None:
        self.path = Path(path)
        self.cursors: dict[str, Cursor] = dict(cursors or {})
        self._pending: dict[str, tuple[int, int]] = {}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> State:
        """The state saved at ``path``; an empty one where there is no file yet."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise StateError(f"{path}: cannot read the state file: {getattr(exc, 'strerror', exc)}") from None
        return cls(path, _parse(str(path), text))

    def start_of(self, source: str) -> tuple[int, int]:
        """Where a run starts ``source``: see resume_point."""
        return resume_point(source, self.cursors.get(source))

    def advance(self, source: str, offset: int, line: int) -> None:
        """``source``'s lines up to ``offset`` (``line`` of them) are written: saved with the
        next ``save``, which must come after the output is flushed."""
        self._pending[source] = (offset, line)

    def save(self) -> None:
        """Writes the cursors atomically (a temporary file, fsync, rename)."""
        if not self._pending:
            return
        for source, (offset, line) in self._pending.items():
            if (cursor := cursor_now(source, offset, line)) is None:
                self.cursors.pop(source, None)
            else:
                self.cursors[source] = cursor
        self._pending.clear()
        document = {"format": FORMAT, "version": VERSION,
                    "sources": {source: asdict(cursor) for source, cursor in self.cursors.items()}}
        write_atomically(self.path, (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode(),
                         what="the state file")


def _parse(path: str, text: str) -> dict[str, Cursor]:
    def damaged(why: str) -> StateError:
        return StateError(f"{path}: not a vrclog state file ({why}); remove it to start over")

    try:
        document: Any = json.loads(text)
    except ValueError as exc:
        raise damaged(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise damaged(f'no "format": "{FORMAT}"')
    if document.get("version") != VERSION:
        raise StateError(f"{path}: a state file of version {document.get('version')!r}; this vrclog "
                         f"reads version {VERSION} (remove it to start over)")
    sources = document.get("sources")
    if not isinstance(sources, dict):
        raise damaged('"sources" is not an object')
    cursors = {}
    for source, fields in sources.items():
        try:
            cursor = Cursor(**fields)
        except TypeError:
            raise damaged(f"the entry of {source!r} is not a cursor") from None
        numbers = (cursor.size, cursor.head_bytes, cursor.offset, cursor.line)
        if not all(type(n) is int and n >= 0 for n in numbers) or not isinstance(cursor.head, str):
            raise damaged(f"the entry of {source!r} has a bad value")
        cursors[source] = cursor
    return cursors


def write_atomically(path: Path, data: bytes, *, what: str) -> None:
    """``data`` as the file ``path``, whole or not at all (a temporary file, fsync, rename):
    a reader, or the next run after a crash, never sees half of it.  ``what`` names the
    file in the OutputError."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        if sys.platform != "win32":  # the rename itself on disk (Windows cannot open a folder)
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot save {what}: {exc.strerror}") from None

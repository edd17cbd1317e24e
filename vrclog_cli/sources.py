"""Reading log lines from files and standard input (design.md section 4).

Lines end in \\n or \\r\\n; a UTF-8 BOM at the start of a source is dropped;
invalid UTF-8 is replaced; a last line without an ending is still a line.
Memory is bounded: a line longer than ``max_line_bytes`` is reported as too
large without ever being held whole.  Reads are ``os.read`` calls, which
return what is available, so lines from a pipe are seen as soon as they
arrive; an ``Idle`` marker says when no more input is ready right now.
"""

from __future__ import annotations

import os
import select
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import InputError

BOM = b"\xef\xbb\xbf"
STDIN_NAME = "<stdin>"
CHUNK = 256 * 1024


@dataclass(slots=True)
class Line:
    source: str
    number: int
    text: str
    #: Bytes of a line that was too long to keep (text is then empty).
    too_large: int = 0


@dataclass(slots=True)
class Idle:
    """No more input is ready at the moment: a good time to flush output."""


@dataclass(slots=True)
class SourceFailed:
    """An input that could not be opened or read; the others still are."""

    error: InputError


Item = list[Line] | Idle | SourceFailed


def _would_block(fd: int) -> bool:
    try:
        ready, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError):
        return False
    return not ready


class _LineSplitter:
    """Turns chunks of bytes into Lines, never keeping more than the cap of one line."""

    def __init__(self, name: str, max_line_bytes: int) -> None:
        self.name = name
        self.cap = max_line_bytes
        self.number = 0
        self.partial = bytearray()
        self.overflow = 0  # bytes of the current line beyond what was kept
        self.first = True

    def _line(self, raw: bytes | bytearray, extra: int) -> Line:
        self.number += 1
        if self.first:
            self.first = False
            if raw.startswith(BOM):
                raw = raw[len(BOM):]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if extra or len(raw) > self.cap:
            return Line(self.name, self.number, "", too_large=len(raw) + extra)
        return Line(self.name, self.number, raw.decode("utf-8", "replace"))

    def feed(self, chunk: bytes) -> list[Line]:
        lines: list[Line] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            if self.partial or self.overflow:
                self.partial += chunk[start:end]
                lines.append(self._line(self.partial, self.overflow))
                self.partial = bytearray()
                self.overflow = 0
            else:
                lines.append(self._line(chunk[start:end], 0))
            start = end + 1
        rest = chunk[start:]
        room = self.cap + 4 - len(self.partial)  # +4: a BOM and \r may still be cut off
        if len(rest) > room:
            self.overflow += len(rest) - max(room, 0)
            rest = rest[: max(room, 0)]
        self.partial += rest
        return lines

    def finish(self) -> list[Line]:
        if self.partial or self.overflow:
            line = self._line(self.partial, self.overflow)
            self.partial = bytearray()
            self.overflow = 0
            return [line]
        return []


def _open(path: str) -> tuple[int, str]:
    if path == "-":
        return sys.stdin.fileno(), STDIN_NAME
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror}") from None
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(f"{path}: is a directory")
    return fd, path


def read_items(paths: list[str], max_line_bytes: int, batch_lines: int = 64) -> Iterator[Item]:
    """Batches of lines from each path in order ("-" is stdin), with Idle markers."""
    for path in paths or ["-"]:
        try:
            fd, name = _open(path)
        except InputError as exc:
            yield SourceFailed(exc)
            continue
        splitter = _LineSplitter(name, max_line_bytes)
        try:
            while True:
                if _would_block(fd):
                    yield Idle()
                try:
                    chunk = os.read(fd, CHUNK)
                except OSError as exc:
                    yield SourceFailed(InputError(f"{name}: read error: {exc.strerror}"))
                    break
                lines = splitter.feed(chunk) if chunk else splitter.finish()
                for i in range(0, len(lines), batch_lines):
                    yield lines[i:i + batch_lines]
                if not chunk:
                    break
        finally:
            if path != "-":
                os.close(fd)

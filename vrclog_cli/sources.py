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
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .errors import InputError

BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
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
        last = chunk.rfind(b"\n")
        if last >= 0 and (self.partial or self.overflow or self.first):
            # The line that completes what was kept (or that may start with a BOM).
            end = chunk.find(b"\n")
            self.partial += chunk[:end]
            lines.append(self._line(self.partial, self.overflow))
            self.partial = bytearray()
            self.overflow = 0
            start = end + 1
        if start <= last:
            if last - start <= self.cap:
                self._whole_lines(chunk[start:last], lines)
            else:
                while start <= last:
                    end = chunk.find(b"\n", start)
                    lines.append(self._line(chunk[start:end], 0))
                    start = end + 1
            start = last + 1
        rest = chunk[start:]
        room = self.cap + 4 - len(self.partial)  # +4: a BOM and \r may still be cut off
        if len(rest) > room:
            self.overflow += len(rest) - max(room, 0)
            rest = rest[: max(room, 0)]
        self.partial += rest
        return lines

    def _whole_lines(self, body: bytes, lines: list[Line]) -> None:
        """Complete lines, none over the cap (body is no longer than it), decoded at once.

        Decoding the whole body gives what decoding line by line would: a UTF-8
        decoder resynchronises at every ASCII byte, so at every newline.
        """
        texts = body.decode("utf-8", "replace").split("\n")
        if b"\r" in body:
            texts = [t[:-1] if t.endswith("\r") else t for t in texts]
        name = self.name
        number = self.number
        lines.extend([Line(name, number + i, text) for i, text in enumerate(texts, 1)])
        self.number = number + len(texts)

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


class Decoder:
    """Raw chunks in, log bytes out: gzip (recognised by its magic bytes) is inflated
    as it streams, in bounded pieces (a gzip bomb cannot fill memory);
    concatenated gzip members are all read, as gzip -d does."""

    PIECE = 1 << 20

    def __init__(self) -> None:
        self._gzip: zlib._Decompress | None = None
        self._decided = False
        self._head = b""

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        if not self._decided:
            self._head += chunk
            if len(self._head) < len(GZIP_MAGIC) and chunk:
                return
            self._decided = True
            chunk, self._head = self._head, b""
            if chunk.startswith(GZIP_MAGIC):
                self._gzip = zlib.decompressobj(wbits=47)
        if self._gzip is None:
            yield chunk
            return
        while chunk:
            yield self._gzip.decompress(chunk, self.PIECE)
            if self._gzip.eof:  # a member ended: what follows starts the next one
                # (at the end of a stream, unused_data holds all the input after it,
                # unconsumed_tail included)
                chunk = self._gzip.unused_data
                if chunk:
                    self._gzip = zlib.decompressobj(wbits=47)
            else:
                chunk = self._gzip.unconsumed_tail

    def finish(self) -> Iterator[bytes]:
        if not self._decided:
            self._decided = True
            yield self._head
        elif self._gzip is not None:
            yield self._gzip.flush()


#: Called with the number of raw bytes read, for progress display.
ByteCounter = Callable[[int], None]


def read_items(paths: list[str], max_line_bytes: int, batch_lines: int = 64,
               on_bytes: ByteCounter | None = None) -> Iterator[Item]:
    """Batches of lines from each path in order ("-" is stdin), with Idle markers."""
    for path in paths or ["-"]:
        try:
            fd, name = _open(path)
        except InputError as exc:
            yield SourceFailed(exc)
            continue
        splitter = _LineSplitter(name, max_line_bytes)
        decoder = Decoder()
        try:
            while True:
                if _would_block(fd):
                    yield Idle()
                try:
                    chunk = os.read(fd, CHUNK)
                except OSError as exc:
                    yield SourceFailed(InputError(f"{name}: read error: {exc.strerror}"))
                    break
                if on_bytes is not None:
                    on_bytes(len(chunk))
                try:
                    for data in decoder.feed(chunk) if chunk else decoder.finish():
                        lines = splitter.feed(data)
                        for i in range(0, len(lines), batch_lines):
                            yield lines[i:i + batch_lines]
                except zlib.error as exc:
                    yield SourceFailed(InputError(f"{name}: corrupt gzip data: {exc}"))
                    break
                if not chunk:
                    tail = splitter.finish()
                    if tail:
                        yield tail
                    break
        finally:
            if path != "-":
                os.close(fd)

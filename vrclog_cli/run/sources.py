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
import re
import select
import stat
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import accumulate

from ..errors import InputError
from ..records import record

BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
STDIN_NAME = "<stdin>"
CHUNK = 256 * 1024
#: Lines per batch unless the caller asks otherwise: small enough to spread plugin
#: lines over workers, large enough that a batch costs little per line.
BATCH_LINES = 64


@record(slots=True)
class Line:
    source: str
    number: int
    text: str
    #: Bytes of a line that was too long to keep (text is then empty).
    too_large: int = 0
    #: The byte offset of the line's start in its source (None: not tracked).
    offset: int | None = None


@record(slots=True)
class Lines:
    """A batch: consecutive lines of one source.

    Texts, not Line objects: most lines of a log are read, parsed and
    forgotten, and an object for each cost more than the built-in parser
    spends on a line.  ``line(i)`` makes one for the few that need it.
    """

    source: str
    #: The number of texts[0] (lines count from 1).
    first: int
    texts: list[str]
    #: Lines too long to keep, by index into texts (their text is ""): their size in bytes.
    too_large: dict[int, int] | None = None
    #: Each line's byte offset in its source (the decompressed stream of a gzip file),
    #: when the reader was asked for them (provenance and cursors need them).
    offsets: list[int] | None = None
    #: With offsets: the offset after the batch's last line, where the reader is done with
    #: the source up to (a cursor's resume point); None on all but the last batch of a
    #: chunk (``batches``), whose lines the reader skipped may have no offset.
    end: int | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def resume_point(self, done: int) -> tuple[int, int] | None:
        """(offset, line) a cursor moves to once the first ``done`` lines are written: the
        batch's end, when all of them are and it ends a chunk (``end``); else None."""
        if self.end is None or done != len(self.texts):
            return None
        return self.end, self.first + done - 1

    def line(self, index: int) -> Line:
        big = self.too_large.get(index, 0) if self.too_large else 0
        offset = self.offsets[index] if self.offsets is not None else None
        return Line(self.source, self.first + index, self.texts[index], big, offset)

    def __iter__(self) -> Iterator[Line]:
        return (self.line(i) for i in range(len(self.texts)))

    def batches(self, size: int) -> Iterator[Lines]:
        """This batch cut into batches of at most ``size`` lines."""
        if len(self.texts) <= size:
            yield self
            return
        big = self.too_large
        for start in range(0, len(self.texts), size):
            end = start + size
            part = {i - start: n for i, n in big.items() if start <= i < end} if big else None
            yield Lines(self.source, self.first + start, self.texts[start:end], part or None,
                        None if self.offsets is None else self.offsets[start:end],
                        self.end if end >= len(self.texts) else None)


@record(slots=True)
class Idle:
    """No more input is ready at the moment: a good time to flush output."""


@record(slots=True)
class SourceFailed:
    """An input that could not be opened or read, or is damaged; the others still are."""

    error: InputError
    #: The input as named in diagnostics ("" when not known), and the number of the
    #: first line it could not give whole (0: none was read), for CI reports.
    source: str = ""
    line: int = 0


@record(slots=True)
class SourceWarning:
    """Something about an input a person should know, that loses no whole line."""

    message: str


Item = Lines | Idle | SourceFailed | SourceWarning


def _would_block(fd: int) -> bool:
    try:
        ready, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError):
        return False
    return not ready


#: A pattern that matches a newline and the start of the line after it, where that line
#: is one a parser can use (``vrchat.builtin.RAW_LINE_FINDER``): the reader decodes only
#: those (see ``LineSplitter._found_lines``).
LineFinder = re.Pattern[bytes]


def needled_line_ends(body: bytes, needles: tuple[bytes, ...]) -> dict[int, int]:
    """Line start -> line end (its newline, or the body's end) for every line of ``body``
    that holds one of ``needles``: one C-speed ``bytes.find`` scan per needle."""
    ends: dict[int, int] = {}
    for needle in needles:
        pos = body.find(needle)
        while pos >= 0:
            begin = body.rfind(b"\n", 0, pos) + 1
            end = body.find(b"\n", pos)
            if end < 0:
                end = len(body)
            ends[begin] = end
            pos = body.find(needle, end)
    return ends


#: The offset of a line the reader skipped (left undecoded): no event can come from it.
UNKNOWN_OFFSET = -1


def line_starts(chunk: bytes, start: int, last: int, base: int) -> list[int]:
    """The offsets (``base`` + position in ``chunk``) of the lines that begin at ``start``
    and at each newline up to ``last`` (the chunk's last newline): C-level iterators over
    the lines' lengths, ~30 ns a line."""
    lengths = map((1).__add__, map(len, chunk[start:last].split(b"\n")))
    starts = list(accumulate(lengths, initial=base + start))
    del starts[-1]  # where the next line would begin
    return starts


class LineSplitter:
    """Turns chunks of bytes into Lines batches, never keeping more than the cap of one line.

    With ``needles``, a line whose bytes contain none of them is not decoded: its
    text is "" (every parser's prefilter rejects it anyway; see ``raw_needles``).
    With ``finder`` (a LineFinder), the same for a line the pattern does not find (the
    built-in parser's lines).
    """

    def __init__(self, name: str, max_line_bytes: int, needles: tuple[bytes, ...] | None = None,
                 finder: LineFinder | None = None, offsets: bool = False) -> None:
        self.name = name
        self.cap = max_line_bytes
        self.needles = needles
        self.finder = finder
        self.number = 0  # lines handed out so far
        self.partial = bytearray()
        self.overflow = 0  # bytes of the current line beyond what was kept
        self.first = True
        #: Whether batches carry each line's byte offset (Lines.offsets).
        self.offsets = offsets
        self.position = 0  # bytes fed so far: the offset of the next chunk's first byte
        self.partial_start = 0  # the offset of the line in progress (partial, overflow)

    def _line(self, raw: bytes | bytearray, extra: int, out: Lines) -> None:
        if self.first:
            self.first = False
            if raw.startswith(BOM):
                raw = raw[len(BOM):]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if extra or len(raw) > self.cap:
            if out.too_large is None:
                out.too_large = {}
            out.too_large[len(out.texts)] = len(raw) + extra
            out.texts.append("")
        else:
            out.texts.append(raw.decode("utf-8", "replace"))

    def feed(self, chunk: bytes) -> Lines | None:
        """The lines that chunk completes (None when it completes none)."""
        out = Lines(self.name, self.number + 1, [], offsets=[] if self.offsets else None)
        base = self.position
        self.position += len(chunk)
        start = 0
        last = chunk.rfind(b"\n")
        if last >= 0 and (self.partial or self.overflow or self.first):
            # The line that completes what was kept (or that may start with a BOM).
            end = chunk.find(b"\n")
            self.partial += chunk[:end]
            if out.offsets is not None:
                out.offsets.append(self.partial_start)
            self._line(self.partial, self.overflow, out)
            self.partial = bytearray()
            self.overflow = 0
            start = end + 1
        if start <= last:
            offsets = out.offsets
            if last - start <= self.cap:
                first = len(out.texts)
                if self.finder is not None:
                    kept = self._found_lines(chunk[start:last], out.texts, self.finder)
                elif self.needles is None:
                    kept = None
                    self._whole_lines(chunk[start:last], out.texts)
                else:
                    kept = self._needled_lines(chunk[start:last], out.texts, self.needles)
                if offsets is not None:
                    if kept is None:
                        offsets.extend(line_starts(chunk, start, last, base))
                    else:  # only a kept line can give an event: the others' are never asked for
                        offsets.extend([UNKNOWN_OFFSET] * (len(out.texts) - first))
                        for index, at in kept:
                            offsets[first + index] = base + start + at
            else:
                if offsets is not None:
                    offsets.extend(line_starts(chunk, start, last, base))
                while start <= last:
                    end = chunk.find(b"\n", start)
                    self._line(chunk[start:end], 0, out)
                    start = end + 1
            start = last + 1
        rest = chunk[start:]
        if rest and not (self.partial or self.overflow):
            self.partial_start = base + start
        room = self.cap + 4 - len(self.partial)  # +4: a BOM and \r may still be cut off
        if len(rest) > room:
            self.overflow += len(rest) - max(room, 0)
            rest = rest[: max(room, 0)]
        self.partial += rest
        self.number += len(out.texts)
        if out.offsets is not None and out.texts:
            out.end = base + last + 1
        return out if out.texts else None

    @staticmethod
    def _whole_lines(body: bytes, texts: list[str]) -> None:
        """Complete lines, none over the cap (body is no longer than it), decoded at once.

        Decoding the whole body gives what decoding line by line would: a UTF-8
        decoder resynchronises at every ASCII byte, so at every newline.
        """
        decoded = body.decode("utf-8", "replace").split("\n")
        if b"\r" in body:
            decoded = [t[:-1] if t.endswith("\r") else t for t in decoded]
        texts.extend(decoded)

    @staticmethod
    def _found_lines(body: bytes, texts: list[str], finder: LineFinder) -> list[tuple[int, int]]:
        """What ``_whole_lines`` gives at every line that ``finder`` finds, and "" at the
        others (see ``_kept_lines``).

        One regular-expression scan of the block finds the few lines worth decoding
        (VRChat's have the built-in parser's prefixes at byte 34): on the bench log 0.6
        of the time of splitting the block into lines and matching each (128 ms against
        188 with offsets, 152 without), and each kept line's offset comes with it."""
        first_end = body.find(b"\n")
        if first_end < 0:
            first_end = len(body)

        def spans() -> Iterator[tuple[int, int]]:
            if finder.match(b"\n" + body[:first_end]) is not None:
                yield 0, first_end
            for match in finder.finditer(body):
                end = body.find(b"\n", match.end())
                yield match.start() + 1, len(body) if end < 0 else end
        return LineSplitter._kept_lines(body, texts, spans())

    @staticmethod
    def _needled_lines(body: bytes, texts: list[str], needles: tuple[bytes, ...]) -> list[tuple[int, int]]:
        """What ``_whole_lines`` gives at every line containing a needle, and "" at the
        others: one C-speed scan of the block per needle instead of decoding it all
        (decoding and splitting is most of the cost of a prefiltered run)."""
        ends = needled_line_ends(body, needles)
        return LineSplitter._kept_lines(body, texts, ((begin, ends[begin]) for begin in sorted(ends)))

    @staticmethod
    def _kept_lines(body: bytes, texts: list[str], spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
        """Adds every line of ``body`` to ``texts``: decoded for each (start, end) of
        ``spans`` (lines in order), "" for the others; returns (index, start) of each
        decoded line.  The newlines are counted once, up to each kept line and then to
        the end: a separate count of the whole block first cost ~11 ms a run of the
        38 MB bench log."""
        kept: list[tuple[int, int, int]] = []
        index = counted = 0
        for start, end in spans:
            index += body.count(b"\n", counted, start)
            counted = start
            kept.append((index, start, end))
        first = len(texts)
        texts.extend([""] * (index + body.count(b"\n", counted) + 1))
        for index, start, end in kept:
            raw = body[start:end]
            texts[first + index] = (raw[:-1] if raw.endswith(b"\r") else raw).decode("utf-8", "replace")
        return [(index, start) for index, start, _ in kept]

    def resume(self, offset: int, before: int) -> None:
        """Starts at ``offset`` of the source, ``before`` lines in (a cursor's place: at a
        line's start, never at a byte-order mark)."""
        self.position = self.partial_start = offset
        self.number = before
        self.first = False

    def restart(self) -> None:
        """Drops the line in progress: its source starts over (a truncated file).  Its lines
        are a new file's, numbered from 1 again, as after a rotation."""
        self.partial = bytearray()
        self.overflow = 0
        self.number = 0
        self.position = self.partial_start = 0

    def finish(self) -> Lines | None:
        """The last line, when the input did not end with a line ending."""
        if not (self.partial or self.overflow):
            return None
        out = Lines(self.name, self.number + 1, [], offsets=[self.partial_start] if self.offsets else None,
                    end=self.position if self.offsets else None)
        self._line(self.partial, self.overflow, out)
        self.partial = bytearray()
        self.overflow = 0
        self.number += 1
        return out


def open_shared(path: str | os.PathLike[str]) -> int:
    """A read-only descriptor of a log that others may go on writing, renaming and deleting.

    POSIX allows all three.  Windows' own open (the C runtime's) withholds
    FILE_SHARE_DELETE: while vrclog read a log, VRChat could not rotate or delete it.
    There the file is opened through CreateFileW with every sharing mode.
    """
    if sys.platform != "win32":
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    import ctypes
    import msvcrt

    generic_read, share_all, open_existing, invalid = 0x80000000, 0x7, 3, ctypes.c_void_p(-1).value
    create = ctypes.windll.kernel32.CreateFileW
    create.restype = ctypes.c_void_p
    handle = create(os.fspath(path), generic_read, share_all, None, open_existing, 0x80, None)
    if handle is None or handle == invalid:
        raise ctypes.WinError()
    try:
        return msvcrt.open_osfhandle(handle, os.O_RDONLY)
    except OSError:
        ctypes.windll.kernel32.CloseHandle(ctypes.c_void_p(handle))
        raise


def _open(path: str) -> tuple[int, str]:
    if path == "-":
        if sys.stdin is None:  # started with descriptor 0 closed (`<&-`)
            raise InputError(f"{STDIN_NAME}: cannot read: standard input is closed")
        return sys.stdin.fileno(), STDIN_NAME
    try:
        fd = open_shared(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror}") from None
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(f"{path}: is a directory (use --log-dir DIR for a VRChat log folder)")
    return fd, path


class CorruptGzip(ValueError):
    """Damage the gzip reader can see: a member cut short, a CRC-32 or length trailer
    that does not match, bad deflate data, or bytes after the last member."""


#: zlib's words for damage, as a person reads them.
_ZLIB_PROBLEMS = {
    "incorrect data check": "the CRC-32 in the trailer does not match the data",
    "incorrect length check": "the length in the trailer does not match the data",
    "incorrect header check": "not a gzip header",
}


class Decoder:
    """Raw chunks in, log bytes out: gzip (recognised by its magic bytes) is inflated
    as it streams, in bounded pieces (a gzip bomb cannot fill memory);
    concatenated gzip members are all read, as gzip -d does.

    Damage raises CorruptGzip after the data before it has been handed out, so a
    truncated or altered log is never taken as clean (what ``gzip -t`` refuses is
    refused here; zero bytes padding the end are ignored, as gzip ignores them)."""

    PIECE = 1 << 20

    def __init__(self) -> None:
        self._gzip: zlib._Decompress | None = None
        self._decided = False
        self._is_gzip = False
        self._head = b""
        #: Compressed bytes consumed so far, and where the current member began.
        self._offset = 0
        self._member_at = 0
        #: Between members: the start of a next one (a magic byte split across reads).
        self._between = b""
        self._padded = False

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        if not self._decided:
            self._head += chunk
            if len(self._head) < len(GZIP_MAGIC) and chunk:
                return
            self._decided = True
            chunk, self._head = self._head, b""
            self._is_gzip = chunk.startswith(GZIP_MAGIC)
        if not self._is_gzip:
            yield chunk
            return
        while chunk:
            gz = self._gzip
            if gz is None:
                chunk = self._next_member(chunk)
                if not chunk:
                    return
                gz = self._gzip = zlib.decompressobj(wbits=47)
            before = len(chunk)
            saved = gz.copy()  # ~40 KB copied per 256 KiB read, for _salvage
            try:
                data = gz.decompress(chunk, self.PIECE)
            except zlib.error as exc:
                yield from self._salvage(saved, chunk)
                raise CorruptGzip(self._problem(exc)) from None
            yield data
            if gz.eof:  # a member ended: what follows starts the next one
                # (at the end of a stream, unused_data holds all the input after it,
                # unconsumed_tail included)
                chunk = gz.unused_data
                self._gzip = None
            else:
                chunk = gz.unconsumed_tail
            self._offset += before - len(chunk)

    def _next_member(self, chunk: bytes) -> bytes:
        """The bytes from a next member's start, or b"" when none has begun yet;
        CorruptGzip for anything but members and zero padding."""
        chunk, self._between = self._between + chunk, b""
        if not self._padded and GZIP_MAGIC.startswith(chunk):  # b"\x1f": wait for more
            self._between = chunk
            return b""
        if not self._padded and chunk.startswith(GZIP_MAGIC):
            self._member_at = self._offset
            return chunk
        data = chunk.lstrip(b"\0")
        if data:
            raise CorruptGzip(f"data that is not gzip after the last member, at byte "
                              f"{self._offset + len(chunk) - len(data)}")
        self._padded = True
        self._offset += len(chunk)
        return b""

    @staticmethod
    def _salvage(gz: zlib._Decompress, chunk: bytes) -> Iterator[bytes]:
        """What ``chunk`` inflates to before the byte where zlib saw the damage: zlib
        raises for the whole call, so the data before a bad trailer would be lost with
        it.  A byte at a time (inflating one byte gives at most ~1 KB), on damage only."""
        for at in range(len(chunk)):
            try:
                data = gz.decompress(chunk[at:at + 1])
            except zlib.error:
                return
            if data:
                yield data
            if gz.eof:
                return

    def _problem(self, exc: zlib.error) -> str:
        text = str(exc).removeprefix("Error -3 while decompressing data: ")
        return f"{_ZLIB_PROBLEMS.get(text, text)} (member starting at byte {self._member_at})"

    def finish(self) -> Iterator[bytes]:
        if not self._decided:
            self._decided = True
            yield self._head
        elif self._gzip is not None:
            yield self._gzip.flush()
            raise CorruptGzip(f"ended inside a member at byte {self._offset}")
        elif self._between:
            raise CorruptGzip(f"ended inside a member header at byte {self._offset + len(self._between)}")


#: Bytes read from the start of each file to estimate what its prefilters let through.
SAMPLE_BYTES = 1 << 20


def needled_bytes(paths: Sequence[str], needles: tuple[bytes, ...], sample_bytes: int = SAMPLE_BYTES,
                  max_sampled: int = 8 * SAMPLE_BYTES) -> int | None:
    """An estimate of the bytes in the files' lines that hold one of ``needles``, from
    the first ``sample_bytes`` of each (at most ``max_sampled`` in all); None when it
    cannot be told: an input that is not a regular file, or a gzip file."""
    total = sampled = needled = 0
    for path in paths or ["-"]:
        if path == "-":
            return None
        try:
            fd = open_shared(path)
        except OSError:
            continue  # the run reports it
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return None
            total += info.st_size
            if sampled >= max_sampled:
                continue
            head = os.read(fd, sample_bytes)
        finally:
            os.close(fd)
        if head.startswith(GZIP_MAGIC):
            return None
        body = head[:head.rfind(b"\n") + 1] or head
        sampled += len(body)
        needled += sum(end - begin + 1 for begin, end in needled_line_ends(body, needles).items())
    return round(needled / sampled * total) if sampled else 0


def snapshot_end(path: str) -> tuple[int, int]:
    """Where a file's new lines will begin (``--new``): its size now, and how many lines
    it holds before that; a gzip file (written once) has nothing new: its whole stream is
    skipped."""
    with open(path, "rb") as f:
        if f.read(len(GZIP_MAGIC)) == GZIP_MAGIC:
            return sys.maxsize, 0
        f.seek(0)
        size = os.fstat(f.fileno()).st_size
        lines = 0
        while (chunk := f.read(min(CHUNK, size - f.tell()))):
            lines += chunk.count(b"\n")
        return size, lines


#: Called with the number of raw bytes read, for progress display.
ByteCounter = Callable[[int], None]


def read_items(paths: list[str], max_line_bytes: int, batch_lines: int = BATCH_LINES,
               on_bytes: ByteCounter | None = None, needles: tuple[bytes, ...] | None = None,
               finder: LineFinder | None = None, offsets: bool = False,
               starts: Mapping[str, tuple[int, int]] | None = None) -> Iterator[Item]:
    """Batches of lines from each path in order ("-" is stdin), with Idle markers.
    ``needles``, ``finder``: lines without them may be left undecoded ("");
    ``offsets``: batches carry each line's byte offset; ``starts``: per path, the byte
    offset to start at and the number of lines before it (a cursor's, sinks/state.py)."""
    for path in paths or ["-"]:
        try:
            fd, name = _open(path)
        except InputError as exc:
            yield SourceFailed(exc, STDIN_NAME if path == "-" else path)
            continue
        splitter = LineSplitter(name, max_line_bytes, needles, finder, offsets)
        decoder = Decoder()
        consumed = 0  # raw bytes read: more than a regular file holds at its end = truncated
        skip = 0  # bytes of the decompressed stream before the start (a gzip file's cursor)
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
            start, before = starts.get(path, (0, 0)) if starts and regular else (0, 0)
            if start:
                if os.read(fd, len(GZIP_MAGIC)) == GZIP_MAGIC:
                    os.lseek(fd, 0, os.SEEK_SET)
                    skip = start
                else:
                    consumed = os.lseek(fd, start, os.SEEK_SET)
                splitter.resume(start, before)
            while True:
                if _would_block(fd):
                    yield Idle()
                try:
                    chunk = os.read(fd, CHUNK)
                except OSError as exc:
                    yield SourceFailed(InputError(f"{name}: read error: {exc.strerror}"),
                                       name, splitter.number + 1)
                    break
                consumed += len(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
                if not chunk and regular and (size := os.fstat(fd).st_size) < consumed:
                    # Cut while it was read: the piece of line read last was never finished.
                    yield SourceWarning(f"{name}: truncated while it was read ({consumed:,} bytes "
                                        f"read, {size:,} now); its last, unfinished line is not parsed")
                    break
                try:
                    for data in decoder.feed(chunk) if chunk else decoder.finish():
                        if skip:
                            if len(data) <= skip:
                                skip -= len(data)
                                continue
                            data, skip = data[skip:], 0
                        lines = splitter.feed(data)
                        if lines is not None:
                            yield from lines.batches(batch_lines)
                except CorruptGzip as exc:
                    yield SourceFailed(InputError(f"{name}: corrupt gzip data: {exc}"),
                                       name, splitter.number + 1)
                    break
                if not chunk:
                    tail = splitter.finish()
                    if tail is not None:
                        yield tail
                    break
        finally:
            if path != "-":
                os.close(fd)

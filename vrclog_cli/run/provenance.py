"""Where each event came from, and its id (design.md section 11, ``--provenance``).

An event's id is derived from what it is about, never from the run that found it:

    id = BLAKE2b-128( source identity  NUL  the line's byte offset  NUL  parser key
                      NUL  the event's index in that parser's answer  NUL  the line )

as 32 hex digits (BLAKE2b, RFC 7693, with a 16-byte digest), where

- the source identity is the file's name without its folder and without a
  trailing ``.gz`` (VRChat names each log for the moment it began, so the name
  is unique; a log moved to another folder or machine, or compressed, keeps
  its ids), and ``-`` for standard input;
- the line is as vrclog reads it: its text in UTF-8, invalid bytes as U+FFFD,
  without the line ending (last, so the NULs before it cannot be confused with
  its own);
- the parser key is ``builtin:`` and the built-in parser's version, or
  ``plugin:`` and the SHA-256 of the plugin file.

So the same line of the same log gives the same ids with any ``--jobs``, with
threads or processes, on any machine.  What changes an id: renaming the file,
a different byte offset (bytes inserted before the line), a changed line, a
changed plugin, or a new built-in parser version.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from ..events import Event, EventSource
from .sources import STDIN_NAME, Lines

try:  # hashlib's own blake2b, without importing OpenSSL (~4 ms of start-up) for it
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import blake2b

#: An id's size: 128 bits, 32 hex digits.
ID_BYTES = 16


def source_identity(source: str) -> str:
    """The part of a source's name its events' ids depend on (see the module's docstring)."""
    if source in (STDIN_NAME, "-"):
        return "-"
    base = os.path.basename(source.replace("\\", "/").rstrip("/"))
    return base.removesuffix(".gz")


def parser_key(parser: object) -> str:
    """``plugin:<sha256>`` for a plugin, ``builtin:<version>`` for the built-in parser."""
    digest = getattr(parser, "sha256", None)
    if isinstance(digest, str) and digest:
        return "plugin:" + digest
    version = getattr(parser, "version", None)
    if isinstance(version, str) and version:
        return f"{getattr(parser, 'name', 'parser')}:{version}"
    raise TypeError(f"{parser!r} has neither a sha256 nor a version: its events cannot have ids")


def event_id(identity: str, offset: int, parser: str, index: int, line: str) -> str:
    """The id (the reference: Stamper makes the same, a test holds it)."""
    text = f"{identity}\0{offset}\0{parser}\0{index}\0{line}"
    return blake2b(text.encode("utf-8", "surrogatepass"), digest_size=ID_BYTES).hexdigest()


def line_bytes(line: str) -> int:
    """The bytes a line given as text takes in its file: its UTF-8 and its line ending,
    or one newline where it came without one (the library's parse_lines)."""
    size = len(line.encode("utf-8", "surrogatepass"))
    return size if line.endswith("\n") else size + 1


def line_offsets(lines: Sequence[str], start: int = 0) -> list[int]:
    """Each line's offset, the first at ``start`` (see line_bytes)."""
    offsets = []
    for line in lines:
        offsets.append(start)
        start += line_bytes(line)
    return offsets


_new_tuple = tuple.__new__  # a NamedTuple made without its Python-level __new__


class Stamper:
    """Gives a batch's events their source and id; only lines with events cost anything.

    One hash call an event, the line's text inside it: hashlib's cost is per call
    (~1 µs: a context set up, copied and finished), hardly per byte.  Two SHA-256s an
    event (the line's, then the id's) made --provenance cost +15 % of the built-in
    parser's run on the bench log; one BLAKE2b, +10 % (docs/performance.md)."""

    def __init__(self, parsers: Sequence[object]) -> None:
        self.keys = [parser_key(parser) for parser in parsers]
        self._sources: dict[str, tuple[str, str]] = {}  # name -> (file as shown, identity)

    def _named(self, source: str) -> tuple[str, str]:
        named = self._sources.get(source)
        if named is None:
            named = self._sources[source] = ("-" if source == STDIN_NAME else source, source_identity(source))
        return named

    def stamp(self, batch: Lines, index: int, parser: int, events: list[Event]) -> None:
        """One line's events (those of parser number ``parser``)."""
        self.stamp_lines(batch, parser, ((index, events),))

    def stamp_lines(self, batch: Lines, parser: int, found: Iterable[tuple[int, list[Event]]]) -> None:
        """Each (index in the batch, events) of ``found``: the events of parser ``parser``."""
        offsets = batch.offsets
        if offsets is None:
            raise ValueError(f"{batch.source}: read without offsets")
        file, identity = self._named(batch.source)
        key = self.keys[parser]
        texts, first, digest_size = batch.texts, batch.first, ID_BYTES
        for index, events in found:
            if (offset := offsets[index]) < 0:
                raise ValueError(f"{batch.source}:{first + index}: read without its offset")
            source = _new_tuple(EventSource, (file, first + index, offset))  # 0.2 µs less
            if len(events) == 1:  # most lines: the text made in one f-string
                event = events[0]
                event.source = source
                text = f"{identity}\0{offset}\0{key}\x000\0{texts[index]}"  # \x00 then index 0
                event.id = blake2b(text.encode("utf-8", "surrogatepass"), digest_size=digest_size).hexdigest()
                continue
            for position, event in enumerate(events):  # a few lines: the reference itself
                event.source = source
                event.id = event_id(identity, offset, key, position, texts[index])

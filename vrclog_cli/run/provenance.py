"""Where each event came from, and its id (design.md section 11, ``--provenance``).

An event's id is derived from what it is about, never from the run that found it:

    id = SHA-256( source identity  NUL  the line's byte offset  NUL  line hash
                  NUL  parser key  NUL  the event's index in that parser's answer )

as 32 hex digits (128 bits), where

- the source identity is the file's name without its folder and without a
  trailing ``.gz`` (VRChat names each log for the moment it began, so the name
  is unique; a log moved to another folder or machine, or compressed, keeps
  its ids), and ``-`` for standard input;
- the line hash is the SHA-256 of the line as vrclog reads it: its text in
  UTF-8, invalid bytes as U+FFFD, without the line ending;
- the parser key is ``builtin:`` and the built-in parser's version, or
  ``plugin:`` and the SHA-256 of the plugin file.

So the same line of the same log gives the same ids with any ``--jobs``, with
threads or processes, on any machine.  What changes an id: renaming the file,
a different byte offset (bytes inserted before the line), a changed line, a
changed plugin, or a new built-in parser version.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence

from ..events import Event, EventSource
from .sources import STDIN_NAME, Lines

#: How many hex digits of the SHA-256 an id keeps.
ID_HEX_DIGITS = 32


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


def event_id(identity: str, offset: int, line_hash: str, parser: str, index: int) -> str:
    """The id (the reference: Stamper makes the same, a test holds it)."""
    text = f"{identity}\0{offset}\0{line_hash}\0{parser}\0{index}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:ID_HEX_DIGITS]


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

    Each line's events are stamped in one loop (``stamp_lines``), the usual single
    event's id made without a loop (--provenance on the bench log: +19 % -> +15 % CPU
    against no provenance, paired runs).  Half of what is left is the two SHA-256s an
    event: hashlib's cost a call (~1.2 µs), not the hashing."""

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
        tail = f"\0{self.keys[parser]}\0"
        texts, first, sha256 = batch.texts, batch.first, hashlib.sha256
        for index, events in found:
            if (offset := offsets[index]) < 0:
                raise ValueError(f"{batch.source}:{first + index}: read without its offset")
            source = _new_tuple(EventSource, (file, first + index, offset))  # 0.2 µs less
            line_hash = sha256(texts[index].encode("utf-8", "surrogatepass")).hexdigest()
            prefix = f"{identity}\0{offset}\0{line_hash}{tail}"
            if len(events) == 1:
                event = events[0]
                event.source = source
                event.id = sha256((prefix + "0").encode("utf-8", "surrogatepass")).hexdigest()[:ID_HEX_DIGITS]
                continue
            for position, event in enumerate(events):
                event.source = source
                key = (prefix + str(position)).encode("utf-8", "surrogatepass")
                event.id = sha256(key).hexdigest()[:ID_HEX_DIGITS]

"""Writing events to stdout: JSON Lines for machines, rich text for people.

Output is buffered and written in large chunks; ``flush`` is called when
input goes idle, so a pipe reader sees events without waiting for more
input.  Whole lines are written at once, so a stop never leaves half a line.
"""

from __future__ import annotations

import codecs
import select
import sys
from json.encoder import encode_basestring as encode_json_string  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, BinaryIO, Protocol

from ..events import Event, orjson_module, printable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text



def event_json(event: Event, raw_line: str | None = None) -> str:
    """``event.to_dict(raw_line)`` as compact UTF-8 JSON; U+2028/U+2029 escaped (as Go
    does) so line-splitting readers stay safe.

    Spelled out rather than handed to json's encoder (a third of the cost: this
    runs for every event written), fields in STRING_FIELDS order; a test checks
    it against json.dumps of to_dict.
    """
    text = '{"type":' + encode_json_string(event.type)
    if event.timestamp:
        text += ',"timestamp":' + encode_json_string(event.timestamp)
    if event.player_name:
        text += ',"player_name":' + encode_json_string(event.player_name)
    if event.player_id:
        text += ',"player_id":' + encode_json_string(event.player_id)
    if event.world_id:
        text += ',"world_id":' + encode_json_string(event.world_id)
    if event.world_name:
        text += ',"world_name":' + encode_json_string(event.world_name)
    if event.instance_id:
        text += ',"instance_id":' + encode_json_string(event.instance_id)
    if raw_line is not None:
        text += ',"raw_line":' + encode_json_string(raw_line)
    if event.data:  # an object of strings: joined here at half json's cost
        text += ',"data":{' + ",".join([encode_json_string(key) + ":" + encode_json_string(value)
                                        for key, value in event.data.items()]) + "}"
    if event.source is not None:
        file, line, offset = event.source
        text += f',"source":{{"file":{encode_json_string(file)},"line":{line:d},"offset":{offset:d}}}'
    if event.id is not None:
        text += ',"id":' + encode_json_string(event.id)
    return line_safe(text + "}")


def event_line(event: Event, raw_line: str | None = None) -> bytes:
    """``event_json(event, raw_line)`` encoded as UTF-8, except U+2028/U+2029, which are
    left for ``line_safe_bytes`` to escape in the whole buffer at once.

    orjson writes the object straight to UTF-8 (~1 µs an event; event_json and the
    encode took ~3, more for non-ASCII text); a string it cannot encode (a lone
    surrogate) goes the reference way.  A test pins the two.
    """
    try:
        return orjson_module().dumps(event.to_dict(raw_line))
    except TypeError:  # a lone surrogate (or a library caller's non-str value: json's error)
        return event_json(event, raw_line).encode("utf-8", UNPAIRED_AS_FFFD)


def line_safe_bytes(data: bytes) -> bytes:
    """``line_safe`` for UTF-8 JSON text (two scans of a buffer, not of every event)."""
    if b"\xe2\x80\xa8" in data or b"\xe2\x80\xa9" in data:
        data = data.replace(b"\xe2\x80\xa8", rb"\u2028").replace(b"\xe2\x80\xa9", rb"\u2029")
    return data


UNPAIRED_AS_FFFD = "vrclog.unpaired-as-fffd"


def _unpaired_as_fffd(exc: UnicodeError) -> tuple[bytes, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    # Bytes: the UTF-8 encoder takes only ASCII text back from a handler.
    return "\ufffd".encode() * (exc.end - exc.start), exc.end


codecs.register_error(UNPAIRED_AS_FFFD, _unpaired_as_fffd)


def line_safe(text: str) -> str:
    """JSON text with U+2028 and U+2029 escaped, as Go writes them: readers that split
    on them as line breaks (JavaScript's) still see one line per event."""
    if "\u2028" in text or "\u2029" in text:
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text


class EventWriter(Protocol):
    def write(self, source: str, number: int, line: str, events: list[Event]) -> None: ...
    def flush(self) -> None: ...
    def reader_gone(self) -> bool:
        """Whether the output's reader went away (`| head` exited), without writing."""
        ...


def reader_gone(stream: object) -> bool:
    """Whether ``stream`` is a pipe whose reading end was closed.

    poll() reports POLLERR for it at once, where a write would only fail once the
    output buffer fills (minutes of work on a big log with few events).  Windows has
    no poll(): there the first flush after the reader left tells (BrokenPipeError).
    """
    fileno = getattr(stream, "fileno", None)
    if sys.platform == "win32" or fileno is None:
        return False
    try:
        poller = select.poll()
        poller.register(fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError):  # no descriptor (a test's BytesIO), or closed
        return False


class JsonLinesWriter:
    def __init__(self, out: BinaryIO, *, raw_line: bool = False, buffer_bytes: int = 1 << 16) -> None:
        self.out = out
        self.raw_line = raw_line
        self.buffer_bytes = buffer_bytes
        self._parts: list[bytes] = []
        self._size = 0

    def write(self, source: str, number: int, line: str, events: list[Event]) -> None:
        raw = line if self.raw_line else None
        for event in events:
            data = event_line(event, raw)
            self._parts.append(data)
            self._size += len(data)
        if self._size >= self.buffer_bytes:
            self.flush()

    def flush(self) -> None:
        if self._parts:
            self._parts.append(b"")  # the last line's newline, from the join
            data = line_safe_bytes(b"\n".join(self._parts))
            self._parts.clear()
            self._size = 0
            self.out.write(data)
        self.out.flush()

    def reader_gone(self) -> bool:
        return reader_gone(self.out)


def _raise_broken_pipe() -> None:
    raise BrokenPipeError


class PrettyWriter:
    """One readable line per event: ``file:line  time  type  fields``."""

    #: Lines held before they are printed at once (at the latest on the run's next flush,
    #: every 0.1 s): one print of many lines costs one redraw of a progress bar below
    #: them, where a print a line slowed a run to a fifth.
    HELD_LINES = 500

    def __init__(self, console: Console) -> None:
        self.console = console
        self._held: list[Text] = []
        # rich answers a closed stdout with SystemExit(1); the runner expects
        # BrokenPipeError, which ends a run quietly (`vrclog ... | head`).
        console.on_broken_pipe = _raise_broken_pipe  # type: ignore[method-assign]

    def write(self, source: str, number: int, line: str, events: list[Event]) -> None:
        from rich.text import Text  # rich only for pretty output: start-up is paid on every run

        for event in events:
            text = Text()
            text.append(printable(f"{source}:{number}"), style="dim")
            text.append("  ")
            text.append(printable(event.timestamp or "-"), style="cyan")
            text.append("  ")
            text.append(printable(event.type), style="bold magenta")
            fields = event.to_dict()
            fields.pop("type")
            fields.pop("timestamp", None)
            data = fields.pop("data", {})
            for key, value in [*fields.items(), *data.items()]:
                text.append(printable(f"  {key}="), style="green")
                text.append(printable(str(value)))  # a log's ESC must not act on the terminal
            self._held.append(text)
        if len(self._held) >= self.HELD_LINES:
            self._print_held()

    def _print_held(self) -> None:
        from rich.text import Text

        held, self._held = self._held, []
        if held:
            self.console.print(Text("\n").join(held), soft_wrap=True, highlight=False)

    def flush(self) -> None:
        self._print_held()
        self.console.file.flush()

    def reader_gone(self) -> bool:
        return reader_gone(self.console.file)

"""Events, and the strict decoder of a plugin's output (design.md section 2)."""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime
from typing import Any, NamedTuple, Protocol, cast

from .errors import PluginRuntimeError
from .records import record

#: Optional string fields of an event, in output order.
STRING_FIELDS = ("timestamp", "player_name", "player_id", "world_id", "world_name", "instance_id")

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?\Z")


class EventSource(NamedTuple):
    """Where an event came from (``--provenance``): the file as given ("-" is stdin), the
    line's number (from 1) and the byte offset of its start (of the decompressed stream,
    for a gzip file)."""

    file: str
    line: int
    offset: int


@record(slots=True)
class Event:
    """One event.  Not frozen: a frozen record's __init__ costs 4x, and events are
    made on the hot path (half the lines of a busy log)."""

    type: str
    timestamp: str | None = None
    player_name: str | None = None
    player_id: str | None = None
    world_id: str | None = None
    world_name: str | None = None
    instance_id: str | None = None
    data: dict[str, str] | None = None
    #: With provenance (``--provenance``, SQLite output): where the event came from, and
    #: its id (``provenance.event_id``: the same line gives the same id on every run).
    source: EventSource | None = None
    id: str | None = None

    def to_dict(self, raw_line: str | None = None) -> dict[str, Any]:
        """The JSON object in the contract's field order, empty fields left out.

        Spelled out field by field, not a loop over STRING_FIELDS with getattr: the
        JSON Lines writer builds one for every event it writes (half the cost)."""
        out: dict[str, Any] = {"type": self.type}
        if self.timestamp:
            out["timestamp"] = self.timestamp
        if self.player_name:
            out["player_name"] = self.player_name
        if self.player_id:
            out["player_id"] = self.player_id
        if self.world_id:
            out["world_id"] = self.world_id
        if self.world_name:
            out["world_name"] = self.world_name
        if self.instance_id:
            out["instance_id"] = self.instance_id
        if raw_line is not None:
            out["raw_line"] = raw_line
        if self.data:
            out["data"] = self.data
        if (source := self.source) is not None:
            out["source"] = {"file": source[0], "line": source[1], "offset": source[2]}
        if self.id is not None:
            out["id"] = self.id
        return out


def normalize_timestamp(value: str) -> str:
    """RFC 3339 as given; a date-time without offset is local time and gets the local offset.

    VRChat writes local time and a sandboxed plugin cannot know the zone, so a
    naive timestamp is completed here rather than refused.
    """
    match = _RFC3339.match(value)
    if match is None:
        raise ValueError(f"timestamp {value!r} is not RFC 3339")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise ValueError(f"timestamp {value!r} is not a valid date and time") from None
    if match.group(2) is not None:
        return value
    return parsed.astimezone().isoformat()


_SECOND_TAILS = frozenset(f":{s:02d}" for s in range(60))


def complete_timestamp(value: str) -> str:
    """``normalize_timestamp``, fast for what VRChat plugins write on every event: a naive
    ``YYYY-MM-DDTHH:MM:SS`` completed with the local offset cached per hour, or per
    minute in an hour where the offset changes (the full path costs ~1.5 µs an event;
    a test pins this to it)."""
    if len(value) == 19 and value[10] == "T" and value[16:19] in _SECOND_TAILS \
            and value[13:16] in _SECOND_TAILS:
        offset = _hour_offset(value[:13])
        if offset is None:
            offset = _minute_offset(value[:16])
        if offset is not None:
            return value + offset
    return normalize_timestamp(value)


@functools.lru_cache(maxsize=256)
def _hour_offset(hour: str) -> str | None:
    """The local offset of every time in a naive ``YYYY-MM-DDTHH``, when its first and last
    second have the same one and neither is moved; None otherwise.

    Per hour, not per minute: events a minute or more apart (most plugins' events)
    missed a per-minute cache every time, ~1.5 µs each.  An offset changes at most a
    few times a year, so an hour that ends with the offset it began with holds no change.
    """
    try:
        first = normalize_timestamp(hour + ":00:00")
        last = normalize_timestamp(hour + ":59:59")
    except ValueError:
        return None
    if first[:19] != hour + ":00:00" or last[:19] != hour + ":59:59" or first[19:] != last[19:]:
        return None
    return first[19:]


@functools.lru_cache(maxsize=1024)
def _minute_offset(minute: str) -> str | None:
    """The local offset of a naive ``YYYY-MM-DDTHH:MM`` (offsets change only on whole
    minutes); None where the full path gives anything else (invalid, or a local time
    that does not exist and is moved)."""
    try:
        full = normalize_timestamp(minute + ":00")
    except ValueError:
        return None
    return full[19:] if full[:19] == minute + ":00" else None


_CONTROL = {c: f"\\x{c:02x}" for c in range(32)} | {0x7F: "\\x7f", 0x85: "\\x85",
                                                    0x2028: "\\u2028", 0x2029: "\\u2029"}
_CONTROL |= {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


#: What a terminal would act on: C0 controls but tab and newline, DEL, and C1 controls.
_UNPRINTABLE: dict[int, str] = {c: f"\\x{c:02x}" for c in (*range(9), *range(11, 32), 0x7F,
                                                             *range(0x80, 0xA0))}
_UNPRINTABLE |= dict.fromkeys(range(0xD800, 0xE000), "\ufffd")  # no character: not writable either


def printable(text: str) -> str:
    """Text from a log or a plugin as a person's terminal shows it: every control a
    terminal would act on (ESC starting a title change or a screen clear) written out
    as ``\\x1b``.  For display only: JSON Lines and the library keep the text as it is."""
    return text.translate(_UNPRINTABLE)


def one_line(text: str, limit: int = 500) -> str:
    """Plugin-supplied text made safe for a one-line diagnostic: controls escaped, length cut."""
    cleaned = text.translate(_CONTROL)
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "…"


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages plugin authors read."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, the cut shown with an ellipsis."""
    return text if len(text) <= limit else text[:limit] + "…"


def plugin_reported(message: object, code: object) -> PluginRuntimeError:
    """The plugin's own per-line error (``plugin_error``): its message and code as it gave
    them (cut to 500 and 100 characters; a display writes controls out, one_line);
    whatever is not a non-empty string is left out."""
    return PluginRuntimeError(
        cut(message, 500) if isinstance(message, str) and message else "plugin reported an error",
        code=cut(code, 100) if isinstance(code, str) and code else None,
        from_plugin=True,
    )


def _fail(message: str) -> PluginRuntimeError:
    return PluginRuntimeError(f"bad plugin output: {message}")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # json.loads would build one per call
#: The answer to most lines of a log, spelled the way most plugins spell it.
_NOTHING = (b'{"ok":true,"events":[]}', b'{"ok":true}', b'{"events":[],"ok":true}')


_JSON_SPACE = " \t\n\r"


def parse_json(text: str) -> Any:
    """What ``_DECODER.decode`` gives (the same errors at the same positions) without
    its two regex whitespace scans: 0.5 µs of every event line (a test pins it)."""
    start = 0
    if text[:1] and text[0] in _JSON_SPACE:
        start = len(text) - len(text.lstrip(_JSON_SPACE))
    doc, end = _DECODER.raw_decode(text, start)
    if end != len(text):
        rest = text[end:]
        after = end + len(rest) - len(rest.lstrip(_JSON_SPACE))
        if after != len(text):
            raise json.JSONDecodeError("Extra data", text, after)
    return doc


def decode_output(raw: bytes) -> list[Event]:
    """The events of one plugin answer; anything off-contract is a runtime error.

    orjson parses it from the bytes (~1 µs where json takes 4-5 for an event with a
    200-character line, more where it is not ASCII); whatever orjson refuses goes
    through json as well, which gives the reference's error, or accepts what orjson
    is stricter about (a lone surrogate escape, 1e400).  A test pins the two."""
    if raw in _NOTHING:
        return []
    try:
        doc = orjson_module().loads(raw)
    except ValueError:  # orjson.JSONDecodeError
        return decode_output_reference(raw)
    return _events_of(doc)


def decode_output_reference(raw: bytes) -> list[Event]:
    """``decode_output`` with the standard library's json: the behaviour it keeps."""
    if raw in _NOTHING:
        return []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(f"not valid UTF-8 at byte {exc.start}") from None
    try:
        doc = parse_json(text)
    except json.JSONDecodeError as exc:
        raise _fail(f"not valid JSON at byte {exc.pos}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise _fail(f"not valid JSON: {exc}") from None
    return _events_of(doc)


def _events_of(doc: Any) -> list[Event]:
    if not isinstance(doc, dict):
        raise _fail(f"expected a JSON object, got {json_type(doc)}")
    ok = doc.get("ok")
    if ok is False:
        raise plugin_reported(doc.get("error"), doc.get("code"))
    if ok is not True:
        raise _fail('"ok" must be true or false')
    events = doc.get("events")
    if events is None:
        return []
    if not isinstance(events, list):
        raise _fail(f'"events" must be an array, got {json_type(events)}')
    return [decode_event(i, item) for i, item in enumerate(events)]


class Orjson(Protocol):
    """What vrclog calls of orjson (it is imported late, so typed here)."""

    def loads(self, data: bytes, /) -> Any: ...
    def dumps(self, value: Any, /) -> bytes: ...


@functools.cache
def orjson_module() -> Orjson:
    """Imported at the first event, not at start-up (1-3 ms): a run that never
    decodes or writes one (an empty log, a log the prefilter skips) never pays it."""
    import orjson

    return cast(Orjson, orjson)


def decode_event(index: int, item: Any) -> Event:
    """Event ``index`` of an answer, as a JSON object (a component's events come as the
    same dicts, so both kinds are validated alike).

    A well-formed event is checked field by field here, at half the reference's cost
    (2 µs of every event); anything else takes the reference for its error.  A test
    pins the two."""
    if type(item) is dict:
        get = item.get
        kind = get("type")
        timestamp = get("timestamp")
        player_name = get("player_name")
        player_id = get("player_id")
        world_id = get("world_id")
        world_name = get("world_name")
        instance_id = get("instance_id")
        data = get("data")
        # `type(x) in _STR_OR_NONE`: one set lookup a field, no generator (which cost more
        # than the checks themselves).
        if (type(kind) is str and kind and type(timestamp) in _STR_OR_NONE
                and type(player_name) in _STR_OR_NONE and type(player_id) in _STR_OR_NONE
                and type(world_id) in _STR_OR_NONE and type(world_name) in _STR_OR_NONE
                and type(instance_id) in _STR_OR_NONE
                and (data is None or (type(data) is dict and _all_strings(data)))):
            if timestamp:
                try:
                    timestamp = complete_timestamp(timestamp)
                except ValueError:
                    return decode_event_reference(index, item)
            return Event(kind, timestamp, player_name, player_id, world_id, world_name,
                         instance_id, data)
    return decode_event_reference(index, item)


_STR_OR_NONE = frozenset((str, type(None)))


def _all_strings(data: dict[Any, Any]) -> bool:
    for value in data.values():
        if type(value) is not str:
            return False
    return True


def decode_event_reference(index: int, item: Any) -> Event:
    """``decode_event`` as the contract reads: each rule checked in turn, the first
    broken one named."""
    if not isinstance(item, dict):
        raise _fail(f"event {index} is {json_type(item)}, not an object")
    kind = item.get("type")
    if kind == "":
        raise _fail(f'event {index} has an empty "type": an event type needs a name')
    if not isinstance(kind, str):
        raise _fail(f'event {index} has no "type" string' if kind is None else
                    f'event {index} has a "type" that is {json_type(kind)}, not a string')
    fields: dict[str, Any] = {}
    for name in STRING_FIELDS:
        value = item.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _fail(f'event {index}: "{name}" must be a string, got {json_type(value)}')
        if name == "timestamp" and value:
            try:
                value = complete_timestamp(value)
            except ValueError as exc:
                raise _fail(f"event {index}: {exc}") from None
        fields[name] = value
    data = item.get("data")
    if data is not None:
        if not isinstance(data, dict):
            raise _fail(f'event {index}: "data" must be an object, got {json_type(data)}')
        for key, value in data.items():
            if not isinstance(value, str):
                raise _fail(
                    f'event {index}: data value for "{key}" is {json_type(value)}; use a string')
        fields["data"] = data
    return Event(type=kind, **fields)

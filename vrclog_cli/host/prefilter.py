"""A plugin's declared prefilter (design.md section 2c): which lines it can match at all.

Lines the prefilter rejects never get an instance: on a log where a plugin
cares about 2 % of the lines, that is most of the work of a run.  The test
runs on the line as the plugin would see it (a decoded ``str``: line ending
removed, invalid UTF-8 already replaced).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..records import field, record, replace
from .abi import PREFILTER_SECTION, TYPES_SECTION

MAX_SUBSTRINGS = 256
MAX_SUBSTRING_BYTES = 1024
MAX_REGEX_BYTES = 512
KNOWN_KEYS = ("substrings", "regex")
#: Up to this many substrings are tested with ``in`` (~50 ns each per line);
#: more become one RE2 alternation (~0.6 µs per line whatever their number).
PLAIN_SUBSTRINGS = 6


class PrefilterError(ValueError):
    """Invalid prefilter content; the message says what is wrong."""


def _compile(pattern: str) -> Any:
    """The RE2 object of a pattern, or PrefilterError naming why RE2 refused it."""
    import re2
    from re2 import _re2

    options = re2.Options()
    options.max_mem = 8 << 20
    options.log_errors = False
    regex = _re2.RE2(pattern.encode("utf-8"), options)
    if not regex.ok():
        raise PrefilterError(f"regex {pattern!r} is not a valid RE2 pattern")
    return regex


@record(frozen=True)
class Prefilter:
    substrings: tuple[str, ...] = ()
    regex: str | None = None
    _re2: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = []
        if len(self.substrings) > PLAIN_SUBSTRINGS:
            from re2 import _re2

            parts = [_re2.RE2.QuoteMeta(s.encode("utf-8")).decode("utf-8") for s in self.substrings]
        if self.regex is not None:
            parts.append(f"(?:{self.regex})")
        if parts:
            object.__setattr__(self, "_re2", _compile("|".join(parts)))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.substrings:
            out["substrings"] = list(self.substrings)
        if self.regex is not None:
            out["regex"] = self.regex
        return out

    def encode(self) -> bytes:
        """The section content: compact UTF-8 JSON."""
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def accepts(self, line: str) -> bool:
        return bool(self.select([line]))

    def select(self, texts: Sequence[str]) -> list[int]:
        """Indices of the texts the plugin is to see, in order: one C-speed pass per
        substring, or one RE2 match per line."""
        regex = self._re2
        if regex is None:
            subs = self.substrings
            if len(subs) == 1:
                needle = subs[0]
                return [i for i, t in enumerate(texts) if needle in t]
            return [i for i, t in enumerate(texts) if any(s in t for s in subs)]
        from re2 import _re2

        unanchored = _re2.RE2.Anchor.UNANCHORED
        plain = self.substrings if len(self.substrings) <= PLAIN_SUBSTRINGS else ()
        chosen = []
        for i, text in enumerate(texts):
            if plain and any(s in text for s in plain):
                chosen.append(i)
                continue
            raw = text.encode("utf-8", "replace")
            if regex.Match(unanchored, raw, 0, len(raw))[0][0] >= 0:
                chosen.append(i)
        return chosen


#: More needles than this, and scanning a block once per needle costs more than decoding it.
MAX_NEEDLES = 8


def raw_needles(prefilters: Sequence[Prefilter | None]) -> tuple[bytes, ...] | None:
    """UTF-8 substrings whose absence from a line's raw bytes proves that every one of
    these prefilters rejects the line, so the reader need not decode it; None when
    there are no such (a parser without a prefilter, a regex, too many substrings).

    Sound because a valid UTF-8 substring in the decoded line comes from the same
    bytes in the raw line: decoding replaces only invalid sequences (by U+FFFD,
    which a needle must then not hold) and the reader only drops a BOM and a
    trailing \r.  A needle found where the decoded line lacks it costs a decode,
    nothing more: the prefilter itself still decides.
    """
    needles: list[bytes] = []
    for prefilter in prefilters:
        if prefilter is None or prefilter.regex is not None:
            return None
        for substring in prefilter.substrings:
            if "\ufffd" in substring:
                return None
            needle = substring.encode("utf-8")
            if needle not in needles:
                needles.append(needle)
    return tuple(needles) if 0 < len(needles) <= MAX_NEEDLES else None


@record(frozen=True)
class Declared:
    """What a plugin's sections say: a prefilter, or None with the reason it is ignored;
    the event types it can emit (None: not declared)."""

    prefilter: Prefilter | None
    warning: str | None = None
    event_types: tuple[str, ...] | None = None


MAX_TYPES = 256
MAX_TYPE_CHARS = 100


def parse_event_types(content: bytes) -> tuple[str, ...]:
    """The types a ``vrclog.types`` section declares: ``{"types": ["name", ...]}``;
    PrefilterError (naming what is wrong) for anything else."""
    try:
        value = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise PrefilterError('not UTF-8 JSON such as {"types": ["myworld_score"]}') from None
    if not isinstance(value, dict) or set(value) != {"types"}:
        raise PrefilterError('must be a JSON object with one key, "types": {"types": ["myworld_score"]}')
    types = value["types"]
    if (not isinstance(types, list) or not 1 <= len(types) <= MAX_TYPES
            or not all(isinstance(t, str) and 0 < len(t) <= MAX_TYPE_CHARS for t in types)):
        raise PrefilterError(f'"types" must list 1 to {MAX_TYPES} names of 1 to {MAX_TYPE_CHARS} characters')
    return tuple(dict.fromkeys(types))


def encode_event_types(types: Sequence[str]) -> bytes:
    content = json.dumps({"types": list(dict.fromkeys(types))}, ensure_ascii=False,
                         separators=(",", ":")).encode("utf-8")
    parse_event_types(content)  # what a host will read back
    return content


def parse_prefilter(content: bytes) -> Declared:
    """The prefilter a section declares; PrefilterError for invalid content.

    An unknown key makes the whole prefilter ignored, with a warning: a newer
    plugin may mean something this host cannot test, and a prefilter must never
    hide events.
    """
    try:
        value = json.loads(content.decode("utf-8"))
    except UnicodeDecodeError:
        raise PrefilterError("not UTF-8") from None
    except ValueError as exc:
        raise PrefilterError(f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise PrefilterError('must be a JSON object such as {"substrings": ["[MyWorld]"]}')
    unknown = sorted(set(value) - set(KNOWN_KEYS))
    if unknown:
        return Declared(None, f"unknown key{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(map(repr, unknown))} (this vrclog knows "
                              f"{' and '.join(KNOWN_KEYS)}): the prefilter is ignored and "
                              "every line goes to the plugin")
    if not value:
        raise PrefilterError('needs "substrings" or "regex"')
    return Declared(make_prefilter(value.get("substrings"), value.get("regex")))


def make_prefilter(substrings: Any, regex: Any) -> Prefilter:
    """A validated prefilter from the two keys' values (None: key absent)."""
    subs: tuple[str, ...] = ()
    if substrings is not None:
        if not isinstance(substrings, list) or not all(isinstance(s, str) for s in substrings):
            raise PrefilterError('"substrings" must be a list of strings')
        if not 1 <= len(substrings) <= MAX_SUBSTRINGS:
            raise PrefilterError(f'"substrings" must hold 1 to {MAX_SUBSTRINGS} strings, '
                                 f"not {len(substrings)}")
        for s in substrings:
            if not s:
                raise PrefilterError('"substrings" has an empty string (it would match every line)')
            try:
                size = len(s.encode("utf-8"))
            except UnicodeEncodeError:
                raise PrefilterError(f"substring {s[:40]!r} is not valid Unicode") from None
            if size > MAX_SUBSTRING_BYTES:
                raise PrefilterError(f"substring {s[:40]!r}... is over {MAX_SUBSTRING_BYTES} bytes")
        subs = tuple(substrings)
    if regex is not None:
        if not isinstance(regex, str):
            raise PrefilterError('"regex" must be a string')
        try:
            size = len(regex.encode("utf-8"))
        except UnicodeEncodeError:
            raise PrefilterError('"regex" is not valid Unicode') from None
        if size > MAX_REGEX_BYTES:
            raise PrefilterError(f'"regex" is over {MAX_REGEX_BYTES} bytes')
        _compile(regex)
    if not subs and regex is None:
        raise PrefilterError('needs "substrings" or "regex"')
    return Prefilter(subs, regex)


def read_prefilter(sections: list[bytes], type_sections: Sequence[bytes] = ()) -> Declared:
    """The declared prefilter of a binary's ``vrclog.prefilter`` sections (none: no prefilter),
    and the event types of its ``vrclog.types`` sections (none: not declared)."""
    if len(sections) > 1:
        raise PrefilterError(f"{len(sections)} {PREFILTER_SECTION} sections (at most one)")
    if len(type_sections) > 1:
        raise PrefilterError(f"{len(type_sections)} {TYPES_SECTION} sections (at most one)")
    declared = parse_prefilter(sections[0]) if sections else Declared(None)
    if not type_sections:
        return declared
    try:
        types = parse_event_types(type_sections[0])
    except PrefilterError as exc:
        raise PrefilterError(f"custom section {TYPES_SECTION}: {exc}") from None
    return replace(declared, event_types=types)

"""Which events are written: by type and by time (``--include-types``, ``--since``...).

Filters act before ``--fail-on``: a filtered-out event cannot fail the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..errors import UsageError
from ..events import Event
from ..records import record


def split_types(values: Iterable[str]) -> frozenset[str]:
    """Comma-separated, repeatable option values as one set of type names."""
    return frozenset(t.strip() for value in values for t in value.split(",") if t.strip())


def parse_rfc3339(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not an RFC 3339 time "
                         "(e.g. 2024-01-15T23:59:59+09:00)") from None
    if value.tzinfo is None:
        value = value.astimezone()  # no offset: local time, as VRChat writes it
    return value


@record(frozen=True)
class EventFilter:
    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None
    #: Drop events without a timestamp when a time range is set.
    strict_time: bool = False

    @classmethod
    def from_text(cls, include: Iterable[str] = (), exclude: Iterable[str] = (), since: str | None = None,
                  until: str | None = None, strict_time: bool = False) -> EventFilter:
        """From option values as a person types them: comma-separated type lists, RFC 3339
        times (a UsageError names --since or --until)."""
        return cls(include=split_types(include), exclude=split_types(exclude),
                   since=parse_rfc3339(since, "--since") if since else None,
                   until=parse_rfc3339(until, "--until") if until else None, strict_time=strict_time)

    def __post_init__(self) -> None:
        overlap = self.include & self.exclude
        if overlap:
            raise UsageError(f"types both included and excluded: {', '.join(sorted(overlap))}")
        if self.since and self.until and self.since > self.until:
            raise UsageError("--since is later than --until")

    @property
    def active(self) -> bool:
        return bool(self.include or self.exclude or self.since or self.until)

    def keep(self, event: Event) -> bool:
        if self.include and event.type not in self.include:
            return False
        if event.type in self.exclude:
            return False
        if self.since is None and self.until is None:
            return True
        if not event.timestamp:
            return not self.strict_time
        try:
            when = datetime.fromisoformat(event.timestamp.replace("Z", "+00:00"))
        except ValueError:
            return not self.strict_time
        if when.tzinfo is None:
            when = when.astimezone()
        if self.since is not None and when < self.since:
            return False
        return self.until is None or when <= self.until

"""Parsing the command line's durations (``50ms``, ``2s``) and sizes (``64MiB``)."""

from __future__ import annotations

import re

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2,
               "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration: ``50ms``, ``1.5s``, ``250us``, ``1m30s``."""
    value = text.strip()
    pos, total = 0, 0.0
    while pos < len(value):
        match = _DURATION.match(value, pos)
        if match is None:
            raise ValueError(f"{text!r} is not a duration; use e.g. 50ms or 2s")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not value or total <= 0:
        raise ValueError(f"{text!r} is not a duration; use e.g. 50ms or 2s")
    return total


def parse_size(text: str) -> int:
    """Bytes in a size: ``512``, ``64MiB``, ``10M``, ``8KiB``."""
    match = _SIZE.fullmatch(text.strip().lower())
    if match is None or match.group(2) not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size; use e.g. 64MiB or 8192")
    size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if size <= 0:
        raise ValueError(f"{text!r} is not a size; use e.g. 64MiB or 8192")
    return size

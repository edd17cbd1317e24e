"""The contract's limits (design.md section 3), each overridable by an option."""

from __future__ import annotations

from .host.abi import INPUT_REGION
from .records import record

KIB = 1024
MIB = 1024 * KIB


@record(frozen=True)
class Limits:
    max_plugin_bytes: int = 10 * MIB
    #: Components carry their language's runtime (an interpreter: 2-20 MB).
    max_component_bytes: int = 64 * MIB
    timeout_s: float = 0.050
    #: CPU time a line gets per MiB of its length, over timeout_s (budget.line_budget): so a
    #: plugin that is slow but linear is never taken for a loop on a long line.  The slowest
    #: template (Python, its regex matching a 1 MiB line) needs ~60 ms; 1 MiB gets 250 ms
    #: more, and an endless loop on such a line is stopped after 300 ms.  Lines of a few
    #: hundred bytes get a few hundredths of a millisecond.
    timeout_per_mib_s: float = 0.250
    max_memory_bytes: int = 64 * MIB
    #: ABI v1 only: the input JSON must fit the input region.
    max_input_bytes: int = INPUT_REGION
    #: Longer lines are reported as too large without being held whole; ABI v2
    #: plugins get every line up to this length.
    max_line_bytes: int = 1 * MIB
    max_output_bytes: int = 1 * MIB
    max_pattern_bytes: int = 512
    #: Plugin log messages allowed per second, per plugin; the rest are dropped.
    log_per_second: int = 10
    log_message_bytes: int = 256


def format_size(size: int) -> str:
    """Bytes as people write limits: 64 MiB, 8 KiB, 1.5 MiB, 300 bytes."""
    for unit, name in ((MIB, "MiB"), (KIB, "KiB")):
        if size >= unit:
            value = size / unit
            return f"{value:g} {name}" if value == int(value) else f"{value:.1f} {name}"
    return f"{size} bytes"

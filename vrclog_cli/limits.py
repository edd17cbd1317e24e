"""The contract's limits (design.md section 3), each overridable by an option."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024

#: Where the host writes the input JSON in the plugin's memory, and its size.
INPUT_OFFSET = 0x10000
INPUT_REGION = 8192


@dataclass(frozen=True)
class Limits:
    max_plugin_bytes: int = 10 * MIB
    timeout_s: float = 0.050
    max_memory_bytes: int = 64 * MIB
    max_input_bytes: int = INPUT_REGION
    max_output_bytes: int = 1 * MIB
    max_pattern_bytes: int = 512
    #: Plugin log messages allowed per second, per plugin; the rest are dropped.
    log_per_second: int = 10
    log_message_bytes: int = 256

"""Counters of one run, and the ``--stats`` summary table people read on stderr."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from ..records import field, record

if TYPE_CHECKING:
    from rich.table import Table


MEASURABLE_S = 0.1


@record
class RunStats:
    plugins: list[str] = field(default_factory=list)
    lines: int = 0
    events_by_type: Counter[str] = field(default_factory=Counter)
    errors_by_kind: Counter[str] = field(default_factory=Counter)
    filtered_out: int = 0
    #: Lines too long for a plugin, skipped under --long-lines skip.
    long_lines_skipped: int = 0
    #: Lines holding a message the built-in parser reads but no valid VRChat header.
    unheaded: int = 0
    #: Per plugin: lines its prefilter kept from it (no instance made).
    prefilter_skipped: Counter[str] = field(default_factory=Counter)
    bytes_read: int = 0
    #: (CPU seconds, budget) of the plugin call that used the largest share of its budget
    #: (measured only for --stats: ParseOptions.measure_cpu).
    slowest: tuple[float, float] | None = None
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None

    def note_call(self, cpu_s: float, budget_s: float) -> None:
        """A plugin call's CPU time and budget: kept when it used the largest share yet."""
        from ..host.budget import larger_share

        self.slowest = larger_share(self.slowest, (cpu_s, budget_s))

    @property
    def events(self) -> int:
        return sum(self.events_by_type.values())

    @property
    def errors(self) -> int:
        return sum(self.errors_by_kind.values())

    @property
    def elapsed(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    def table(self, title: str = "vrclog summary") -> Table:
        from rich.table import Table  # only for --stats: spared at start-up

        elapsed = self.elapsed
        table = Table(title=title, title_justify="left", show_header=False)
        table.add_column("what", style="bold")
        table.add_column("value", justify="right")
        table.add_row("lines", f"{self.lines:,}")
        table.add_row("events", f"{self.events:,}")
        for kind, count in self.events_by_type.most_common():
            table.add_row(f"  {kind}", f"{count:,}")
        if self.filtered_out:
            table.add_row("filtered out", f"{self.filtered_out:,}")
        for plugin, skipped in self.prefilter_skipped.items():
            share = f" ({skipped / self.lines:.0%})" if self.lines else ""
            table.add_row(f"prefilter skipped, {plugin}", f"{skipped:,} lines{share}")
        if self.unheaded:
            table.add_row("lines without a valid VRChat header", f"{self.unheaded:,} (no events taken)")
        if self.long_lines_skipped:
            table.add_row("long lines skipped", f"{self.long_lines_skipped:,}")
        table.add_row("errors", f"{self.errors:,}")
        for kind, count in sorted(self.errors_by_kind.items()):
            table.add_row(f"  {kind}", f"{count:,}")
        if self.slowest is not None:
            cpu_s, budget_s = self.slowest
            table.add_row("slowest plugin call", f"{cpu_s * 1000:.2f} ms CPU of its "
                          f"{budget_s * 1000:.1f} ms budget ({cpu_s / budget_s:.0%})")
        # Whenever anything was read: a short run's rate is rough ("~"), but it is a figure.
        rate = f"{self.lines / elapsed:,.0f}" if self.lines and elapsed > 0 else "—"
        table.add_row("lines/s", rate if elapsed >= MEASURABLE_S or rate == "—" else f"~{rate}")
        table.add_row("wall time", f"{elapsed:.2f} s")
        table.add_row("plugins", ", ".join(self.plugins) or "-")
        return table

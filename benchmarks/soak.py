"""`make soak` (not in CI): 2 M lines, 1 % hostile, --jobs 4; memory must not grow.

Hostile lines (for the echo test plugin): T... traps, B... answers invalid
JSON, L... loops until the timeout.  Prints lines processed, errors by kind,
and RSS at 10 %, 50 % and 100 % of the run.
"""

from __future__ import annotations

import collections
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.conftest import answer, echo_plugin_wat  # noqa: E402 - reuse the test plugin

LINES = int(os.environ.get("SOAK_LINES", "2000000"))
VRCLOG = str(Path(sys.executable).parent / "vrclog")


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mib(root: int) -> float:
    """RSS of the process and all its descendants (worker processes included)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children[ppid].append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _rss_kib(pid)
        todo.extend(children.get(pid, []))
    return total / 1024


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="vrclog-soak-"))
    segment, body = answer("this is { not json", at=0x21000)
    plugin = work / "soak.wat"
    plugin.write_text(echo_plugin_wat(body, extra=segment))
    log = work / "soak.log"
    rng = random.Random(11)
    with log.open("w") as f:
        for i in range(LINES):
            roll = rng.random()
            if roll < 0.006:
                f.write(f"Trap {i}\n")
            elif roll < 0.009:
                f.write(f"Bad output {i}\n")
            elif roll < 0.0095:
                f.write(f"Loop {i}\n")
            else:
                f.write(f"good line {i} " + "x" * rng.randint(20, 200) + "\n")
    print(f"soak: {LINES:,} lines, ~1% hostile, --jobs 4, --timeout 20ms")
    started = time.perf_counter()
    proc = subprocess.Popen([VRCLOG, "parse", "--plugin", str(plugin), "--jobs", "4", "--timeout", "20ms",
                             str(log)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kinds: collections.Counter[str] = collections.Counter()

    def read_errors() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            parts = raw.decode(errors="replace").split(": ")
            kinds[parts[1] if len(parts) > 2 else "other"] += 1

    threading.Thread(target=read_errors, daemon=True).start()
    marks = {int(LINES * 0.99 * p): label for p, label in ((0.1, "10%"), (0.5, "50%"), (0.98, "~100%"))}
    samples: dict[str, float] = {}
    events = 0
    assert proc.stdout is not None
    for _ in proc.stdout:
        events += 1
        if events in marks:
            samples[marks[events]] = rss_mib(proc.pid)
    _, status, _ = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    print(f"exit code {os.waitstatus_to_exitcode(status)}, {events:,} events, "
          f"{sum(kinds.values()):,} errors in {elapsed:.0f} s ({LINES / elapsed:,.0f} lines/s)")
    print("errors by kind: " + ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())))
    print("RSS of vrclog and its workers: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in samples.items()))
    last = samples.get("~100%", 0.0)
    growth = last / samples["10%"] if samples.get("10%") else float("nan")
    print(f"growth after warm-up (~100% / 10%): {growth:.2f}x " + ("ok" if growth <= 1.2 else "GROWING"))


if __name__ == "__main__":
    main()

"""`make stress`: the same answer on a busy machine.

With 4 CPU-bound hogs keeping the 2 cores busy, each run must report no timeout and
write output byte-identical to the same run on the idle machine:

- the vrpoker sample over 100 000 lines at --jobs 8, threads and processes, 5 runs each;
- the JS and Python component samples over 5 000 VRPoker lines, --no-prefilter --jobs 2,
  3 runs each;
- fresh C, Python and JS plugins from `make plugin-template` pass
  `vrclog plugin check --sample`, 3 times of 3 (--no-templates skips them: building the
  JS one fetches jco from npm).

It prints what it measured (timeouts, runs, the largest share of its budget any one
plugin call used, from --stats) and exits 1 on any timeout, difference or failed check.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # run as a script: `benchmarks.` modules import from the checkout
from benchmarks.hogs import HOGS, hogs  # noqa: E402

PLUGINS = ROOT / "sample_plugins"
BIN = Path(sys.executable).parent
VRCLOG = str(BIN / "vrclog")
PREFIX = "2024.01.15 23:59:59 Log        -  "
SLOWEST = re.compile(r"slowest plugin call\W+([\d.]+) ms CPU of its ([\d.]+) ms budget")


def vrpoker_log(path: Path, lines: int) -> Path:
    """VRPoker lines of every kind the samples parse, and some they skip."""
    kinds = ["[VRPoker] Round {i} begins", "[VRPoker] Game started with {p} players",
             "[VRPoker] Player Ｃｈｅｒｒｙ{i} wins with Full House", "[VRPoker] Table {i} closed",
             "[Behaviour] OnPlayerJoined Bob{i}"]
    with path.open("w", encoding="utf-8") as out:
        for i in range(lines):
            out.write(PREFIX + kinds[i % len(kinds)].format(i=i, p=2 + i % 7) + "\n")
    return path


@dataclass
class Case:
    name: str
    args: list[str]
    runs: int
    expected: bytes = b""
    timeouts: int = 0
    differences: int = 0
    failures: list[str] = field(default_factory=list)
    #: The largest share of its budget one plugin call used: (CPU ms, budget ms).
    slowest: tuple[float, float] = (0.0, 1.0)
    seconds: list[float] = field(default_factory=list)

    def run(self, busy: bool) -> None:
        started = time.perf_counter()
        done = subprocess.run([VRCLOG, "parse", "--stats", *self.args], capture_output=True,
                              stdin=subprocess.DEVNULL)
        self.seconds.append(time.perf_counter() - started)
        stderr = done.stderr.decode("utf-8", "replace")
        timeouts = sum(1 for line in stderr.splitlines() if ": timeout: " in line)
        if found := SLOWEST.search(stderr):
            cpu, budget = float(found[1]), float(found[2])
            if cpu / budget > self.slowest[0] / self.slowest[1]:
                self.slowest = (cpu, budget)
        if not busy:
            self.expected = done.stdout
            if done.returncode != 0 or timeouts:
                raise SystemExit(f"{self.name}: the idle run failed (exit {done.returncode}):\n"
                                 f"{stderr[-2000:]}")
            return
        self.timeouts += timeouts
        if done.stdout != self.expected:
            self.differences += 1
        if done.returncode != 0:
            self.failures.append(f"exit {done.returncode}: {stderr.strip().splitlines()[:3]}")

    @property
    def ok(self) -> bool:
        return not (self.timeouts or self.differences or self.failures)


def build_templates(work: Path) -> list[tuple[str, Path]]:
    """(language, plugin.wasm) of a fresh plugin of each template, built as its README says."""
    built = []
    for lang in ("c", "python", "js"):
        target = work / f"my{lang}"
        subprocess.run(["make", "-s", "-C", str(ROOT), "plugin-template", f"NAME={target}", f"LANG={lang}",
                        f"BIN={BIN}"], check=True, capture_output=True)
        made = subprocess.run(["make", "-s"], cwd=target, capture_output=True, text=True)
        if made.returncode != 0:
            raise SystemExit(f"template {lang}: make failed:\n{made.stdout}{made.stderr}")
        built.append((lang, target / f"my{lang}.wasm"))
    return built


def main() -> int:
    parser = argparse.ArgumentParser(description="vrclog under CPU load: no timeouts, same output")
    parser.add_argument("--runs", type=int, default=5, help="busy runs of the vrpoker cases")
    parser.add_argument("--component-runs", type=int, default=3)
    parser.add_argument("--no-templates", action="store_true", help="skip the templates' check")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vrclog-stress-"))
    try:
        big = vrpoker_log(work / "vrpoker-100k.log", 100_000)
        small = vrpoker_log(work / "vrpoker-5k.log", 5_000)
        cases = [Case(f"vrpoker.wasm, 100 000 lines, --jobs 8 --workers {workers}",
                      ["--plugin", str(PLUGINS / "vrpoker.wasm"), "--jobs", "8", "--workers", workers,
                       str(big)], args.runs) for workers in ("threads", "processes")]
        cases += [Case(f"{wasm.name}, 5 000 lines, --no-prefilter --jobs 2",
                       ["--plugin", str(wasm), "--no-prefilter", "--jobs", "2", str(small)],
                       args.component_runs)
                  for wasm in (PLUGINS / "js" / "vrpoker_js.wasm", PLUGINS / "python" / "vrpoker_py.wasm")]
        templates = [] if args.no_templates else build_templates(work)
        sample = work / "my.log"
        sample.write_text(PREFIX + "[MyWorld] Score 42 by Alice\nother line\n", encoding="utf-8")
        for case in cases:
            case.run(busy=False)
        checks: list[tuple[str, int, list[str]]] = []
        with hogs(HOGS):
            time.sleep(0.5)  # the hogs running before the first measured run
            for case in cases:
                for _ in range(case.runs):
                    case.run(busy=True)
            for lang, wasm in templates:
                failed = []
                for _ in range(3):
                    check = subprocess.run([VRCLOG, "plugin", "check", str(wasm), "--sample", str(sample)],
                                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
                    if check.returncode != 0:
                        failed.append(check.stdout.strip().splitlines()[0] if check.stdout else check.stderr)
                checks.append((lang, 3 - len(failed), failed))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"vrclog under load: {HOGS} CPU hogs on {_cores()} cores")
    print(f"{'case':58} {'runs':>4} {'timeouts':>8} {'differ':>6} {'median s':>8}  "
          "slowest call (CPU of budget)")
    for case in cases:
        cpu, budget = case.slowest
        busy = sorted(case.seconds[1:])
        print(f"{case.name:58} {case.runs:>4} {case.timeouts:>8} {case.differences:>6} "
              f"{busy[len(busy) // 2]:>8.2f}  {cpu:.2f} of {budget:g} ms ({cpu / budget:.1%})")
        for failure in case.failures:
            print(f"    {failure}")
    for lang, passed, failed in checks:
        print(f"template {lang:7}: plugin check --sample passed {passed} of 3" +
              "".join(f"\n    {f}" for f in failed))
    ok = all(case.ok for case in cases) and all(not failed for _, _, failed in checks)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def _cores() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())

"""Worker processes and faults from outside: real SIGKILLs sent to real workers (Linux /proc)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import VRCLOG_BIN, echo_plugin_wat

pytestmark = [pytest.mark.posix,  # real SIGKILLs
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]
DEADLINE_S = 90


def stat(pid: int) -> tuple[str, int, float] | None:
    """(state, parent pid, CPU seconds) of a process, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit() and (s := stat(int(d))) and s[1] == pid]


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        found += kids
        todo += kids
    return found


def workers(main: int) -> list[int]:
    """The live worker processes: the forkserver's children (the forkserver is the main's)."""
    servers = [p for p in children(main) if b"forkserver" in _cmdline(p)]
    return [w for server in servers for w in children(server) if alive(w)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    s = stat(pid)
    return s is not None and s[0] != "Z"


@pytest.fixture
def echo(tmp_path: Path) -> Path:
    path = tmp_path / "echo.wat"
    path.write_text(echo_plugin_wat())
    return path


def lines_of(out: bytes) -> list[str]:
    return [json.loads(line)["data"]["line"] for line in out.splitlines()]


BUSY = Path(__file__).resolve().parent.parent / "sample_plugins" / "busy.wasm"


@pytest.fixture(scope="module")
def busy_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """40 000 lines for busy.wasm (~90 µs each), and what a run without faults writes."""
    log = tmp_path_factory.mktemp("busy") / "log.txt"
    log.write_text("".join(f"2024.01.15 23:59:59 Log        -  [VRPoker] Round {i} begins\n"
                           for i in range(40_000)))
    clean = subprocess.run([VRCLOG_BIN, "parse", "--plugin", str(BUSY), "--jobs", "2", "--workers",
                            "threads", str(log)], capture_output=True, timeout=DEADLINE_S)
    assert clean.returncode == 0 and clean.stdout.count(b"\n") == 40_000
    return log, clean.stdout


@pytest.mark.parametrize("delay", [0.05, 0.5, 1.2])
def test_sigkill_a_worker_mid_run_loses_nothing(busy_log: tuple[Path, bytes], delay: float) -> None:
    """The kill comes ``delay`` seconds after both workers exist (their start-up takes
    longer on a busy machine: timing from the main process's start would be flaky)."""
    log, expected = busy_log
    # A generous budget: this is about dead workers, not budgets (once, under a loaded
    # host, two of the 40 000 ~90 µs lines went over the default 50 ms of CPU time).
    proc = subprocess.Popen([VRCLOG_BIN, "parse", "--plugin", str(BUSY), "--jobs", "2", "--workers",
                             "processes", "--timeout", "5s", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while len(workers(proc.pid)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(delay)
    victims = workers(proc.pid)
    if victims:
        os.kill(victims[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=DEADLINE_S)
    assert proc.returncode == 0, err
    assert out == expected  # every event, in order
    assert victims, "the run ended before a worker could be killed"


def test_a_line_that_kills_its_worker_twice_is_a_runtime_error(echo: Path) -> None:
    """The L line spins (until the 60 s budget); each time it does, its worker is killed:
    twice as part of its batch, twice on its own.  Then it alone is an error."""
    stdin = b"".join(b"line %d\n" % i for i in range(300)) + b"L spins\n" + \
        b"".join(b"line %d\n" % i for i in range(300, 600))
    proc = subprocess.Popen([VRCLOG_BIN, "parse", "--plugin", str(echo), "--jobs", "1", "--workers",
                             "processes", "--timeout", "60s"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(stdin)
    proc.stdin.close()
    kills = 0
    deadline = time.monotonic() + DEADLINE_S
    while proc.poll() is None and time.monotonic() < deadline:
        for pid in workers(proc.pid):
            s = stat(pid)
            if s is not None and s[2] > 1.0:  # a second of CPU: past start-up, spinning on L
                os.kill(pid, signal.SIGKILL)
                kills += 1
        time.sleep(0.2)
    proc.wait(timeout=30)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    assert proc.returncode == 4, err
    assert kills == 4
    assert lines_of(out) == [f"line {i}" for i in range(600)]
    assert err.decode().splitlines()[0] == \
        "<stdin>:301: runtime_error: worker: worker process died: killed by signal 9"


def test_workers_go_when_the_main_process_is_killed(echo: Path) -> None:
    proc = subprocess.Popen([VRCLOG_BIN, "parse", "--plugin", str(echo), "--jobs", "2", "--workers",
                             "processes"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"one\ntwo\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while len(workers(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    helpers = descendants(proc.pid)  # workers, forkserver, resource tracker
    assert len(workers(proc.pid)) == 2
    proc.kill()
    proc.wait(timeout=10)
    killed = time.monotonic()
    while any(alive(p) for p in helpers) and time.monotonic() - killed < 5:
        time.sleep(0.05)
    assert time.monotonic() - killed < 1.0, [p for p in helpers if alive(p)]


def _with_open_files(limit: int, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """`vrclog ARGS` under `ulimit -n LIMIT` (soft and hard)."""
    def cap() -> None:
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    done = subprocess.run([VRCLOG_BIN, *map(str, args)], capture_output=True, timeout=300,
                          preexec_fn=cap)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(),
                                       done.stderr.decode())


@pytest.mark.posix
def test_few_file_descriptors_are_fewer_workers_or_one_error(busy_log: tuple[Path, bytes]) -> None:
    """`ulimit -n 16` with worker processes exited 70 (EMFILE), and at 8 with a raw traceback:
    now a run fits its workers to the limit and says so once, or, with no room for one
    worker and --workers processes asked for, gives one error naming the limit (exit 2)."""
    log, expected = busy_log
    args = ("parse", "--plugin", BUSY, "--jobs", "2", "--timeout", "5s", log)
    none_fit = _with_open_files(12, *args, "--workers", "processes")
    assert none_fit.returncode == 2 and none_fit.stdout == ""
    assert none_fit.stderr.startswith("vrclog: error: ulimit -n 12: too few file descriptors")
    assert len(none_fit.stderr.splitlines()) == 1
    big = log.parent / "big.log"  # over the 4 MiB from which auto starts worker processes
    big.write_text("".join(f"2024.01.15 23:59:59 Log        -  [VRPoker] Round {i} begins\n"
                           for i in range(100_000)))
    vrpoker = BUSY.with_name("vrpoker.wasm")
    threads = _with_open_files(12, "parse", "--plugin", vrpoker, "--jobs", "2", big)
    assert threads.returncode == 0 and threads.stdout.count("\n") == 100_000
    (warning,) = threads.stderr.splitlines()
    assert warning.startswith("vrclog: warning: ulimit -n 12 leaves room for 0 of 2 worker processes "
                              "(--jobs 2 needs about ") and warning.endswith("): running on threads")
    one = _with_open_files(20, *args, "--workers", "processes")
    assert one.returncode == 0 and one.stdout.encode() == expected
    assert "leaves room for 1 of 2 worker processes" in one.stderr
    assert "running on 1 worker process" in one.stderr
    tiny = _with_open_files(8, *args, "--workers", "threads")
    assert tiny.returncode == 0 and "Traceback" not in tiny.stderr

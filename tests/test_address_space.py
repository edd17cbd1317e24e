"""Under an address-space limit (ulimit -v): every command works, with the same output, or
says in one line why it cannot.  Never a panic, a backtrace or a core dump."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .adversarial.test_hostile_plugins import FAILING_CASES
from .conftest import SAMPLE_LOGS, SAMPLES, echo_plugin_wat, vrclog

resource = pytest.importorskip("resource")  # POSIX; Windows has no such limit
GIB = 1 << 30


def run(args: list[str | Path], limit: int | None, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return vrclog(*args, stdin=stdin, address_space=limit)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "p.wat"
    path.write_text(echo_plugin_wat(FAILING_CASES["memory bomb"][0]))
    return path


COMMANDS: list[tuple[str, list[str | Path], bytes]] = [
    ("built-in", ["parse", SAMPLE_LOGS / "vrchat.log"], b""),
    ("plugin", ["parse", "--plugin", SAMPLES / "vrpoker.wasm", SAMPLE_LOGS / "vrpoker.log"], b""),
    ("threads", ["parse", "--plugin", SAMPLES / "echo.wasm", "--jobs", "2", "--workers", "threads",
                 SAMPLE_LOGS / "vrchat.log"], b""),
    ("processes", ["parse", "--plugin", SAMPLES / "echo.wasm", "--jobs", "2", "--workers", "processes",
                   SAMPLE_LOGS / "vrchat.log"], b""),
    ("check", ["plugin", "check", SAMPLES / "vrpoker.wasm", "--sample", SAMPLE_LOGS / "vrpoker.log"], b""),
    # Components have an engine of their own: pooled without a limit, on demand under one.
    ("js component", ["parse", "--plugin", SAMPLES / "js" / "vrpoker_js.wasm", "--jobs", "2",
                      "--workers", "threads", SAMPLE_LOGS / "vrpoker.log"], b""),
    ("python component", ["parse", "--plugin", SAMPLES / "python" / "vrpoker_py.wasm", "--no-prefilter",
                          SAMPLE_LOGS / "vrpoker.log"], b""),
    ("info", ["plugin", "info", "--json", SAMPLES / "vrpoker.wasm"], b""),
    ("types", ["types", "--json"], b""),
]


@pytest.mark.parametrize("limit", [16 * GIB, 4 * GIB, 1 * GIB], ids=["16GiB", "4GiB", "1GiB"])
@pytest.mark.parametrize(("name", "args", "stdin"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_commands_give_the_same_output_under_a_limit(name: str, args: list[str | Path], stdin: bytes,
                                                     limit: int) -> None:
    free = run(args, None, stdin)
    capped = run(args, limit, stdin)

    def untimed(out: str) -> list[str]:  # plugin check's report shows timings
        return [line for line in out.splitlines() if not line.startswith(("per-line CPU time", "slowest"))]

    def said(err: str) -> list[str]:  # a component's first compilation (per sizing) is announced
        return [line for line in err.splitlines() if not line.startswith("vrclog: compiling")]

    assert capped.returncode == free.returncode, capped.stderr
    assert untimed(capped.stdout) == untimed(free.stdout) and said(capped.stderr) == said(free.stderr)


@pytest.mark.parametrize("limit", [None, 4 * GIB, 1 * GIB], ids=["none", "4GiB", "1GiB"])
def test_the_memory_limit_holds_whatever_the_sizing(bomb: Path, limit: int | None) -> None:
    """Bounds-checked, pooled or on demand: a plugin still cannot grow past --memory-limit."""
    done = run(["parse", "--plugin", bomb, "--memory-limit", "16MiB"], limit, b"good\nBAD\n")
    assert done.returncode == 4, done.stderr
    assert done.stderr.startswith("<stdin>:2: runtime_error: p.wat: wasm `unreachable`")


@pytest.mark.parametrize("limit", [300 << 20, 64 << 20])
def test_too_small_a_limit_is_one_line_and_exit_3(limit: int) -> None:
    done = run(["parse", "--plugin", SAMPLES / "vrpoker.wasm", SAMPLE_LOGS / "vrpoker.log"], limit)
    err = done.stderr
    assert done.returncode == 3 and done.stdout == "", err
    assert len(err.splitlines()) == 1 and "address-space limit (ulimit -v)" in err, err
    assert "panicked" not in err and "Traceback" not in err


@pytest.mark.skipif(sys.platform != "linux", reason="the built-in parser needs no wasmtime anywhere")
def test_the_built_in_parser_runs_under_a_small_limit() -> None:
    done = run(["parse", SAMPLE_LOGS / "vrchat.log"], 256 << 20)
    unlimited = vrclog("parse", SAMPLE_LOGS / "vrchat.log")
    assert done.returncode == 0 and done.stdout == unlimited.stdout and done.stdout.count("\n") > 30


def test_the_environment_has_no_limit_of_its_own() -> None:
    """The comparison runs above need an unlimited parent."""
    assert resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY or os.name != "posix"

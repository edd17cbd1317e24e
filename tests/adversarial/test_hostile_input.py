"""Hostile input through the real process: nothing crashes, nothing good is lost."""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path

import pytest

from ..conftest import VRCLOG_BIN, echo_plugin_wat
from .harness import run_vrclog, write_plugin


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pure echo: every line, whatever its first byte, comes back as an event."""
    return write_plugin(tmp_path_factory.mktemp("echo"), "echo", echo_plugin_wat(triggers=False))


def test_empty_files_and_empty_stdin(echo: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.log").write_bytes(b"")
    outcome = run_vrclog("--plugin", echo, tmp_path / "empty.log", "-", stdin=b"")
    assert (outcome.code, outcome.lines, outcome.stderr) == (0, [], "")


def test_binary_junk(echo: Path, tmp_path: Path) -> None:
    junk = random.Random(3).randbytes(64 * 1024)
    (tmp_path / "junk.log").write_bytes(b"first\n" + junk + b"\nlast\n")
    outcome = run_vrclog("--plugin", echo, tmp_path / "junk.log")
    assert outcome.code in (0, 4), outcome.stderr  # a junk "line" may exceed the input region
    assert outcome.lines[0] == "first" and outcome.lines[-1] == "last"
    assert len(outcome.lines) + outcome.stderr.count("input_too_large") == junk.count(b"\n") + 3


def test_invalid_utf8_crlf_bom_nul(echo: Path, tmp_path: Path) -> None:
    data = b"\xef\xbb\xbfbom line\r\n\xc3\x28 bad \xed\xa0\x80 surrogate\r\nnul \x00 inside\n\r\nlast"
    (tmp_path / "x.log").write_bytes(data)
    outcome = run_vrclog("--plugin", echo, tmp_path / "x.log")
    assert outcome.code == 0, outcome.stderr
    assert outcome.lines == ["bom line", "\ufffd( bad \ufffd\ufffd\ufffd surrogate", "nul \x00 inside", "",
                             "last"]


def test_nine_kib_line(echo: Path) -> None:
    outcome = run_vrclog("--plugin", echo, stdin=b"ok 1\n" + b"x" * 9216 + b"\nok 2\n")
    assert outcome.code == 4 and outcome.lines == ["ok 1", "ok 2"]
    assert outcome.stderr.startswith("<stdin>:2: input_too_large: echo.wat: input JSON is 9227 bytes")


def test_missing_and_directory_among_good_files(echo: Path, tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text("a\n")
    (tmp_path / "b.log").write_text("b\n")
    outcome = run_vrclog("--plugin", echo, tmp_path / "a.log", tmp_path / "missing.log", tmp_path,
                         tmp_path / "b.log")
    assert outcome.code == 2 and outcome.lines == ["a", "b"]
    assert outcome.stderr.splitlines() == [
        f"vrclog: error: {tmp_path / 'missing.log'}: cannot open: No such file or directory",
        f"vrclog: error: {tmp_path}: is a directory (use --log-dir DIR for a VRChat log folder)"]


def test_file_truncated_while_being_read(echo: Path, tmp_path: Path) -> None:
    log = tmp_path / "shrinking.log"
    log.write_text("".join(f"line {i}\n" for i in range(1, 300_001)))
    proc = subprocess.Popen([VRCLOG_BIN, "parse", "--plugin", str(echo), "--jobs", "1", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    with log.open("r+") as f:
        f.truncate(1000)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err
    import json
    lines = [json.loads(x)["data"]["line"] for x in out.decode().splitlines()]
    assert lines, "nothing was read before the truncation"
    # Whatever was read before the cut is written in order; at most the last line is cut short.
    expected = [f"line {i}" for i in range(1, len(lines) + 1)]
    assert lines[:-1] == expected[:-1] and expected[-1].startswith(lines[-1])


@pytest.mark.posix  # os.wait4
def test_200_mib_line_is_too_large_with_bounded_memory(echo: Path) -> None:
    feeder = subprocess.Popen(
        "printf 'before\\n'; head -c 209715200 /dev/zero | tr '\\0' 'a'; printf '\\nafter\\n'",
        shell=True, stdout=subprocess.PIPE)
    proc = subprocess.Popen([VRCLOG_BIN, "parse", "--plugin", str(echo)], stdin=feeder.stdout,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert feeder.stdout is not None
    feeder.stdout.close()
    reader = proc.stdout
    assert reader is not None
    out = reader.read()
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    feeder.wait(10)
    assert os.waitstatus_to_exitcode(status) == 4
    import json
    assert [json.loads(x)["data"]["line"] for x in out.decode().splitlines()] == ["before", "after"]
    assert err.decode().strip() == (
        "<stdin>:2: input_too_large: line is 209715200 bytes, over the 1 MiB line limit (--line-limit)")
    assert usage.ru_maxrss < 200 * 1024  # KiB: peak RSS under 200 MiB

"""The README's examples, run as a reader would paste them: each command of the
Examples block and of the plugin tools block, and the pretty output it shows
(the line numbers and fields of sample_logs/vrchat.log)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT, SAMPLE_LOGS, SAMPLES, VRCLOG_BIN, vrclog

README = (ROOT / "README.md").read_text("utf-8")


def indented_block(after: str) -> list[str]:
    """The indented lines of the code block that follows ``after``, unindented."""
    start = README.index(after)
    lines: list[str] = []
    for line in README[start:].splitlines()[1:]:
        if line and not line.startswith("    "):
            if lines:
                break
            continue
        if lines or line.strip():
            lines.append(line[4:])
    return lines


def bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    path = f"{Path(VRCLOG_BIN).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": path})


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("jq") is None, reason="bash and jq examples")
def test_the_examples_block_runs(tmp_path: Path) -> None:
    """Every command of "Examples", with its placeholder files made real: output_log.txt a
    VRChat log, x.wasm and checks.wasm the VRPoker plugin, big.log and build.log its log.
    `tail -F` follows for ever: it reads the file once (tail -n +1) instead."""
    block = indented_block("### Examples")
    commands = [line for line in block if line.startswith("vrclog ") or line.startswith("tail ")]
    assert len(commands) == 5, commands
    (tmp_path / "output_log.txt").write_bytes(  # a VRChat log with a VRPoker table in it
        (SAMPLE_LOGS / "vrchat.log").read_bytes() + b"\n" + (SAMPLE_LOGS / "vrpoker.log").read_bytes())
    for name in ("x.wasm", "checks.wasm"):
        shutil.copy(SAMPLES / "vrpoker.wasm", tmp_path / name)
    for name in ("big.log", "build.log"):
        shutil.copy(SAMPLE_LOGS / "vrpoker.log", tmp_path / name)
    (tmp_path / "sample_plugins").mkdir()
    shutil.copy(SAMPLES / "vrpoker.wasm", tmp_path / "sample_plugins" / "vrpoker.wasm")
    for command in commands:
        done = bash("set -o pipefail; " + command.replace("tail -F", "tail -n +1"), tmp_path)
        written = done.stdout or (tmp_path / "events.jsonl").read_text() if ">" in command else done.stdout
        assert done.returncode == 0 and written, (command, done.stderr)
    who = bash(commands[1], tmp_path).stdout.split()
    assert who[:3] == ["Night", "Owl", "ダニエル"] and "Alice" in who
    first = bash(commands[3], tmp_path).stdout.splitlines()
    assert len(first) == 1 and '"vrpoker_event"' in first[0]


def test_the_pretty_output_shown_is_what_the_sample_gives() -> None:
    """Each line the README shows for `vrclog parse --format pretty sample_logs/vrchat.log`
    is a line of the real output ("…" stands for what it leaves out; the offset is local)."""
    block = indented_block("world_join` events: one with `world_id`")
    assert block[0] == "$ vrclog parse --format pretty sample_logs/vrchat.log"
    shown = [line for line in block[1:] if line and line != "…"]
    got = vrclog("parse", "--format", "pretty", "sample_logs/vrchat.log", cwd=ROOT,
                 env={"COLUMNS": "1000"}).stdout.splitlines()
    for line in shown:
        pattern = ".*".join(re.escape(part) for part in re.split(r"…|[+-]\d\d:\d\d", line))
        assert any(re.fullmatch(pattern, out) for out in got), line


def test_the_plugin_tools_block_runs(tmp_path: Path) -> None:
    block = indented_block("four commands help:")
    commands = [line.split("  #")[0].strip() for line in block if line.startswith("vrclog plugin")]
    assert [c.split()[2] for c in commands] == ["info", "check", "prefilter", "types"]
    shutil.copy(SAMPLES / "vrpoker.wasm", tmp_path / "plugin.wasm")
    shutil.copy(SAMPLES / "vrpoker.wasm", tmp_path / "in.wasm")
    shutil.copy(SAMPLE_LOGS / "vrpoker.log", tmp_path / "my.log")
    for command in commands:
        args = [a for a in command.split()[1:] if a not in ("[--json]", "[--sample", "my.log]")]
        done = vrclog(*[a.strip("'") for a in args], cwd=tmp_path)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    assert "event types: myworld_score" in vrclog("plugin", "info", "out.wasm", cwd=tmp_path).stdout

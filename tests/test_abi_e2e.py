"""ABI v2 and prefilters through the real ``vrclog`` process: sample plugins, long lines,
misbehaving alloc, prefilters valid, invalid, unknown-keyed and unsound, and the tools."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .conftest import BUMP_ALLOC, SAMPLE_LOGS, SAMPLES, vrclog, wat_plugin_v2
from .test_cli_e2e import PREFIX, events, lines_of

POKER_LOG = SAMPLE_LOGS / "vrpoker.log"


def long_line_log(tmp_path: Path) -> Path:
    """The sample log with a 20 KiB API dump (not a VRPoker line) and a long VRPoker line."""
    lines = POKER_LOG.read_text(encoding="utf-8").splitlines()
    lines.insert(3, PREFIX + "[API] Response: " + "{\"k\": \"v\"} " * 2000)
    lines.insert(6, PREFIX + "[VRPoker] Player Zed wins with " + "a long hand " * 1000)
    path = tmp_path / "long.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_v1_and_v2_builds_give_identical_events_on_the_sample_log() -> None:
    v2 = vrclog("parse", "--plugin", SAMPLES / "vrpoker.wasm", POKER_LOG)
    v1 = vrclog("parse", "--plugin", SAMPLES / "vrpoker_v1.wasm", POKER_LOG)
    unfiltered = vrclog("parse", "--no-prefilter", "--plugin", SAMPLES / "vrpoker.wasm", POKER_LOG)
    assert v2.returncode == v1.returncode == unfiltered.returncode == 0, v2.stderr + v1.stderr
    assert v2.stdout == v1.stdout == unfiltered.stdout
    assert len(events(v2.stdout)) == 10


def test_ordinary_long_lines_no_longer_fail(tmp_path: Path) -> None:
    log = long_line_log(tmp_path)
    v2 = vrclog("parse", "--plugin", SAMPLES / "vrpoker.wasm", log)
    assert v2.returncode == 0 and v2.stderr == ""
    v2_events = events(v2.stdout)
    winners = [e for e in v2_events if e["type"] == "vrpoker_winner"]
    assert winners[0]["data"]["player"] == "Zed"  # type: ignore[index]
    # v1: the long non-VRPoker line fails the prefilter and is skipped, not reported;
    # the long VRPoker line cannot enter the input region.
    v1 = vrclog("parse", "--plugin", SAMPLES / "vrpoker_v1.wasm", log)
    assert v1.returncode == 4
    assert v1.stderr.count("input_too_large") == 1 and f"{log}:7: input_too_large" in v1.stderr
    assert events(v1.stdout) == [e for e in v2_events if e is not winners[0]]
    unfiltered = vrclog("parse", "--no-prefilter", "--plugin", SAMPLES / "vrpoker_v1.wasm", log)
    assert unfiltered.returncode == 4 and unfiltered.stderr.count("input_too_large") == 2


@pytest.mark.parametrize("workers", ["threads", "processes"])
def test_stats_count_the_lines_each_prefilter_skipped(workers: str) -> None:
    result = vrclog("parse", "--stats", "--jobs", "2", "--workers", workers,
                    "--plugin", SAMPLES / "vrpoker.wasm", "--plugin", SAMPLES / "echo.wasm", POKER_LOG)
    assert result.returncode == 0, result.stderr
    total = len(POKER_LOG.read_text().splitlines())
    poker = sum(1 for line in POKER_LOG.read_text().splitlines() if "[VRPoker]" in line)
    assert re.search(rf"prefilter skipped, vrpoker.wasm │ +{total - poker} lines", result.stderr)
    assert "skipped, echo.wasm" not in result.stderr  # no prefilter: nothing to count
    assert len(events(result.stdout)) == total + 10


def plugin(tmp_path: Path, wat: str, name: str = "p.wat") -> Path:
    path = tmp_path / name
    path.write_text(wat)
    return path


@pytest.mark.parametrize(("section", "problem"), [
    ("not json", "not JSON"),
    ('{"substrings": []}', '"substrings" must hold 1 to 256 strings, not 0'),
    ('{"regex": "(x"}', "not a valid RE2 pattern"),
])
def test_invalid_prefilter_is_a_load_error_naming_the_section(tmp_path: Path, section: str,
                                                              problem: str) -> None:
    path = plugin(tmp_path, wat_plugin_v2(prefilter=section))
    result = vrclog("parse", "--plugin", path, stdin=b"x\n")
    assert result.returncode == 3 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"vrclog: error: {path}: custom section vrclog.prefilter: " + result.stderr.split(
            "vrclog.prefilter: ", 1)[1].strip()]
    assert problem in result.stderr


def test_two_prefilter_sections_are_a_load_error(tmp_path: Path) -> None:
    wat = wat_plugin_v2(prefilter='{"regex": "a"}').replace(
        "(module", '(module (@custom "vrclog.prefilter" "{\\"regex\\": \\"b\\"}")', 1)
    result = vrclog("parse", "--plugin", plugin(tmp_path, wat), stdin=b"x\n")
    assert result.returncode == 3 and "2 vrclog.prefilter sections" in result.stderr


def test_unknown_key_warns_once_and_every_line_goes_to_the_plugin(tmp_path: Path) -> None:
    path = plugin(tmp_path, wat_plugin_v2(prefilter='{"substrings": ["keep"], "not_before": "x"}'))
    result = vrclog("parse", "--jobs", "2", "--plugin", path, stdin=b"keep 1\ndrop 2\ndrop 3\n")
    assert result.returncode == 0
    assert lines_of(result.stdout) == ["keep 1", "drop 2", "drop 3"]
    warnings = result.stderr.splitlines()
    assert len(warnings) == 1 and "unknown key 'not_before'" in warnings[0] and "ignored" in warnings[0]


def test_prefilter_and_no_prefilter(tmp_path: Path) -> None:
    path = plugin(tmp_path, wat_plugin_v2(prefilter='{"substrings": ["keep"], "regex": "^[0-9]+$"}'))
    stdin = b"keep 1\ndrop 2\n345\nno keep\n"
    assert lines_of(vrclog("parse", "--plugin", path, stdin=stdin).stdout) == ["keep 1", "345", "no keep"]
    every = vrclog("parse", "--no-prefilter", "--plugin", path, stdin=stdin)
    assert lines_of(every.stdout) == ["keep 1", "drop 2", "345", "no keep"]


def test_v2_lines_of_0_bytes_8k_plus_1_and_1_mib(tmp_path: Path) -> None:
    path = plugin(tmp_path, wat_plugin_v2())
    sizes = [0, 8 * 1024 + 1, 1024 * 1024, 5]
    stdin = b"".join(b"x" * n + b"\n" for n in sizes)
    result = vrclog("parse", "--output-limit", "2MiB", "--plugin", path, stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert [len(line) for line in lines_of(result.stdout)] == sizes
    over = vrclog("parse", "--line-limit", "8KiB", "--plugin", path, stdin=stdin)
    assert over.returncode == 4
    assert [len(line) for line in lines_of(over.stdout)] == [0, 5]
    assert over.stderr.count("input_too_large") == 2
    assert "<stdin>:2: input_too_large: line is 8193 bytes, over the 8 KiB line limit" in over.stderr


def test_misbehaving_alloc_fails_its_lines_only(tmp_path: Path) -> None:
    refuse_long = "(if (i32.gt_u (local.get $size) (i32.const 10)) (then (return (i32.const 0))))"
    picky = BUMP_ALLOC.replace("(local.set $p (global.get $heap))",
                               refuse_long + "(local.set $p (global.get $heap))")
    path = plugin(tmp_path, wat_plugin_v2(picky))
    result = vrclog("parse", "--plugin", path, stdin=b"short\nthis line is long\nok\n")
    assert result.returncode == 4
    assert lines_of(result.stdout) == ["short", "ok"]
    assert result.stderr.splitlines() == [
        "<stdin>:2: runtime_error: p.wat: alloc(17): returned 0 (out of memory? an instance may use "
        "at most 64 MiB)"]


def test_unsupported_abi_version_names_the_supported_ones(tmp_path: Path) -> None:
    result = vrclog("parse", "--plugin", plugin(tmp_path, wat_plugin_v2(version=3)), stdin=b"x\n")
    assert result.returncode == 3
    assert "abi_version returned 3; this vrclog supports ABI versions 1 and 2" in result.stderr


def test_prefilter_tool_writes_a_section_info_shows_and_check_verifies(tmp_path: Path) -> None:
    out = tmp_path / "echo_pf.wasm"
    made = vrclog("plugin", "prefilter", SAMPLES / "echo.wasm", "--substring", "[VRPoker]",
                  "--substring", "Ｃｈｅｒｒｙ", "-o", out)
    assert made.returncode == 0, made.stderr
    info = json.loads(vrclog("plugin", "info", "--json", out).stdout)
    assert info["valid"] and info["abi_version"] == 2
    assert info["prefilter"] == {"substrings": ["[VRPoker]", "Ｃｈｅｒｒｙ"]}
    assert "prefilter: none" in vrclog("plugin", "info", SAMPLES / "echo.wasm").stdout
    # echo gives an event for every line: a prefilter that rejects lines is unsound.
    check = vrclog("plugin", "check", out, "--sample", POKER_LOG)
    assert check.returncode == 1
    assert "rejects this line, but the plugin gives 1 event(s) of type line" in check.stdout
    assert "hint: widen the prefilter" in check.stdout
    sample = POKER_LOG.read_text().splitlines()
    kept = sum(1 for line in sample if "[VRPoker]" in line or "Ｃｈｅｒｒｙ" in line)
    assert f"the prefilter skips {len(sample) - kept} of {len(sample)} sample lines" in check.stdout
    removed = vrclog("plugin", "prefilter", out, "--remove", "-o", out)
    assert removed.returncode == 0 and out.read_bytes() == (SAMPLES / "echo.wasm").read_bytes()


def test_check_passes_a_sound_prefilter_and_reports_its_share() -> None:
    check = vrclog("plugin", "check", SAMPLES / "vrpoker.wasm", "--sample", POKER_LOG)
    assert check.returncode == 0, check.stdout
    assert 'ABI version 2; prefilter: {"substrings": ["[VRPoker]"]}' in check.stdout
    assert "the prefilter skips" in check.stdout and "PASS" in check.stdout


@pytest.mark.parametrize(("args", "message"), [
    ((), "give --substring and/or --regex, or --remove"),
    (("--regex", "(x"), "not a valid RE2 pattern"),
    (("--substring", ""), "empty string"),
])
def test_prefilter_tool_usage_errors(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = vrclog("plugin", "prefilter", SAMPLES / "echo.wasm", *args, "-o", tmp_path / "x.wasm")
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "x.wasm").exists()


def test_check_sample_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    result = vrclog("plugin", "check", SAMPLES / "vrpoker.wasm", "--sample", tmp_path / "missing.log")
    assert result.returncode == 2 and "missing.log: cannot open" in result.stderr

"""Runner policy that the end-to-end tests do not pin down directly."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vrclog_cli.limits import Limits
from vrclog_cli.run.runner import PROCESS_MIN_BYTES, ParseOptions, ParseRun, use_processes
from vrclog_cli.sinks.writer import JsonLinesWriter

from .conftest import echo_plugin_wat


def test_auto_uses_processes_only_where_they_pay(tmp_path: Path) -> None:
    big = tmp_path / "big.log"
    big.write_bytes(b"x\n" * (PROCESS_MIN_BYTES // 2 + 1))
    small = tmp_path / "small.log"
    small.write_bytes(b"x\n")
    with_plugin = {"plugins": ["p.wasm"], "jobs": 2}
    assert use_processes(ParseOptions(paths=[str(big)], **with_plugin))  # type: ignore[arg-type]
    assert not use_processes(ParseOptions(paths=[str(small)], **with_plugin))  # type: ignore[arg-type]
    assert not use_processes(ParseOptions(paths=[str(big), "-"], **with_plugin))  # type: ignore[arg-type]
    assert not use_processes(ParseOptions(paths=[str(big)], plugins=["p.wasm"], jobs=1))
    assert not use_processes(ParseOptions(paths=[str(big)], jobs=2))  # built-in only: threads
    assert not use_processes(ParseOptions(paths=[str(big)], follow=True, **with_plugin))  # type: ignore[arg-type]
    assert use_processes(ParseOptions(paths=["-"], workers="processes", **with_plugin))  # type: ignore[arg-type]
    assert not use_processes(ParseOptions(paths=[str(big)], workers="threads", **with_plugin))  # type: ignore[arg-type]


def run_echo(tmp_path: Path, text: str, **options: object) -> tuple[ParseRun, int, list[str]]:
    log = tmp_path / "in.log"
    log.write_text(text)
    plugin = tmp_path / "echo.wat"
    plugin.write_text(echo_plugin_wat())
    sink = io.BytesIO()
    run = ParseRun(ParseOptions(paths=[str(log)], plugins=[str(plugin)], **options),  # type: ignore[arg-type]
                   JsonLinesWriter(sink), report=lambda _d: None)
    run.load()
    code = run.run()
    return run, code, [json.loads(x)["data"]["line"] for x in sink.getvalue().decode().splitlines()]


def test_lines_are_counted_across_batches_and_outcomes(tmp_path: Path) -> None:
    # 300 lines (several 64-line batches): a trap on line 70, a too-long line on 200.
    lines = [f"line {n}" for n in range(1, 301)]
    lines[69] = "Trap"
    lines[199] = "x" * 300
    run, code, written = run_echo(tmp_path, "\n".join(lines) + "\n", limits=Limits(max_line_bytes=200))
    assert code == 4 and run.stats.lines == 300
    assert written == [t for n, t in enumerate(lines, 1) if n not in (70, 200)]
    assert dict(run.stats.errors_by_kind) == {"runtime_error": 1, "input_too_large": 1}


def test_fail_fast_counts_only_the_lines_before_the_failure(tmp_path: Path) -> None:
    lines = [f"line {n}" for n in range(1, 201)]
    lines[129] = "Trap"  # line 130, in the third batch
    run, code, written = run_echo(tmp_path, "\n".join(lines) + "\n", fail_fast=True)
    assert code == 4 and run.stats.lines == 129 and written == lines[:129]


def test_builtin_batches_count_every_line(tmp_path: Path) -> None:
    log = tmp_path / "in.log"
    prefix = "2024.01.15 23:58:01 Log        -  "
    log.write_text("".join(prefix + ("[Behaviour] OnPlayerJoined Bob\n" if n % 50 == 0 else "x\n")
                           for n in range(1, 1001)))
    sink = io.BytesIO()
    run = ParseRun(ParseOptions(paths=[str(log)]), JsonLinesWriter(sink), report=lambda _d: None)
    run.load()
    assert run.run() == 0
    assert run.stats.lines == 1000 and sink.getvalue().count(b"\n") == 20


def test_a_reader_thread_failure_is_raised_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stdin is read on a thread of its own; should that thread fail (a bug), the run
    raises its error (exit 70 from the command) instead of waiting for ever."""
    def broken_items(_self: ParseRun) -> Iterator[object]:
        yield from ()
        raise RuntimeError("reader bug")

    monkeypatch.setattr(ParseRun, "_items", broken_items)
    run = ParseRun(ParseOptions(paths=["-"]), JsonLinesWriter(io.BytesIO()), report=lambda _d: None)
    run.load()
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: _catch(run.run, outcome), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the run waited for the dead reader"
    assert [str(e) for e in outcome] == ["reader bug"]


def _catch(call: Callable[[], object], into: list[BaseException]) -> None:
    try:
        call()
    except RuntimeError as exc:
        into.append(exc)


def test_auto_runs_one_job_where_prefilters_leave_little(tmp_path: Path) -> None:
    """A 5 MB log where 2 % of the lines reach vrpoker.wasm: workers would cost more
    than the little work they could share; where most lines reach it, auto as before."""
    vrpoker = str(Path(__file__).resolve().parent.parent / "sample_plugins" / "vrpoker.wasm")
    hit, miss = b"[VRPoker] Round 1 begins\n", b"2024.01.15 23:59:59 Log        -  [Network] x\n" * 49
    sparse, dense = tmp_path / "sparse.log", tmp_path / "dense.log"
    sparse.write_bytes((hit + miss) * 2_200)
    dense.write_bytes(hit * 200_000)
    assert sparse.stat().st_size > PROCESS_MIN_BYTES and dense.stat().st_size > PROCESS_MIN_BYTES

    def little(path: Path, default_jobs: bool = True, prefilter: bool = True) -> bool:
        run = ParseRun(ParseOptions(paths=[str(path)], plugins=[vrpoker], jobs=2,
                                    default_jobs=default_jobs, prefilter=prefilter),
                       JsonLinesWriter(io.BytesIO()), report=lambda _d: None)
        run.load()
        try:
            little = run._little_reaches_plugins()
            pool = run._pool()
            try:  # one job (the calling thread) only where little reaches and --jobs was not given
                assert pool.inline is (little and default_jobs)
            finally:
                pool.shutdown()
            return little
        finally:
            assert run.runtime is not None
            run.runtime.close()

    assert little(sparse)
    assert little(sparse, default_jobs=False)  # estimated alike, but the asked-for jobs run
    assert not little(dense)
    assert not little(sparse, prefilter=False)  # every line reaches the plugin


def test_the_library_calls_are_strict_about_what_they_take(tmp_path: Path) -> None:
    """One string is not lines (it iterated characters: 0 events, no error); plugins load at
    the call, so a bad one fails there, not at the first event; a problem keeps the plugin's
    own text."""
    from vrclog_cli import LineProblem, PluginLoadError, parse_files, parse_lines

    with pytest.raises(TypeError, match="not one string"):
        parse_lines("2024.01.15 23:59:59 Log        -  [Behaviour] OnPlayerJoined Alice (usr_1)")
    with pytest.raises(TypeError, match="not one"):
        parse_files("sample_logs/vrpoker.log")
    with pytest.raises(PluginLoadError):
        parse_lines(["x"], plugins=["no/such/plugin.wasm"])
    with pytest.raises(PluginLoadError):
        parse_files(["sample_logs/vrpoker.log"], plugins=["no/such/plugin.wasm"])
    from .conftest import answer, wat_plugin

    segment, body = answer('{"ok":false,"error":"two\\nlines\\u001b[2J","code":"E\\r1"}')
    (tmp_path / "p.wat").write_text(wat_plugin(body, extra=segment))
    problems: list[LineProblem] = []
    assert list(parse_lines(["x"], plugins=[tmp_path / "p.wat"], on_error=problems.append)) == []
    assert (problems[0].message, problems[0].code) == ("two\nlines\x1b[2J", "E\r1")


def test_a_run_stopped_before_its_plugins_load_names_them() -> None:
    """Ctrl-C during a busy host's start-up: its summary still says what was run."""
    run = ParseRun(ParseOptions(paths=["-"], plugins=["plugins/slow.wasm", "vrpoker.wasm"]),
                   JsonLinesWriter(io.BytesIO()), report=lambda _d: None)
    assert run.stats.plugins == ["slow.wasm", "vrpoker.wasm"]

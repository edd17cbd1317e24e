"""vrclog_cli.dask on a real distributed.LocalCluster (two worker processes, loopback only):
the multiset of events equals what `vrclog parse` writes for the same gzip logs, and
every per-line error comes back as data."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from .conftest import SAMPLE_LOGS, SAMPLES, echo_plugin_wat, python, vrclog

pytest.importorskip("dask.bag")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three gzip logs: the VRPoker sample, and lines for echo (T... lines trap)."""
    folder = tmp_path_factory.mktemp("logs")
    sample = (SAMPLE_LOGS / "vrpoker.log").read_bytes()
    (folder / "a.log.gz").write_bytes(gzip.compress(sample))
    (folder / "b.log.gz").write_bytes(gzip.compress(b"".join(b"line %d\n" % n for n in range(300))
                                                    + b"Trap here\nafter\n"))
    (folder / "c.log.gz").write_bytes(gzip.compress(sample + b"Trap again\n"))
    return folder


def test_cluster_gives_what_vrclog_parse_writes(logs: Path, tmp_path: Path) -> None:
    import dask.bag as db

    from vrclog_cli.dask import errors_of, events_of, parse_bag

    echo = tmp_path / "echo.wat"
    echo.write_text(echo_plugin_wat())
    plugins = [str(SAMPLES / "vrpoker.wasm"), str(echo)]
    files = sorted(str(p) for p in logs.iterdir())
    expected = vrclog("parse", *[a for p in plugins for a in ("--plugin", p)], *files)
    assert expected.returncode == 4  # the two Trap lines
    expected_events = Counter(expected.stdout.splitlines())
    expected_errors = sorted(line.split(": ", 1)[0] for line in expected.stderr.splitlines())

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        lines = db.read_text(str(logs / "*.log.gz"), include_path=True)
        assert lines.npartitions == 3  # one per file
        records = parse_bag(lines, plugins=plugins).persist()
        events = events_of(records).compute()
        errors = errors_of(records).compute()

    got = Counter(json.dumps({k: v for k, v in e.items() if k not in ("source", "line")},
                             ensure_ascii=False, separators=(",", ":")) for e in events)
    assert got == expected_events
    # Each event names its file and line (the echo plugin's event for line N is that line).
    echoed = [e for e in events if e["type"] == "echo"]
    assert echoed and all(e["source"] in files and e["line"] >= 1 for e in echoed)
    for e in echoed[:50]:
        with gzip.open(e["source"], "rt", encoding="utf-8") as f:
            assert f.read().splitlines()[e["line"] - 1] == e["data"]["line"]
    assert sorted(f"{e['source']}:{e['line']}" for e in errors) == expected_errors
    assert {e["kind"] for e in errors} == {"runtime_error"} and {e["parser"] for e in errors} == {"echo.wat"}


def test_plugins_pickle_by_reference_and_load_once_per_process(tmp_path: Path) -> None:
    import pickle

    from vrclog_cli import Limits, PluginLoadError, Runtime

    path = tmp_path / "p.wasm"
    path.write_bytes((SAMPLES / "vrpoker.wasm").read_bytes())
    with Runtime() as runtime:
        plugin = runtime.load(path)
        data = pickle.dumps(plugin)
    assert len(data) < 1000 and b"\0asm" not in data  # a reference, not the module
    first, second = pickle.loads(data), pickle.loads(data)
    assert first is second and first is not plugin and first.sha256 == plugin.sha256
    assert first.call("2024.01.15 23:59:59 Log        -  [VRPoker] Round 2 begins")[0].data == {"round": "2"}
    with Runtime(Limits(timeout_s=0.07)) as other:  # a reference this process has not loaded yet
        unseen = pickle.dumps(other.load(path))
    path.write_bytes((SAMPLES / "vrpoker_v1.wasm").read_bytes())  # the file changes meanwhile
    with pytest.raises(PluginLoadError, match="changed since it was pickled"):
        pickle.loads(unseen)


def test_the_readme_example_runs_as_written(logs: Path, tmp_path: Path) -> None:
    """The README's "More than one machine" code, with only its scheduler address and shared
    folders swapped for a local cluster and this test's folders: what it writes is, line for
    line, what `vrclog parse` writes."""
    readme = (SAMPLES.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## More than one machine", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(line[4:] for line in section.splitlines()
                     if line.startswith("    ") and not line.strip().startswith("pip "))
    swaps = {'Client("tcp://scheduler.example:8786")':
             'Client(LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", '
             'dashboard_address=None))',
             "/shared/logs": str(logs), "/shared/plugins": str(SAMPLES), "/shared/out": str(tmp_path)}
    for old, new in swaps.items():
        assert old in code, old
        code = code.replace(old, new)
    script = "from distributed import LocalCluster\nif __name__ == '__main__':\n" + "".join(
        f"    {line}\n" for line in code.splitlines())
    done = python(script, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("0 lines failed")
    written = Counter(line for out in sorted(tmp_path.glob("events-*.jsonl.gz"))
                      for line in gzip.decompress(out.read_bytes()).decode().splitlines())
    expected = vrclog("parse", "--plugin", SAMPLES / "vrpoker.wasm", *sorted(logs.iterdir()))
    assert written == Counter(expected.stdout.splitlines()) and written


def test_the_dask_path_gives_the_ids_vrclog_parse_gives(tmp_path: Path) -> None:
    """--provenance's ids (tests/test_provenance.py), where a partition is a whole file
    (read_text's default) of valid UTF-8 (Dask decodes it before vrclog counts bytes)."""
    import dask.bag as db

    from vrclog_cli.dask import json_lines, parse_bag

    echo = SAMPLES / "echo.wasm"
    log = tmp_path / "output_log_2025-06-17_18-20-02.txt"
    log.write_bytes(b"\xef\xbb\xbf" + (SAMPLE_LOGS / "vrchat.log").read_bytes().replace(b"\n", b"\r\n", 3))
    lines = db.read_text(str(log), include_path=True, encoding="utf-8", linedelimiter="\n")
    records = parse_bag(lines, plugins=[echo], builtin=True, provenance=True).compute(scheduler="sync")
    result = vrclog("parse", "--provenance", "--builtin", "--plugin", echo, log)
    one = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(one) > 40 and [r["id"] for r in records] == [e["id"] for e in one]
    assert json_lines(db.from_sequence(records)).compute(scheduler="sync") == [
        json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in one]

"""Runner policy that the end-to-end tests do not pin down directly."""

from __future__ import annotations

from pathlib import Path

from vrclog_cli.runner import PROCESS_MIN_BYTES, ParseOptions, use_processes


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

"""ABI v2 in the host: raw lines where alloc puts them, alloc's failures, free optional;
and how a batch honours prefilters (design.md sections 2b and 2c)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vrclog_cli.errors import InputTooLarge, PluginLoadError, PluginRuntimeError, PluginTimeout
from vrclog_cli.host.abi import INPUT_REGION
from vrclog_cli.host.plugin import Runtime
from vrclog_cli.limits import MIB, Limits
from vrclog_cli.run.batch import process_batch
from vrclog_cli.run.sources import Lines

from .conftest import echo_plugin_wat, wat_plugin_v2


def load(path_dir: Path, wat: str, limits: Limits | None = None, name: str = "p.wat"):  # type: ignore[no-untyped-def]
    path = path_dir / name
    path.write_text(wat)
    return Runtime(limits).load(path)


@pytest.mark.parametrize("size", [0, 1, INPUT_REGION + 1, MIB - 100])
def test_lines_of_any_size_arrive_whole_and_raw(tmp_path: Path, size: int) -> None:
    plugin = load(tmp_path, wat_plugin_v2(), Limits(max_output_bytes=2 * MIB))
    line = "a" * size
    assert plugin.abi_version == 2
    assert [e.data for e in plugin.parse(line)] == [{"line": line}]


def test_non_ascii_and_replacement_characters_arrive_as_utf8(tmp_path: Path) -> None:
    plugin = load(tmp_path, wat_plugin_v2())
    for line in ["Ｃｈｅｒｒｙ🍒", "bad \ufffd byte", "\udcff lone surrogate from a library caller"]:
        got = plugin.parse(line)[0].data
        assert got is not None
        assert got["line"] == line.encode("utf-8", "replace").decode("utf-8")


def test_line_over_the_line_limit_is_too_large(tmp_path: Path) -> None:
    plugin = load(tmp_path, wat_plugin_v2(), Limits(max_line_bytes=1000))
    assert plugin.parse("x" * 1000)
    with pytest.raises(InputTooLarge, match="line is 1001 bytes, over the 1000 bytes line limit"):
        plugin.parse("x" * 1001)


@pytest.mark.parametrize(("alloc_body", "line", "message"), [
    ("unreachable", "x", "alloc(1): wasm `unreachable` instruction executed"),
    ("(i32.const 0)", "xy", "alloc(2): returned 0 (out of memory? an instance may use at most 64 MiB)"),
    ("(i32.const 0x1fff0)", "x" * 100,
     "alloc(100): returned 0x1fff0: [0x1fff0, 0x20054) is outside memory of 131072 bytes"),
    ("(i32.const -16)", "x", "alloc(1): returned 0xfffffff0"),
])
def test_alloc_failures_are_runtime_errors_naming_alloc(tmp_path: Path, alloc_body: str, line: str,
                                                        message: str) -> None:
    plugin = load(tmp_path, wat_plugin_v2(alloc_body))
    with pytest.raises(PluginRuntimeError, match=re.escape(message)) as caught:
        plugin.parse(line)
    assert caught.value.kind == "runtime_error"


def test_alloc_past_the_memory_cap(tmp_path: Path) -> None:
    # The bump allocator asks memory.grow for 3 MiB in a 2 MiB cap: grow fails, alloc gives 0.
    plugin = load(tmp_path, wat_plugin_v2(), Limits(max_memory_bytes=2 * MIB, max_line_bytes=4 * MIB))
    with pytest.raises(PluginRuntimeError, match=r"alloc\(3145728\): returned 0 \(out of memory\? "
                                                 r"an instance may use at most 2 MiB\)"):
        plugin.parse("x" * (3 * MIB))
    assert plugin.parse("fine")  # the next line gets a fresh instance


def test_alloc_of_zero_for_an_empty_line_may_return_anything(tmp_path: Path) -> None:
    plugin = load(tmp_path, wat_plugin_v2("(i32.const 0)"))
    assert [e.data for e in plugin.parse("")] == [{"line": ""}]


def test_alloc_that_spins_times_out(tmp_path: Path) -> None:
    plugin = load(tmp_path, wat_plugin_v2("(loop $l (br $l)) (i32.const 0)"), Limits(timeout_s=0.05))
    with pytest.raises(PluginTimeout):
        plugin.parse("x")


def test_free_is_optional_in_v2_and_required_in_v1(tmp_path: Path) -> None:
    assert load(tmp_path, wat_plugin_v2(with_free=False)).abi_version == 2
    assert load(tmp_path, wat_plugin_v2(with_free=True), name="f.wat").abi_version == 2
    with pytest.raises(PluginLoadError, match="missing export free"):
        load(tmp_path, wat_plugin_v2(version=1), name="v1.wat")


def test_v2_needs_no_input_region(tmp_path: Path) -> None:
    small = wat_plugin_v2().replace('(memory (export "memory") 2)', '(memory (export "memory") 1 1)')
    assert load(tmp_path, small).parse("x")
    v1_small = wat_plugin_v2(version=1, with_free=True).replace(
        '(memory (export "memory") 2)', '(memory (export "memory") 1 1)')
    with pytest.raises(PluginLoadError, match="input region 0x10000-0x12000 does not fit"):
        load(tmp_path, v1_small, name="v1.wat")


def test_v1_line_over_the_input_region(tmp_path: Path) -> None:
    plugin = load(tmp_path, echo_plugin_wat(triggers=False))
    assert plugin.abi_version == 1
    with pytest.raises(InputTooLarge, match="over the 8192-byte input region of ABI v1"):
        plugin.parse("x" * INPUT_REGION)


def batch(texts: list[str], too_large: dict[int, int] | None = None) -> Lines:
    return Lines("log.txt", 1, texts, too_large)


def test_batch_gives_each_plugin_only_its_lines_and_counts_the_rest(tmp_path: Path) -> None:
    runtime = Runtime()
    keep = tmp_path / "keep.wat"
    keep.write_text(wat_plugin_v2(prefilter='{"substrings": ["keep"]}'))
    every = tmp_path / "every.wat"
    every.write_text(wat_plugin_v2())
    filtered, unfiltered = runtime.load(keep), runtime.load(every)
    texts = ["keep 1", "drop 2", "keep 3", "drop 4"]
    out = process_batch([filtered, unfiltered], batch(texts), lambda: False, MIB)
    assert out.done == 4 and out.skipped == [2, 0]
    assert [(o.index, [e.data["line"] for e in o.events if e.data]) for o in out.found] == [
        (0, ["keep 1", "keep 1"]), (1, ["drop 2"]), (2, ["keep 3", "keep 3"]), (3, ["drop 4"])]
    only = process_batch([filtered], batch(texts, {1: 5_000_000}), lambda: False, MIB)
    # A line too large to hold is reported, never counted as skipped.
    assert only.skipped == [1] and [o.index for o in only.found] == [0, 1, 2]
    assert only.found[1].errors[0].kind == "input_too_large"
    assert process_batch([unfiltered], batch(texts), lambda: False, MIB).skipped is None
    runtime.close()


def test_v1_long_line_its_prefilter_rejects_is_skipped_not_reported(tmp_path: Path) -> None:
    path = tmp_path / "v1.wat"
    path.write_text(echo_plugin_wat(triggers=False).replace(
        "(module", '(module (@custom "vrclog.prefilter" "{\\"substrings\\":[\\"keep\\"]}")', 1))
    plugin = Runtime().load(path)
    long_drop, long_keep = "d" * 9000, "keep" + "k" * 9000
    out = process_batch([plugin], batch(["keep", long_drop, long_keep]), lambda: False, MIB)
    assert out.skipped == [1]
    assert [(o.index, [f.kind for f in o.errors]) for o in out.found] == [(0, []), (2, ["input_too_large"])]

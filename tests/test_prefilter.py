"""The prefilter section: reading and writing it, validating it, and its fast line selection."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import re2
import wasmtime
from hypothesis import example, given
from hypothesis import strategies as st

from vrclog_cli.errors import PluginLoadError
from vrclog_cli.host.abi import PREFILTER_SECTION
from vrclog_cli.host.plugin import Runtime
from vrclog_cli.host.prefilter import (
    MAX_SUBSTRINGS,
    PLAIN_SUBSTRINGS,
    Prefilter,
    PrefilterError,
    make_prefilter,
    parse_prefilter,
    read_prefilter,
)
from vrclog_cli.host.sections import MalformedBinary, custom_sections, with_custom_section

from .conftest import wat_plugin_v2

MODULE = bytes(wasmtime.wat2wasm('(module (@custom "other" "x") (memory (export "memory") 1))'))


@given(st.binary(max_size=300), st.binary(max_size=300))
def test_section_written_is_read_back_and_the_module_stays_valid(first: bytes, second: bytes) -> None:
    once = with_custom_section(MODULE, PREFILTER_SECTION, first)
    twice = with_custom_section(once, PREFILTER_SECTION, second)  # replaces, never adds a second
    assert custom_sections(once, PREFILTER_SECTION) == [first]
    assert custom_sections(twice, PREFILTER_SECTION) == [second]
    assert custom_sections(twice, "other") == [b"x"]
    wasmtime.Module.validate(wasmtime.Engine(), twice)
    assert with_custom_section(twice, PREFILTER_SECTION, None) == MODULE


def test_truncated_binary_is_malformed() -> None:
    with pytest.raises(MalformedBinary):
        custom_sections(MODULE[:-1], PREFILTER_SECTION)
    with pytest.raises(MalformedBinary):
        custom_sections(b"not wasm", PREFILTER_SECTION)


@pytest.mark.parametrize(("content", "problem"), [
    (b"[1", "not JSON"),
    (b"\xff", "not UTF-8"),
    (b'["x"]', "must be a JSON object"),
    (b"{}", 'needs "substrings" or "regex"'),
    (b'{"substrings": []}', "1 to 256 strings, not 0"),
    (b'{"substrings": "[VRPoker]"}', "must be a list of strings"),
    (b'{"substrings": [1]}', "must be a list of strings"),
    (b'{"substrings": [""]}', "empty string"),
    (json.dumps({"substrings": ["x"] * (MAX_SUBSTRINGS + 1)}).encode(), "not 257"),
    (json.dumps({"substrings": ["x" * 1025]}).encode(), "over 1024 bytes"),
    (b'{"substrings": ["\\ud800"]}', "not valid Unicode"),
    (b'{"regex": 5}', '"regex" must be a string'),
    (b'{"regex": "(unclosed"}', "not a valid RE2 pattern"),
    (b'{"regex": "(?<=lookbehind)x"}', "not a valid RE2 pattern"),
    (json.dumps({"regex": "a" * 513}).encode(), "over 512 bytes"),
])
def test_invalid_content_is_refused_with_the_reason(content: bytes, problem: str) -> None:
    with pytest.raises(PrefilterError, match=re.escape(problem)):
        parse_prefilter(content)


def test_two_sections_are_refused() -> None:
    with pytest.raises(PrefilterError, match=r"2 vrclog\.prefilter sections"):
        read_prefilter([b'{"regex": "a"}', b'{"regex": "b"}'])


def test_unknown_key_ignores_the_prefilter_with_a_warning() -> None:
    declared = parse_prefilter(b'{"substrings": ["x"], "exclude": ["y"]}')
    assert declared.prefilter is None
    assert declared.warning is not None and "'exclude'" in declared.warning


def test_valid_content() -> None:
    declared = parse_prefilter('{"substrings": ["[VRPoker]", "Ｃｈｅｒｒｙ"], "regex": "^\\\\d+$"}'.encode())
    assert declared.warning is None
    assert declared.prefilter == Prefilter(("[VRPoker]", "Ｃｈｅｒｒｙ"), "^\\d+$")
    assert parse_prefilter(declared.prefilter.encode()).prefilter == declared.prefilter


def reference_select(substrings: list[str], regex: str | None, texts: list[str]) -> list[int]:
    """What the prefilter means, spelled plainly: a substring anywhere, or a regex match."""
    pattern = re2.compile(regex) if regex is not None else None
    return [i for i, t in enumerate(texts)
            if any(s in t for s in substrings) or (pattern is not None and pattern.search(t))]


ALPHABET = st.sampled_from(["a", "b", "[", "]", " ", "é", "日", "🍒", "\t", "x", "\ufffd"])
TEXT = st.text(ALPHABET, max_size=30)


@given(st.lists(st.text(ALPHABET, min_size=1, max_size=4), min_size=1, max_size=12),
       st.sampled_from([None, "b+a", "^x", "é$", "[日🍒]{2}", ""]), st.lists(TEXT, max_size=25))
@example(["[VRPoker]"], None, ["2024 [VRPoker] Round 1", "[VRPoke", ""])
@example(["a"] * (PLAIN_SUBSTRINGS + 1), None, ["xa", "b"])  # the RE2 alternation path
def test_select_matches_the_reference(substrings: list[str], regex: str | None, texts: list[str]) -> None:
    prefilter = make_prefilter(substrings, regex)
    assert prefilter.select(texts) == reference_select(substrings, regex, texts)
    assert [prefilter.accepts(t) for t in texts] == [
        i in reference_select(substrings, regex, texts) for i in range(len(texts))]


@given(st.sampled_from(["b+a", "^x", "é$", "[日🍒]{2}", "(?i)A"]), st.lists(TEXT, max_size=25))
def test_regex_only_select_matches_the_reference(regex: str, texts: list[str]) -> None:
    assert make_prefilter(None, regex).select(texts) == reference_select([], regex, texts)


def test_plugin_load_refuses_an_invalid_section_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "p.wat"
    path.write_text(wat_plugin_v2(prefilter='{"substrings": []}'))
    with pytest.raises(PluginLoadError, match=r"custom section vrclog\.prefilter: .*1 to 256 strings"):
        Runtime().load(path)


def test_plugin_call_honours_the_prefilter_and_parse_ignores_it(tmp_path: Path) -> None:
    path = tmp_path / "p.wat"
    path.write_text(wat_plugin_v2(prefilter='{"substrings": ["keep"], "regex": "^\\\\d+$"}'))
    runtime = Runtime()
    plugin = runtime.load(path)
    assert [e.data for e in plugin.call("please keep me")] == [{"line": "please keep me"}]
    assert [e.data for e in plugin.call("123")] == [{"line": "123"}]
    assert plugin.call("drop me") == [] and plugin.call("12a") == []
    assert [e.data for e in plugin.parse("drop me")] == [{"line": "drop me"}]
    unfiltered = runtime.load(path, prefilter=False)
    assert unfiltered.prefilter is None and unfiltered.declared.prefilter is not None
    assert [e.data for e in unfiltered.call("drop me")] == [{"line": "drop me"}]
    runtime.close()

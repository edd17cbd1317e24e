"""Property-based tests: any line round-trips; any mix of good and bad lines keeps
exactly the good lines' events, in order, with any --jobs; the output decoder
never raises anything but the contract's runtime error."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vrclog_cli.errors import PluginRuntimeError
from vrclog_cli.events import Event, decode_output, one_line
from vrclog_cli.host.plugin import Plugin, Runtime, encode_input
from vrclog_cli.run.runner import ParseOptions, ParseRun
from vrclog_cli.sinks.writer import JsonLinesWriter

from ..conftest import echo_plugin_wat

# Text a reader can produce: no line breaks, no lone surrogates (invalid UTF-8
# becomes U+FFFD); control characters, quotes, backslashes and non-BMP allowed.
line_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\n"),
    max_size=3000,
).filter(lambda s: len(encode_input(s)) <= 8192)


@pytest.fixture(scope="module")
def echo_path() -> Path:
    path = Path(tempfile.mkdtemp()) / "echo.wat"
    path.write_text(echo_plugin_wat(triggers=False))
    return path


@pytest.fixture(scope="module")
def echo(echo_path: Path) -> Plugin:
    return Runtime().load(echo_path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=line_text)
def test_any_line_round_trips(echo: Plugin, line: str) -> None:
    assert echo.call(line) == [Event("echo", data={"line": line})]


@settings(max_examples=500, deadline=None)
@given(line=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=200)
       | st.text(alphabet='"\\\n\t\x00\x1f\x7f aé日🍒\u2028', max_size=30))
def test_input_document_is_what_json_dumps_gives(line: str) -> None:
    # encode_input splices lines that need no escape; the result must not differ.
    expected = ('{"line":' + json.dumps(line, ensure_ascii=False) + "}").encode("utf-8")
    assert encode_input(line) == expected


good_line = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\rT"),
                    max_size=40).filter(lambda s: s.strip() == s and not s.startswith(("T", "L")))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.one_of(good_line.map(lambda s: ("good", s)),
                                st.just(("bad", "Trap here"))), max_size=60),
       jobs=st.integers(min_value=1, max_value=8))
def test_good_lines_survive_bad_ones_in_order(tmp_path_factory: pytest.TempPathFactory,
                                               items: list[tuple[str, str]], jobs: int) -> None:
    path = tmp_path_factory.mktemp("prop") / "in.log"
    path.write_bytes("".join(text + "\n" for _, text in items).encode())
    sink = io.BytesIO()
    trap_plugin = Path(tempfile.mkdtemp()) / "echo_trap.wat"
    trap_plugin.write_text(echo_plugin_wat())
    run = ParseRun(ParseOptions(paths=[str(path)], plugins=[str(trap_plugin)], jobs=jobs),
                   JsonLinesWriter(sink), report=lambda _d: None)
    run.load()
    code = run.run()
    got = [json.loads(x)["data"]["line"] for x in sink.getvalue().decode().split("\n")[:-1]]
    assert got == [text for kind, text in items if kind == "good"]
    assert code == (4 if any(kind == "bad" for kind, _ in items) else 0)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (st.lists(children, max_size=5)
                      | st.dictionaries(st.text(max_size=10), children, max_size=5)),
    max_leaves=30)
event_like = st.fixed_dictionaries(
    {}, optional={"type": json_values | st.text(max_size=10), "timestamp": json_values | st.text(max_size=30),
                  "player_name": json_values, "data": json_values | st.dictionaries(st.text(max_size=5),
                                                                                     st.text(max_size=5))})
answers = st.fixed_dictionaries({}, optional={"ok": json_values | st.booleans(),
                                              "events": json_values | st.lists(event_like, max_size=4),
                                              "error": json_values, "code": json_values})


def decodes_or_runtime_error(raw: bytes) -> None:
    try:
        events = decode_output(raw)
    except PluginRuntimeError as exc:
        # The host's own message is one line; a plugin's own (plugin_error) is kept as the
        # plugin wrote it (33729e3) and made one line where it is shown (one_line).
        shown = one_line(str(exc)) if exc.kind == "plugin_error" else str(exc)
        assert str(exc) and "\n" not in shown
        return
    assert isinstance(events, list) and all(isinstance(e, Event) and e.type for e in events)


@settings(max_examples=2000, deadline=None)
@given(raw=st.binary(max_size=200))
def test_decoder_fuzz_bytes(raw: bytes) -> None:
    decodes_or_runtime_error(raw)


@settings(max_examples=1000, deadline=None)
@given(doc=answers)
def test_decoder_fuzz_structures(doc: dict[str, object]) -> None:
    decodes_or_runtime_error(json.dumps(doc).encode())


@settings(max_examples=500, deadline=None)
@given(doc=answers, cut=st.integers(min_value=0, max_value=200))
def test_decoder_fuzz_truncated(doc: dict[str, object], cut: int) -> None:
    decodes_or_runtime_error(json.dumps(doc).encode()[:cut])


def test_decoder_deep_nesting_and_huge_numbers() -> None:
    decodes_or_runtime_error(b"[" * 200_000 + b"]" * 200_000)
    decodes_or_runtime_error(b'{"ok":true,"events":[{"type":"t","data":{"n":1' + b"0" * 10_000 + b"}}]}")
    decodes_or_runtime_error(b'{"ok":true,"events":[{"type":"t","timestamp":"9999-99-99T99:99:99Z"}]}')
    decodes_or_runtime_error(b'{"ok":true,"events":[{"type":"t","timestamp":"2024-02-30T00:00:00"}]}')

"""docs/library.md: every example runs as it is, each in a fresh interpreter (as a reader's
script would), from the repository's top folder."""

from __future__ import annotations

import re

import pytest

from .conftest import ROOT, python

DOC = ROOT / "docs" / "library.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_page_has_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_runs(index: int) -> None:
    result = python(EXAMPLES[index])  # from the repository's root, as the page's paths are
    assert result.returncode == 0, result.stderr


def test_all_names_resolve() -> None:
    import vrclog_cli

    for name in vrclog_cli.__all__:
        assert getattr(vrclog_cli, name) is not None, name
    with pytest.raises(AttributeError):
        vrclog_cli.no_such_name  # noqa: B018


def test_import_loads_neither_wasmtime_nor_rich() -> None:
    code = "import sys, vrclog_cli; print('wasmtime' in sys.modules or 'rich' in sys.modules)"
    result = python(code)
    assert result.stdout.strip() == "False"

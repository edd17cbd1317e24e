"""docs/library.md: every example runs as it is, each in a fresh interpreter (as a reader's
script would), from the repository's top folder."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .conftest import ROOT

DOC = ROOT / "docs" / "library.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_page_has_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_runs(index: int) -> None:
    script = ROOT / ".pytest_cache" / f"library_example_{index}.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(EXAMPLES[index], encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_all_names_resolve() -> None:
    import vrclog_cli

    for name in vrclog_cli.__all__:
        assert getattr(vrclog_cli, name) is not None, name
    with pytest.raises(AttributeError):
        vrclog_cli.no_such_name  # noqa: B018


def test_import_loads_neither_wasmtime_nor_rich() -> None:
    code = "import sys, vrclog_cli; print('wasmtime' in sys.modules or 'rich' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False"

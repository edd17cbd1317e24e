"""The shape of the package: imports run one way (README, How it works)."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vrclog_cli"


def module_imports() -> dict[str, set[str]]:
    """Each module's imports of sibling modules, function-level ones included."""
    sources = {path.stem: path.read_text(encoding="utf-8") for path in PACKAGE.glob("*.py")}
    return {name: set(re.findall(r"^\s*from \.(\w+) import", text, re.M)) & set(sources)
            for name, text in sources.items()}


def test_no_import_cycle() -> None:
    graph = module_imports()
    cycles: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                cycles.append([*path[path.index(nxt):], nxt])
            else:
                walk(nxt, [*path, nxt])

    for name in sorted(graph):
        walk(name, [name])
    assert cycles == []


def test_the_batch_core_and_the_pool_know_nothing_of_runs_or_processes() -> None:
    graph = module_imports()
    assert "runner" not in graph["batch"] and "workers" not in graph["batch"]
    assert graph["pool"] == set()
    assert "runner" not in graph["workers"]


def test_only_the_face_imports_click_or_rich_at_the_top() -> None:
    """The library's modules load neither (start-up, and library users who want no CLI)."""
    for path in PACKAGE.glob("*.py"):
        if path.stem in ("cli", "console"):
            continue
        top = re.findall(r"^(?:import|from) (click|rich)\b", path.read_text(encoding="utf-8"), re.M)
        assert top == [], path.name


def test_the_cli_is_a_client_of_the_public_api() -> None:
    """cli.py takes library names only from the package (its __all__), and rendering
    from console: a library user can do all it does."""
    import vrclog_cli

    text = (PACKAGE / "cli.py").read_text(encoding="utf-8")
    assert set(re.findall(r"^\s*from \.(\w+) import", text, re.M)) == {"console"}
    groups = re.findall(r"^\s*from \. import (?:\(([^)]*)\)|([^\n#]*))", text, re.M)
    names = {n.strip() for group in groups for n in "".join(group).replace("\n", ",").split(",")
             if n.strip()}
    assert {"ParseRun", "check_plugin", "wasmtime_version"} <= names  # the pattern reads all forms
    assert names and names <= set(vrclog_cli.__all__), names - set(vrclog_cli.__all__)


def test_public_names_are_never_shadowed_by_submodules() -> None:
    """Importing a submodule binds its name on the package: no public name may be one."""
    import importlib

    import vrclog_cli

    for path in PACKAGE.glob("*.py"):
        importlib.import_module(f"vrclog_cli.{path.stem}")
    for name in vrclog_cli.__all__:
        assert not isinstance(getattr(vrclog_cli, name), type(vrclog_cli)), name


def test_the_readme_module_map_names_every_module() -> None:
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| module | concern |"):]
    table = table[:table.index("\n\n")]
    assert set(re.findall(r"`(\w+\.py)`", table)) == {p.name for p in PACKAGE.glob("*.py")}

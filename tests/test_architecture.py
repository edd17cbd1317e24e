"""The shape of the package: imports run one way (README, How it works)."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vrclog_cli"
#: The wings (../shared/architecture.md); a module outside them is the face or shared vocabulary.
WINGS = ("host", "run", "sinks", "vrchat", "authoring")


def module_name(path: Path) -> str:
    """A module's dotted name below the package: ``host.plugin``, ``host.capi``, ``cli``."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports() -> dict[str, set[str]]:
    """Each module's imports of the package's modules (function-level ones included),
    relative imports resolved: ``from ..errors import`` in ``host.plugin`` is ``errors``."""
    sources = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in sources.items():
        package = name.split(".") if path.stem == "__init__" else name.split(".")[:-1]
        found: set[str] = set()
        for dots, target, names in re.findall(r"^\s*from (\.+)([\w.]*) import \(?([^)\n]*)",
                                              path.read_text(encoding="utf-8"), re.M):
            base = package[:len(package) - (len(dots) - 1)]
            whole = ".".join(base + target.split(".")) if target else ".".join(base)
            named = (n.split(" as ")[0].strip() for n in names.split(","))
            submodules = {f"{whole}.{n}".lstrip(".") for n in named} & set(sources)
            # `from . import library`: an import of the submodule, not of the package
            found |= {c for c in (submodules or {whole}) if c in sources and c != name}
        graph[name] = {m for m in found if sources[m].stem != "__init__" or m == "host.capi"}
    return graph


def wing(module: str) -> str:
    head = module.split(".")[0]
    return head if head in WINGS else ""


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
    assert "run.runner" not in graph["run.batch"] and "run.workers" not in graph["run.batch"]
    assert graph["run.pool"] == set()
    assert "run.runner" not in graph["run.workers"]


def test_the_wings_import_one_way() -> None:
    """host (the wasm side) knows nothing of runs or sinks; vrchat reads events and never
    imports the run; sinks and the authoring tools never import the face."""
    graph = module_imports()
    for module, imports in graph.items():
        wings = {wing(m) for m in imports}
        if wing(module) == "host":
            assert not wings & {"run", "sinks", "vrchat", "authoring"}, (module, imports)
        if wing(module) == "vrchat":
            assert "run" not in wings, (module, imports)
        if wing(module):
            assert not imports & {"cli", "console"}, (module, imports)


def test_every_module_lives_in_a_wing_or_is_the_face_or_shared() -> None:
    top = {module_name(p) for p in PACKAGE.glob("*.py")}
    assert top == {"", "__main__", "cli", "console", "errors", "events", "limits", "durations",
                   "records", "stops", "dask"}


def test_only_the_face_imports_click_or_rich_at_the_top() -> None:
    """The library's modules load neither (start-up, and library users who want no CLI)."""
    for path in PACKAGE.rglob("*.py"):
        if module_name(path) in ("cli", "console"):
            continue
        top = re.findall(r"^(?:import|from) (click|rich)\b", path.read_text(encoding="utf-8"), re.M)
        assert top == [], path.name


def test_the_cli_is_a_client_of_the_public_api() -> None:
    """cli.py takes library names only from the package (its __all__), rendering from
    console, and its own option records from records (no run logic): a library user can
    do all it does."""
    import vrclog_cli

    text = (PACKAGE / "cli.py").read_text(encoding="utf-8")
    assert set(re.findall(r"^\s*from \.(\w+) import", text, re.M)) <= {"console", "records"}
    groups = re.findall(r"^\s*from \. import (?:\(([^)]*)\)|([^\n#]*))", text, re.M)
    names = {n.strip() for group in groups for n in "".join(group).replace("\n", ",").split(",")
             if n.strip()}
    assert {"ParseRun", "check_plugin", "wasmtime_version"} <= names  # the pattern reads all forms
    assert names and names <= set(vrclog_cli.__all__), names - set(vrclog_cli.__all__)


def test_public_names_are_never_shadowed_by_submodules() -> None:
    """Importing a submodule binds its name on the package: no public name may be one."""
    import importlib

    import vrclog_cli

    for path in PACKAGE.rglob("*.py"):
        importlib.import_module(f"vrclog_cli.{module_name(path)}".rstrip("."))
    for name in vrclog_cli.__all__:
        assert not isinstance(getattr(vrclog_cli, name), type(vrclog_cli)), name


def test_the_readme_module_map_names_every_module() -> None:
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| module | concern |"):]
    table = table[:table.index("\n\n")]
    named = set(re.findall(r"`([\w/]+\.py)`", table))
    assert named == {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                     if module_name(p) not in WINGS}  # a wing's __init__ is its docstring

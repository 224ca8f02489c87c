"""The house as a newcomer reads it: the domain imports only the standard library,
dependencies point inward, module imports form no cycle, and every folder is small enough
to take in at a glance."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import netatmo_exporter

PACKAGE = Path(netatmo_exporter.__file__).parent
MAX_MODULES_A_FOLDER = 12
"""About a dozen modules a folder is what a reader takes in at a glance."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(path: Path, *, top_level_only: bool) -> Iterator[str]:
    """Absolute names a module imports; `top_level_only`: those run at import time (not in
    a function, not under `if TYPE_CHECKING:`)."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else \
        module_name(path).rpartition(".")[0]
    nodes: list[ast.AST] = list(tree.body) if top_level_only else list(ast.walk(tree))
    while nodes:
        node = nodes.pop()
        if top_level_only and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(
                node.test):
            continue
        if top_level_only and isinstance(node, (ast.If, ast.Try)):
            nodes.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def own(name: str, known: dict[str, Path]) -> str | None:
    """The package module `name` is or lies in, if any."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def test_the_domain_imports_only_the_standard_library_and_itself() -> None:
    known = modules()
    outside = {
        (name, imported)
        for name, path in known.items() if name.startswith("netatmo_exporter.domain")
        for imported in imports(path, top_level_only=False)
        if not imported.startswith("netatmo_exporter.domain")
        and imported.split(".")[0] not in sys.stdlib_module_names
        and imported != "__future__"
    }
    assert outside == set()


def test_dependencies_point_inward() -> None:
    known = modules()
    layers = {"domain": 0, "adapters": 1, "entrypoints": 2}
    outward = set()
    for name, path in known.items():
        layer = layers.get(name.split(".")[1]) if name.count(".") else None
        if layer is None:
            continue
        for imported in imports(path, top_level_only=False):
            target = own(imported, known)
            if target and target.count(".") and layers.get(target.split(".")[1], -1) > layer:
                outward.add((name, target))
    assert outward == set()


def test_module_imports_form_no_cycle() -> None:
    known = modules()
    graph = {name: {target for imported in imports(path, top_level_only=True)
                    if (target := own(imported, known)) and target != name}
             for name, path in known.items()}
    cycles = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if target.startswith(name + "."):
                continue  # a package importing its own modules is no cycle
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_every_folder_is_small_and_adapters_are_grouped_by_what_they_face() -> None:
    sizes = {str(folder.relative_to(PACKAGE.parent)): sum(
                 1 for path in folder.glob("*.py") if path.name != "__init__.py")
             for folder in [PACKAGE, *PACKAGE.rglob("*")]
             if folder.is_dir() and (folder / "__init__.py").exists()}
    assert {folder: n for folder, n in sizes.items() if n > MAX_MODULES_A_FOLDER} == {}
    assert sizes["netatmo_exporter/adapters"] <= 3  # a few loose modules at most
    subpackages = {path.parent.name for path in (PACKAGE / "adapters").glob("*/__init__.py")}
    assert {"netatmo", "metrics", "web", "pages", "history"} <= subpackages

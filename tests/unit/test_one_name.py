"""One name, one meaning: no two classes or module-level type aliases of the package share
a name, so that a name found in one module never means another thing in the next."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import netatmo_exporter

PACKAGE = Path(netatmo_exporter.__file__).parent


def is_type_alias(node: ast.stmt) -> str | None:
    """The name a module-level statement gives a type: `X = Callable[...]`, `X = Any`,
    `X: TypeAlias = ...` (bookworm's Python 3.11 has no `type X`). A TypeVar is a
    placeholder, not a type."""
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and \
            ast.unparse(node.annotation).endswith("TypeAlias"):
        return node.target.id
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
            isinstance(node.targets[0], ast.Name):
        value = node.value
        if isinstance(value, ast.Subscript) and \
                ast.unparse(value.value) in TYPE_CONSTRUCTORS:
            return node.targets[0].id
        if ast.unparse(value) == "Any":
            return node.targets[0].id
    return None


TYPE_CONSTRUCTORS = frozenset({
    "Callable", "dict", "list", "tuple", "set", "frozenset", "type", "Mapping", "Sequence",
    "Iterable", "Iterator", "Union", "Optional", "Literal", "Annotated",
})


def names_in_package(root: Path) -> dict[str, list[str]]:
    """Each class and type alias name, with the modules (and lines) that define it."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in tree.body:
            name = node.name if isinstance(node, ast.ClassDef) else is_type_alias(node)
            if name is not None:
                found[name].append(f"{path.relative_to(root.parent)}:{node.lineno}")
    return found


def test_no_two_classes_or_type_aliases_share_a_name() -> None:
    found = names_in_package(PACKAGE)

    shared = {name: places for name, places in found.items() if len(places) > 1}

    assert len(found) > 100  # the walk reached the package's modules
    assert shared == {}


def test_the_check_sees_a_shared_class_and_a_shared_alias(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("from typing import Any\n"
                                  "class Station: ...\nJSON = Any\nWait = Callable[[], None]\n")
    (package / "sub" / "b.py").write_text("class Station: ...\nJSON = Any\n"
                                          "T = TypeVar('T')\nLIMIT = 5\n")
    (package / "sub" / "c.py").write_text("T = TypeVar('T')\nLIMIT = 6\n"
                                          "Wait: TypeAlias = Callable[[float], bool]\n")

    shared = {name for name, places in names_in_package(package).items() if len(places) > 1}

    assert shared == {"Station", "JSON", "Wait"}

"""No module of the package reaches into another's underscore-private names.

A name that another module needs is public in its home module (an internal
module may hold such names unprefixed), so that what a module may change
freely is exactly what starts with an underscore.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "quantize"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(path: Path) -> list[str]:
    """``from quantize.x import _y`` and ``x._y`` (x a quantize module) in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("quantize"):
            for alias in node.names:
                if node.module == "quantize":  # from quantize import cluster
                    modules.add(alias.asname or alias.name)
                elif _private(alias.name):
                    found.append(f"{path.name}:{node.lineno}: {node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("quantize.") and alias.asname:
                    modules.add(alias.asname)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and _private(node.attr)
        ):
            found.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    uses = [use for path in sorted(PACKAGE.glob("*.py")) for use in private_uses(path)]
    assert uses == []


def test_the_check_sees_both_spellings(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from quantize import palette\n"
        "from quantize.palette import _hidden, read_palette\n"
        "from quantize._version import __version__\n"
        "palette._other(read_palette)\n"
    )
    assert private_uses(sample) == [
        "sample.py:2: quantize.palette._hidden",
        "sample.py:4: palette._other",
    ]

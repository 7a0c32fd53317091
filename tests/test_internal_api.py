"""The clustering core's internal API is declared: no private names across modules."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import numpy as np
import pytest

from quantize import colors as cs
from quantize.histogram import nearest_rgb8
from quantize.kmeans import nearest_center
from quantize.reduce import nearest_palette

PACKAGE = Path(__file__).resolve().parent.parent / "quantize"
# The numpy core and the modules built directly on it.
CORE = (
    "_kernels",
    "_lloyd",
    "_validation",
    "_estimator_base",
    "_distinct_rows",
    "kmeans",
    "cluster",
    "restarts",
    "fixed",
    "reduce",
    "histogram",
    "metrics",
    "dither",
)
SIBLINGS = {path.stem for path in PACKAGE.glob("*.py")}


def private_uses(module: str) -> list[str]:
    """Underscore names a core module takes from another module of the package."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    aliases = {module: module}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("quantize"):
            for alias in node.names:
                if alias.name in SIBLINGS:  # from quantize import cluster [as c]
                    aliases[alias.asname or alias.name] = alias.name
                elif alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"from {node.module} import {alias.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and aliases[node.value.id] != module
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("module", CORE)
def test_core_modules_use_no_private_name_of_another(module: str) -> None:
    assert private_uses(module) == []


@pytest.mark.parametrize(
    "module", ["_kernels", "_lloyd", "_validation", "_estimator_base", "_distinct_rows"]
)
def test_internal_modules_document_every_declared_name(module: str) -> None:
    mod = importlib.import_module(f"quantize.{module}")
    assert mod.__doc__
    for name in mod.__all__:
        value = getattr(mod, name)
        if (callable(value) and not name[0].isupper()) or isinstance(value, type):
            assert value.__doc__, f"quantize.{module}.{name} has no docstring"


@pytest.mark.parametrize("space", ["rgb", "lab", "oklab"])
def test_nearest_palette_is_the_search_each_space_had(space: str) -> None:
    rng = np.random.default_rng(0)
    colors = rng.integers(0, 256, (5000, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (40, 3), dtype=np.uint8)
    palette[1] = palette[0] + 2  # near neighbors, for ties
    if space == "rgb":
        expected = nearest_rgb8(colors, palette)
    else:
        expected = nearest_center(cs.rgb8_to_space(colors, space), cs.rgb8_to_space(palette, space))
    np.testing.assert_array_equal(nearest_palette(colors, palette, space), expected)

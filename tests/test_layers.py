"""The layers import only downward: core <- fitting/pipeline <- outputs <- batch.

Pillow image assembly is `quantize.render` (beside `quantize.imageio`), never
the palette value type or the table-level fit.  Each check runs in a fresh
interpreter, since this test process has imported everything already.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def loaded_by(module: str) -> set[str]:
    """Names in ``sys.modules`` after a fresh interpreter imported ``module``."""
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, check=True, capture_output=True, text=True
    )
    return set(done.stdout.split())


@pytest.mark.parametrize(
    ("module", "not_loaded"),
    [
        # The value type and the table-level fit are arrays only.
        ("quantize.palette", {"PIL", "quantize.imageio", "quantize.render"}),
        ("quantize.palette_formats", {"PIL", "quantize.imageio", "quantize.render"}),
        ("quantize.fitting", {"PIL", "quantize.pipeline", "quantize.render"}),
        # Decoding needs none of the writing side; encoding sits below assembly.
        ("quantize.imageio", {"quantize.encode", "quantize.render", "quantize.pipeline"}),
        ("quantize.encode", {"quantize.render", "quantize.pipeline", "quantize.outputs"}),
        # Image assembly sits beside imageio, below the algorithm that uses it.
        ("quantize.render", {"quantize.pipeline", "quantize.outputs", "quantize.batch"}),
        # The one-image algorithm neither names nor writes files.
        ("quantize.pipeline", {"quantize.outputs", "quantize.batch", "quantize.cli"}),
        ("quantize.outputs", {"quantize.batch", "quantize.cli"}),
    ],
)
def test_a_layer_does_not_import_the_layers_above_it(module: str, not_loaded: set[str]) -> None:
    modules = loaded_by(module)
    assert module in modules
    assert not not_loaded & modules

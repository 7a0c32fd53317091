"""Shared fixtures: small, deterministic images built in the tests themselves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from quantize.cli import quantize_command

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"


def run_cli(*args: str | Path) -> tuple[int, str]:
    """Invoke the command in-process; its exit code and everything it printed."""
    result = CliRunner().invoke(quantize_command, [str(a) for a in args])
    return result.exit_code, result.output


#: Thread-pool variables of the BLAS libraries numpy may use.
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def outputs_by_blas_threads(script: str, counts: tuple[str, ...]) -> set[str]:
    """The distinct stdouts of ``python -c script`` run once per BLAS thread count.

    BLAS reads its thread count at load time, hence one process per setting.
    """
    root = str(Path(__file__).resolve().parent.parent)
    outputs = set()
    for threads in counts:
        env = dict(os.environ, PYTHONPATH=root)
        env.update(dict.fromkeys(BLAS_THREAD_VARS, threads))
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(out.stdout.strip())
    return outputs


def gradient_rgb(width: int = 96, height: int = 64, seed: int = 0) -> Image.Image:
    """A smooth color field with a little noise: many distinct colors, clear structure."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rng = np.random.default_rng(seed)
    r = 255 * x / (width - 1)
    g = 255 * y / (height - 1)
    b = 127 + 100 * np.sin(x / 9.0) * np.cos(y / 7.0)
    rgb = np.stack([r, g, b], -1) + rng.normal(0, 4, (height, width, 3))
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A small RGB PNG with a few thousand distinct colors."""
    path = tmp_path / "photo.png"
    gradient_rgb().save(path)
    return path


@pytest.fixture
def china(tmp_path: Path) -> Path:
    """A copy of the bundled sample photo in a scratch folder."""
    path = tmp_path / "china.jpg"
    path.write_bytes((SAMPLES / "china.jpg").read_bytes())
    return path

"""Shared fixtures: small, deterministic images built in the tests themselves."""

from __future__ import annotations

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

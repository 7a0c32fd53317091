"""What the test modules share by name: the repository's paths, image builders, runners.

Fixtures stay in ``conftest.py`` (pytest finds them there); everything a test
imports lives here, defined once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from numpy.typing import NDArray
from PIL import Image

from quantize.cli import quantize_command

#: The repository (the working tree the tests run from).
ROOT = Path(__file__).resolve().parent.parent
#: The bundled sample images (china.jpg, flower.jpg, sprite.png).
SAMPLES = ROOT / "sample_images"


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
    outputs = set()
    for threads in counts:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
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


def sample_rgb(name: str = "china.jpg") -> NDArray[np.uint8]:
    """The pixels of a bundled sample image as RGB, shape (height, width, 3)."""
    with Image.open(SAMPLES / name) as image:
        return np.asarray(image.convert("RGB"))


def photo_crops(root: Path, count: int, size: tuple[int, int]) -> Path:
    """``root/in`` holding ``count`` PNG crops of china.jpg of ``size``, each shifted by a pixel."""
    src = root / "in"
    src.mkdir()
    width, height = size
    with Image.open(SAMPLES / "china.jpg") as photo:
        for i in range(count):
            crop = photo.crop((i, i, width + i, height + i))
            crop.save(src / f"p{i:02d}.png", compress_level=1)
    return src

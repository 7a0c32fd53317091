"""Tests for quantize.plots: pixel sampling and the RGB scatter plot."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from quantize.plots import PLOT_SIZE_PX, render_pixel_plot, sample_pixels

# Well separated centers, so their markers do not overlap in either panel.
CENTERS = np.array(
    [[230, 30, 30], [30, 200, 40], [20, 40, 220], [240, 240, 240], [120, 60, 150]], dtype=np.uint8
)


def nearest(pixels: NDArray[np.uint8], centers: NDArray[np.uint8]) -> NDArray[np.uint8]:
    d = ((pixels[:, None, :].astype(int) - centers[None, :, :].astype(int)) ** 2).sum(axis=2)
    return centers[d.argmin(axis=1)]


@pytest.fixture(scope="module")
def pixels() -> NDArray[np.uint8]:
    return np.random.default_rng(0).integers(0, 256, size=(10_000, 3), dtype=np.uint8)


def render_png(original: NDArray[np.uint8], mapped: NDArray[np.uint8], centers: NDArray) -> bytes:
    buf = io.BytesIO()
    render_pixel_plot(original, mapped, centers, title="t.png — 5 colors → k=5", path_or_buffer=buf)
    return buf.getvalue()


def pixel_counts(png: bytes) -> dict[tuple[int, int, int], int]:
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    colors, counts = np.unique(rgb, axis=0, return_counts=True)
    return {tuple(c): int(n) for c, n in zip(colors.tolist(), counts.tolist(), strict=True)}


# --------------------------------------------------------------------------- #
# sample_pixels
# --------------------------------------------------------------------------- #


def test_sample_pixels_takes_all_when_few() -> None:
    for n_total in (0, 1, 10_000):
        idx = sample_pixels(n_total, 10_000, seed=3)
        assert idx.dtype == np.intp
        assert idx.tolist() == list(range(n_total))


def test_sample_pixels_distinct_in_range_and_reproducible() -> None:
    idx = sample_pixels(1_000_000, 10_000, seed=42)
    assert idx.dtype == np.intp and idx.shape == (10_000,)
    assert len(np.unique(idx)) == 10_000
    assert idx.min() >= 0 and idx.max() < 1_000_000
    assert np.array_equal(idx, sample_pixels(1_000_000, 10_000, seed=42))
    assert not np.array_equal(idx, sample_pixels(1_000_000, 10_000, seed=43))


def test_sample_pixels_rejects_negative_sizes() -> None:
    with pytest.raises(ValueError):
        sample_pixels(-1, 5, seed=0)
    with pytest.raises(ValueError):
        sample_pixels(5, -1, seed=0)


# --------------------------------------------------------------------------- #
# render_pixel_plot
# --------------------------------------------------------------------------- #


def test_plot_file_has_fixed_size(tmp_path: Path, pixels: NDArray[np.uint8]) -> None:
    path = tmp_path / "plot.png"
    render_pixel_plot(
        pixels, nearest(pixels, CENTERS), CENTERS, title="china.jpg — k=5", path_or_buffer=path
    )
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == PLOT_SIZE_PX
    assert PLOT_SIZE_PX == (1000, 900)


def test_plot_center_markers_show_exact_center_colors(pixels: NDArray[np.uint8]) -> None:
    # Map every pixel to one gray that is not a center, so any exact center
    # color in the image can only come from the center markers themselves.
    mapped = np.full_like(pixels, 128)
    originals = np.full_like(pixels, 60)  # top row: also no center colors
    counts = pixel_counts(render_png(originals, mapped, CENTERS))
    for center in CENTERS.tolist():
        # Two panels, each marker ~17 px across with a solid interior.
        assert counts.get(tuple(center), 0) >= 100, center


def test_plot_bottom_row_uses_mapped_colors(pixels: NDArray[np.uint8]) -> None:
    mapped = nearest(pixels, CENTERS)
    without_centers = np.zeros((1, 3), dtype=np.uint8)  # a single black center marker
    counts = pixel_counts(render_png(pixels, mapped, without_centers))
    # Thousands of small points: many pixels carry an exact palette color.
    for center in CENTERS.tolist():
        assert counts.get(tuple(center), 0) >= 50, center


def test_plot_is_deterministic(pixels: NDArray[np.uint8]) -> None:
    mapped = nearest(pixels, CENTERS)
    assert render_png(pixels, mapped, CENTERS) == render_png(pixels, mapped, CENTERS)


def test_plot_accepts_empty_sample() -> None:
    empty = np.zeros((0, 3), dtype=np.uint8)
    png = render_png(empty, empty, CENTERS)
    assert Image.open(io.BytesIO(png)).size == PLOT_SIZE_PX


@pytest.mark.parametrize(
    ("original", "mapped", "centers", "message"),
    [
        (np.zeros((5, 3)), np.zeros((4, 3)), np.zeros((2, 3)), "5 original pixels but 4"),
        (np.zeros((5, 4)), np.zeros((5, 4)), np.zeros((2, 3)), "original_rgb8"),
        (np.zeros((5, 3)), np.zeros(5), np.zeros((2, 3)), "mapped_rgb8"),
        (np.zeros((5, 3)), np.zeros((5, 3)), np.zeros(3), "centers_rgb8"),
    ],
)
def test_plot_rejects_bad_shapes(
    original: NDArray, mapped: NDArray, centers: NDArray, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        render_pixel_plot(original, mapped, centers, title="x", path_or_buffer=io.BytesIO())


def test_import_does_not_load_matplotlib() -> None:
    # A fresh interpreter: this test process may have imported matplotlib already.
    code = "import sys, quantize.plots; assert 'matplotlib' not in sys.modules"
    repo_root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root)


def test_plot_does_not_touch_pyplot_state(pixels: NDArray[np.uint8]) -> None:
    render_png(pixels, nearest(pixels, CENTERS), CENTERS)
    assert "matplotlib.pyplot" not in sys.modules or _no_open_pyplot_figures()


def _no_open_pyplot_figures() -> bool:
    import matplotlib.pyplot as plt

    return not plt.get_fignums()

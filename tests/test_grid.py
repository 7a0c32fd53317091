"""Centers moved onto the 8-bit palette grid (quantize.grid)."""

from __future__ import annotations

import numpy as np
import pytest

from quantize import colors as cs
from quantize import grid
from quantize.cluster import cluster_centers
from quantize.histogram import color_table, pack_rgb
from tests.helpers import sample_rgb


def sse(points: np.ndarray, weights: np.ndarray, centers: np.ndarray) -> float:
    d = ((points[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2).min(axis=1)
    return float(weights @ d)


@pytest.mark.parametrize("space", ["rgb", "oklab"])
def test_snapped_centers_are_grid_colors_no_worse_than_rounding(space: str) -> None:
    pixels = sample_rgb("flower.jpg")[::4, ::4].reshape(-1, 3)
    table = color_table(pack_rgb(pixels))
    x = cs.rgb8_to_space(table.colors, space)
    w = table.counts.astype(np.float64)
    centers, _ = cluster_centers(x, w, table.keys, 32, random_state=0)
    snapped = grid.snap_centers(x, w, centers, space)
    rgb8 = cs.space_to_rgb8(snapped, space)
    # On the grid: converting back gives the same points.
    np.testing.assert_allclose(cs.rgb8_to_space(rgb8, space), snapped, atol=1e-12)
    assert len(np.unique(pack_rgb(rgb8))) == snapped.shape[0] <= 32
    rounded = cs.rgb8_to_space(np.unique(cs.space_to_rgb8(centers, space), axis=0), space)
    assert sse(x, w, snapped) <= sse(x, w, rounded)


def test_grid_steps_lower_the_error_of_rounded_centers() -> None:
    # Two heavy colors one level apart and light ones around them: the mean
    # of the pair rounds to a grid point that the steps then move off.
    rng = np.random.default_rng(0)
    colors = rng.integers(0, 256, size=(400, 3)).astype(np.float64)
    weights = rng.integers(1, 50, size=400).astype(np.float64)
    x = colors / 255.0
    centers = x[rng.choice(400, 24, replace=False)] + 0.3 / 255
    snapped = grid.snap_centers(x, weights, centers, "rgb")
    rounded = np.unique(np.rint(centers * 255), axis=0) / 255
    assert sse(x, weights, snapped) < sse(x, weights, rounded)


def test_large_work_is_only_rounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grid, "MAX_WORK", 10)
    x = np.random.default_rng(1).random((100, 3))
    w = np.ones(100)
    centers = x[:5] + 0.3 / 255
    snapped = grid.snap_centers(x, w, centers, "rgb")
    expected = np.unique(np.rint(centers * 255), axis=0) / 255
    np.testing.assert_array_equal(np.unique(snapped, axis=0), expected)


def test_moves_on_the_grid_lower_the_error_of_a_dark_noisy_blob(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A dark sky: few heavy colors near black with noise, clipped at 0.
    rng = np.random.default_rng(2)
    pixels = np.clip(rng.normal((6, 9, 24), 2.0, size=(20000, 3)), 0, 255).astype(np.uint8)
    table = color_table(pack_rgb(pixels))
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    centers, _ = cluster_centers(x, w, table.keys, 6, random_state=0)
    with_moves = grid.snap_centers(x, w, centers, "rgb")
    monkeypatch.setattr(grid, "MAX_SWEEPS", 0)
    steps_only = grid.snap_centers(x, w, centers, "rgb")
    assert sse(x, w, with_moves) < sse(x, w, steps_only)
    rgb8 = np.rint(with_moves * 255)
    np.testing.assert_allclose(with_moves * 255, rgb8, atol=1e-9)
    assert rgb8.min() >= 0 and rgb8.max() <= 255

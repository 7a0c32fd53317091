"""Memory bounded by pixel count, not distinct colors (issue 11, worst-case content).

Huge color tables (noise) take the bounded path of :mod:`quantize.reduce`.
These tests lower its threshold so that a small noise image takes it, and
check that the path is taken, that it keeps the exact semantics it promises
(exact assignment and metrics, clustering on the 7-bit reduced table), that
the banded dithering gives the same pixels, and that the traced peak memory
of a run stays within a per-pixel bound that the unbounded path exceeds.
Whole-command RSS at 12 and 50 MP is measured by benchmarks/bench_memory.py.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest
from PIL import Image

from quantize import _bins, cluster, dither, fitting, histogram, pipeline, reduce
from quantize import colors as cs
from quantize.histogram import TableMerger, color_table, count_pixels, pack_rgb, unpack_keys
from quantize.imageio import load_image
from quantize.metrics import MetricsAccumulator, palette_metrics
from quantize.palette import Palette


def _noise(shape: tuple[int, int], seed: int = 0) -> np.ndarray[Any, np.dtype[np.uint8]]:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


@pytest.fixture
def low_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables over 4096 colors count as huge."""
    monkeypatch.setattr(reduce, "REDUCE_MIN_COLORS", 4096)


def _brute_reduce(
    colors: np.ndarray[Any, Any], counts: np.ndarray[Any, Any], space: str
) -> dict[int, tuple[np.ndarray[Any, Any], float]]:
    cells: dict[int, list[int]] = {}
    for i, (r, g, b) in enumerate(colors.astype(int)):
        cells.setdefault((r >> 1) << 14 | (g >> 1) << 7 | (b >> 1), []).append(i)
    points = cs.rgb8_to_space(colors, space)
    out = {}
    for cell, rows in cells.items():
        w = counts[rows].astype(float)
        out[cell] = (w @ points[rows] / w.sum(), float(w.sum()))
    return out


@pytest.mark.parametrize("space", ["rgb", "lab"])
def test_reduce_table_is_the_weighted_mean_of_each_7_bit_cube(space: str) -> None:
    table = color_table(pack_rgb(_noise((60, 50))).ravel())
    red = reduce.reduce_table(table.keys, table.counts, space)
    expected = _brute_reduce(table.colors, table.counts, space)
    assert red.points.shape == (len(expected), 3)
    corners = unpack_keys(red.keys).astype(int)
    assert (corners % 2 == 0).all()
    assert (np.diff(red.keys.astype(np.int64)) > 0).all()
    for corner, point, weight in zip(corners, red.points, red.weights, strict=True):
        mean, total = expected[(corner[0] >> 1) << 14 | (corner[1] >> 1) << 7 | corner[2] >> 1]
        np.testing.assert_allclose(point, mean, rtol=1e-12, atol=1e-12)
        assert weight == total
    assert red.weights.sum() == table.n_pixels


def test_small_tables_keep_the_exact_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(pipeline, "reduce_table", lambda *a, **k: calls.append(1))
    rgb = _noise((40, 40))
    result = pipeline.quantize_image(Image.fromarray(rgb), 8, seed=1)
    assert calls == []
    assert result.palette.size == 8


@pytest.mark.parametrize("space", ["rgb", "oklab"])
def test_huge_table_clusters_the_reduced_table_and_assigns_exactly(
    low_threshold: None, monkeypatch: pytest.MonkeyPatch, space: str
) -> None:
    rgb = _noise((120, 100))
    table = count_pixels([(rgb, None)])
    assert reduce.is_huge(table.n_colors)
    seen: list[int] = []
    real = fitting.cluster_centers

    def spy(x: Any, w: Any, keys: Any, k: int, **kw: Any) -> Any:
        seen.append(x.shape[0])
        return real(x, w, keys, k, **kw)

    monkeypatch.setattr(fitting, "cluster_centers", spy)
    fit = pipeline.fit_palette(table, 12, space=space, seed=3)
    red = reduce.reduce_table(table.keys, table.counts, space)
    assert seen == [red.points.shape[0]]
    assert red.points.shape[0] < table.n_colors
    # The same centers as clustering the reduced table directly.
    centers, _ = real(red.points, red.weights, red.keys, 12, random_state=3)
    assert {tuple(c) for c in cs.space_to_rgb8(centers, space)} == {
        tuple(c) for c in fit.palette.colors
    }
    # Every color goes to its exact nearest palette color, labels in uint8.
    assert fit.labels.dtype == np.uint8
    given = Palette(fit.palette.colors, fit.palette.counts)
    exact = pipeline.apply_palette(table, given, space)
    monkeypatch.setattr(reduce, "REDUCE_MIN_COLORS", 1 << 21)
    reference = pipeline.apply_palette(table, given, space)
    np.testing.assert_array_equal(exact.labels, reference.labels)
    # The fit's own labels (its palette in another order, so an exact tie
    # may go the other way) are at the nearest distance too.
    points = cs.rgb8_to_space(table.colors, space)

    def gap(pal: Palette, labels: Any) -> Any:
        return ((points - cs.rgb8_to_space(pal.colors, space)[labels]) ** 2).sum(axis=1)

    np.testing.assert_allclose(
        gap(fit.palette, fit.labels),
        gap(reference.palette, reference.labels),
        rtol=1e-9,
        atol=1e-12,
    )
    assert fit.palette.counts.sum() == table.counts.sum()


def test_huge_table_metrics_equal_palette_metrics(low_threshold: None) -> None:
    table = count_pixels([(_noise((150, 120), seed=4), None)])
    palette = _noise((1, 24), seed=5)[0]
    labels = np.random.default_rng(6).integers(0, 24, table.n_colors).astype(np.uint8)
    got = reduce.table_metrics(table, palette, labels)
    want = palette_metrics(table.colors, table.counts, palette, labels)
    assert got.delta_e_p95 == want.delta_e_p95  # the same float32 values, exactly
    assert got.colors_used == want.colors_used
    assert got.mse == pytest.approx(want.mse, rel=1e-12)
    assert got.delta_e_mean == pytest.approx(want.delta_e_mean, rel=1e-9)


def test_accumulator_percentile_over_parts_with_heavy_weights() -> None:
    rng = np.random.default_rng(7)
    colors = rng.integers(0, 256, (9000, 3), dtype=np.uint8)
    counts = rng.integers(1, 5000, 9000)
    palette = rng.integers(0, 256, (5, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, 9000)
    acc = MetricsAccumulator(palette)
    for start in range(0, 9000, 700):
        rows = slice(start, start + 700)
        acc.add(colors[rows], labels[rows], counts[rows])
    want = palette_metrics(colors, counts, palette, labels)
    got = acc.result()
    assert got.delta_e_p95 == want.delta_e_p95
    assert got.mse == pytest.approx(want.mse, rel=1e-12)
    np.testing.assert_array_equal(acc.counts, np.bincount(labels, weights=counts, minlength=5))


@pytest.mark.parametrize("method", ["floyd-steinberg", "ordered"])
def test_bounded_dithering_matches_the_pixel_path(
    monkeypatch: pytest.MonkeyPatch, method: dither.Dither
) -> None:
    rgb = _noise((90, 70), seed=8)
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:10, :10] = 0
    alpha[20:30, :5] = 128
    frames = load_image(Image.fromarray(np.dstack([rgb, alpha]), "RGBA")).frames
    table = count_pixels(pipeline._sources(frames))
    palette = Palette(_noise((1, 10), seed=14)[0], np.zeros(10, np.int64))
    fit = pipeline.apply_palette(table, palette, "rgb")
    keys = [pack_rgb(f.rgb) for f in frames]
    plain = pipeline._dithered(frames, keys, fit, method, 1.0, "rgb")
    monkeypatch.setattr(reduce, "_BAND_PIXELS", 999)  # several bands of pairs
    bounded = pipeline._dithered_bounded(frames, fit, method, 1.0, "rgb")
    np.testing.assert_array_equal(bounded.palette.colors, plain.palette.colors)
    np.testing.assert_array_equal(bounded.palette.counts, plain.palette.counts)
    assert bounded.indices is not None and plain.indices is not None
    visible = alpha > 0
    np.testing.assert_array_equal(bounded.indices[0][visible], plain.indices[0][visible])
    assert bounded.metrics.delta_e_p95 == plain.metrics.delta_e_p95
    assert bounded.metrics.colors_used == plain.metrics.colors_used
    assert bounded.metrics.mse == pytest.approx(plain.metrics.mse, rel=1e-12)
    assert bounded.metrics.delta_e_mean == pytest.approx(plain.metrics.delta_e_mean, rel=1e-9)


def test_huge_noise_image_goes_through_quantize_image(low_threshold: None) -> None:
    rgb = _noise((90, 80), seed=15)
    for options in ({}, {"dither": "floyd-steinberg"}, {"space": "lab", "dither": "ordered"}):
        result = pipeline.quantize_image(Image.fromarray(rgb), 8, seed=0, **options)
        indices = np.asarray(result.image)
        assert result.palette.size <= 8
        np.testing.assert_array_equal(
            np.bincount(indices.ravel(), minlength=result.palette.size), result.palette.counts
        )
    auto = pipeline.quantize_image(Image.fromarray(rgb), "auto", seed=0)
    assert auto.k_auto is not None and auto.palette.size <= 256


@pytest.mark.parametrize("space", ["rgb", "lab"])
def test_ordered_dithering_in_bands_gives_the_same_pixels(
    monkeypatch: pytest.MonkeyPatch, space: str
) -> None:
    rgb = _noise((83, 61), seed=9)
    palette = _noise((1, 9), seed=10)[0]
    whole = dither.dither_indices(rgb, palette, "ordered", strength=0.7, space=space)
    monkeypatch.setattr(dither, "_BAND_PIXELS", 500)  # bands of 8 rows
    banded = dither.dither_indices(rgb, palette, "ordered", strength=0.7, space=space)
    np.testing.assert_array_equal(banded, whole)
    monkeypatch.setattr(reduce, "REDUCE_MIN_COLORS", 100)  # chunked nearest colors
    chunked = dither.dither_indices(rgb, palette, "ordered", strength=0.7, space=space)
    np.testing.assert_array_equal(chunked, whole)


def test_settled_bins_in_blocks_match_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    table = color_table(pack_rgb(_noise((200, 150), seed=11)).ravel())
    x = table.colors / 255.0
    w = table.counts.astype(float)
    bins = cluster.make_bins(x, w, table.keys, 16)
    assert bins is not None
    f = _bins.Filter.of(x, w, bins)
    centers = x[np.random.default_rng(12).choice(len(x), 64, replace=False)]
    monkeypatch.setattr(_bins, "SETTLE_BLOCK_ELEMENTS", 1 << 40)
    whole = _bins.settled_bins(f, centers)
    monkeypatch.setattr(_bins, "SETTLE_BLOCK_ELEMENTS", 1)
    blocked = _bins.settled_bins(f, centers)
    for a, b in zip(whole, blocked, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.uint64, np.int64])
def test_histogram_table_finds_every_count_of_every_width(dtype: Any) -> None:
    # Narrow counts are scanned as the 64-bit words holding several of them:
    # each lane of a word, the first and last entries included, is found.
    rng = np.random.default_rng(13)
    hist = np.zeros(histogram.N_KEYS, dtype=dtype)
    where = np.unique(np.concatenate([rng.integers(0, hist.size, 3000), [0, 1, 2, 3, 5]]))
    where = np.concatenate([where, [hist.size - 1]])
    hist[where] = rng.integers(1, 60000, where.size)
    table = histogram.histogram_table(hist)
    np.testing.assert_array_equal(table.keys, where)
    np.testing.assert_array_equal(table.counts, hist[where])
    assert table.keys.dtype == np.uint32 and table.counts.dtype == np.int64


def test_table_merger_sums_on_a_dense_histogram(monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setattr(histogram, "_MERGE_ROWS", 1000)
    parts = [pack_rgb(_noise((40, 40), seed=s)).ravel() for s in range(4)]
    merger = TableMerger()
    for part in parts:
        table = color_table(part)
        merger.add(table.keys, table.counts)
    expected = color_table(np.concatenate(parts))
    got = merger.table()
    np.testing.assert_array_equal(got.keys, expected.keys)
    np.testing.assert_array_equal(got.counts, expected.counts)


def _traced_peak(image: Image.Image, **options: Any) -> int:
    loaded = load_image(image)
    tracemalloc.start()
    try:
        pipeline.quantize_image(loaded, 16, **options)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("options", [{}, {"space": "lab", "dither": "floyd-steinberg"}])
def test_traced_peak_of_noise_grows_by_few_bytes_a_pixel(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, Any]
) -> None:
    # Noise has nearly one distinct color per pixel.  Between 1.1 and 2.2
    # MP (both counted on the histogram) the fixed costs cancel and the
    # slope is what a 50 MP image multiplies: about 32 bytes a pixel on the
    # bounded path; 51 (rgb) and 128 (lab, dithered) before it, with float64
    # copies of the whole table.
    monkeypatch.setattr(reduce, "REDUCE_MIN_COLORS", 1 << 16)
    small, large = (Image.fromarray(_noise((rows, 1024), seed=13)) for rows in (1100, 2200))
    slope = (_traced_peak(large, **options) - _traced_peak(small, **options)) / (1100 * 1024)
    assert slope < 40, f"{slope:.0f} bytes per pixel"


# --------------------------------------------------------------------------
# Kept colors (--keep) on huge tables: fixed centers on the reduced table.

_KEEP = np.array([(255, 255, 255), (0, 0, 0)], np.uint8)


@pytest.mark.parametrize("n_fixed", [0, 2])
def test_chunked_pinned_lloyd_matches_the_plain_one(
    monkeypatch: pytest.MonkeyPatch, n_fixed: int
) -> None:
    from quantize import fixed

    rng = np.random.default_rng(16)
    x = rng.random((5000, 3))
    w = rng.integers(1, 9, 5000).astype(np.float64)
    pinned = rng.random((n_fixed, 3))
    # The last learned center is far from every point: it goes empty and
    # is moved to the worst-fitting point.
    free = np.concatenate([x[rng.choice(5000, 5, replace=False)], [[9.0, 9.0, 9.0]]])
    monkeypatch.setattr(fixed, "_CHUNK_ROWS", 700)
    for steps, tol in ((0, 0.0), (1, 0.0), (50, 1e-4)):
        plain = fixed.pinned_lloyd(x, w, pinned, free, steps, tol)
        chunked = fixed.pinned_lloyd_chunked(x, w, pinned, free, steps, tol)
        assert chunked.n_iter == plain.n_iter
        np.testing.assert_array_equal(chunked.centers[:n_fixed], pinned)
        np.testing.assert_allclose(chunked.centers, plain.centers, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(chunked.labels, plain.labels)
        assert chunked.inertia == pytest.approx(plain.inertia, rel=1e-10)
    assert not (plain.centers == 9.0).any()


@pytest.mark.parametrize("space", ["rgb", "lab"])
def test_table_sse_is_the_exact_weighted_error(space: str) -> None:
    table = count_pixels([(_noise((70, 60), seed=17), None)])
    palette = _noise((1, 12), seed=18)[0]
    labels = np.random.default_rng(19).integers(0, 12, table.n_colors).astype(np.uint8)
    offset = cs.rgb8_to_space(table.colors, space) - cs.rgb8_to_space(palette, space)[labels]
    want = float(table.counts @ (offset**2).sum(axis=1))
    got = reduce.table_sse(table.keys, table.counts, palette, labels, space)
    assert got == pytest.approx(want, rel=1e-12)


def _exact_sse(table: Any, colors: np.ndarray[Any, Any], space: str) -> float:
    """SSE in ``space`` of every color of ``table`` to its nearest of ``colors``."""
    points = cs.rgb8_to_space(table.colors, space)
    target = cs.rgb8_to_space(colors, space)
    d = ((points[:, None, :] - target[None]) ** 2).sum(axis=2)
    return float(table.counts @ d.min(axis=1))


@pytest.mark.parametrize(("space", "seed"), [("rgb", 0), ("lab", 1), ("oklab", 2)])
def test_keep_on_a_huge_table_clusters_the_reduced_table_and_never_loses_to_the_baseline(
    low_threshold: None, monkeypatch: pytest.MonkeyPatch, space: str, seed: int
) -> None:
    from quantize import fixed

    table = count_pixels([(_noise((120, 100), seed=20 + seed), None)])
    assert reduce.is_huge(table.n_colors)
    red = reduce.reduce_table(table.keys, table.counts, space)
    seen: list[int] = []
    real = fixed.fit_table

    def spy(x: Any, *args: Any, **kw: Any) -> Any:
        seen.append(x.shape[0])
        assert kw["chunked"]
        return real(x, *args, **kw)

    monkeypatch.setattr(fixed, "fit_table", spy)
    # The table is never converted whole (its colors are never unpacked).
    monkeypatch.setattr(cs, "rgb8_to_space", _rows_at_most(cs.rgb8_to_space, 1 << 14))
    fit = pipeline.fit_palette(table, 12, space=space, seed=seed, keep=_KEEP)
    assert seen == [red.points.shape[0]]
    assert "colors" not in table.__dict__
    monkeypatch.undo()
    colors = fit.palette.colors
    assert {(255, 255, 255), (0, 0, 0)} <= {tuple(c) for c in colors.tolist()}
    assert len(colors) <= 12 and fit.labels.dtype == np.uint8
    # Labels: every color's exact nearest palette color (either one of a tie).
    exact = pipeline.apply_palette(table, Palette(colors, np.zeros(len(colors), np.int64)), space)
    points = cs.rgb8_to_space(table.colors, space)
    got = cs.rgb8_to_space(fit.palette.colors, space)[fit.labels]
    want = cs.rgb8_to_space(exact.palette.colors, space)[exact.labels]
    np.testing.assert_allclose(
        ((points - got) ** 2).sum(axis=1), ((points - want) ** 2).sum(axis=1), rtol=0, atol=1e-9
    )
    # The baseline: the kept colors plus an unconstrained palette of the
    # others, every color to its nearest; compared in exact terms.
    free = pipeline.fit_palette(table, 12 - len(_KEEP), space=space, seed=seed).palette.colors
    baseline = _exact_sse(table, np.concatenate([_KEEP, free]), space)
    assert _exact_sse(table, colors, space) <= baseline


def _rows_at_most(convert: Any, limit: int) -> Any:
    def checked(rgb8: Any, space: str) -> Any:
        assert np.shape(rgb8)[0] <= limit, np.shape(rgb8)
        return convert(rgb8, space)

    return checked


def test_keep_on_noise_with_auto_k_and_a_shared_palette(low_threshold: None) -> None:
    from quantize.pipeline import learn_shared_palette

    rgb = _noise((90, 80), seed=23)
    auto = pipeline.quantize_image(Image.fromarray(rgb), "auto", seed=0, keep=_KEEP)
    assert auto.k_auto is not None
    assert all(k >= 2 for k, *_ in auto.k_auto.tried)
    assert {(255, 255, 255), (0, 0, 0)} <= {tuple(c) for c in auto.palette.colors.tolist()}
    table = count_pixels([(rgb, None), (_noise((90, 80), seed=24), None)])
    assert reduce.is_huge(table.n_colors)
    shared, report = learn_shared_palette(table, pipeline.RunOptions(colors=8, keep=_KEEP), False)
    assert {(255, 255, 255), (0, 0, 0)} <= {tuple(c) for c in shared.colors.tolist()}
    assert sorted(report["keep"]) == ["#000000", "#ffffff"]
    assert sum(c["count"] for c in report["colors"]) == table.n_pixels
    one = pipeline.quantize_image(Image.fromarray(rgb), 8, palette=shared, keep=_KEEP)
    assert {(255, 255, 255), (0, 0, 0)} <= {tuple(c) for c in one.palette.colors.tolist()}


def test_traced_peak_of_noise_with_kept_colors_grows_by_few_bytes_a_pixel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As the test above, with --keep: before the reduced table was used for
    # it, every distinct color became float64 points (24 bytes) and the
    # fixed-center passes copied them several times over.
    monkeypatch.setattr(reduce, "REDUCE_MIN_COLORS", 1 << 16)
    small, large = (Image.fromarray(_noise((rows, 1024), seed=13)) for rows in (1100, 2200))
    keep = {"keep": _KEEP}
    slope = (_traced_peak(large, **keep) - _traced_peak(small, **keep)) / (1100 * 1024)
    assert slope < 40, f"{slope:.0f} bytes per pixel"

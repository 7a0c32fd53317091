"""Tests of the image path: clustering a weighted table of distinct colors."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn import cluster as skc

from quantize import _bins, cluster, histogram
from quantize.cluster import TableFit, cluster_centers, cluster_table
from quantize.histogram import (
    ColorTable,
    coarse_bins,
    color_table,
    count_pixels,
    nearest_float32,
    nearest_rgb8,
    pack_rgb,
    recolor,
)
from quantize.kmeans import nearest_center


def fit_rgb(table: ColorTable, k: int, **kwargs: object) -> TableFit:
    return cluster_table(
        table.colors / 255.0,
        table.counts.astype(np.float64),
        table.keys,
        k,
        **kwargs,  # type: ignore[arg-type]
    )


def exact_sse(points: NDArray[np.float64], weights: NDArray[np.float64], fit: TableFit) -> float:
    offset = points - fit.centers[fit.labels]
    return float(weights @ np.einsum("ij,ij->i", offset, offset))


def check_consistent(
    points: NDArray[np.float64], weights: NDArray[np.float64], fit: TableFit
) -> None:
    """Labels are the nearest-center assignment, inertia the exact weighted SSE."""
    assert fit.labels.shape == (points.shape[0],)
    assert np.isfinite(fit.centers).all()
    np.testing.assert_array_equal(fit.labels, nearest_center(points, fit.centers))
    assert fit.inertia == pytest.approx(exact_sse(points, weights, fit), rel=1e-9)
    # No center is left without a row.
    assert np.bincount(fit.labels, minlength=len(fit.centers)).min() > 0


@pytest.mark.parametrize("k", [8, 16, 32, 64])
def test_photo_inertia_no_worse_than_sklearn(china_table: ColorTable, k: int) -> None:
    # The benchmark target: no worse than scikit-learn's single run.
    points, weights = china_table.colors / 255.0, china_table.counts.astype(np.float64)
    fit = fit_rgb(china_table, k, random_state=0)
    theirs = skc.KMeans(k, n_init=1, random_state=0).fit(points, sample_weight=weights)
    assert fit.centers.shape == (k, 3)
    assert fit.inertia <= theirs.inertia_
    check_consistent(points, weights, fit)


def test_photo_minibatch_no_worse_than_sklearn(china_table: ColorTable) -> None:
    points, weights = china_table.colors / 255.0, china_table.counts.astype(np.float64)
    fit = fit_rgb(china_table, 16, algorithm="minibatch", random_state=0)
    theirs = skc.MiniBatchKMeans(16, random_state=0).fit(points, sample_weight=weights)
    assert fit.inertia <= 1.05 * theirs.inertia_
    check_consistent(points, weights, fit)


def test_deterministic(china_table: ColorTable) -> None:
    a = fit_rgb(china_table, 12, random_state=7)
    b = fit_rgb(china_table, 12, random_state=7)
    np.testing.assert_array_equal(a.centers, b.centers)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.n_iter == b.n_iter


def test_working_space_range_not_assumed(china_table: ColorTable) -> None:
    # A CIELAB-like range: the same colors scaled and shifted give the same
    # partition, since k-means is invariant under such maps.
    points = china_table.colors / 255.0
    weights = china_table.counts.astype(np.float64)
    base = cluster_table(points, weights, china_table.keys, 8, random_state=0)
    moved = cluster_table(points * 100.0 - 50.0, weights, china_table.keys, 8, random_state=0)
    agree = np.mean(base.labels == moved.labels)
    assert agree > 0.99
    assert moved.inertia == pytest.approx(base.inertia * 100.0**2, rel=1e-3)


def test_small_table_without_keys() -> None:
    rng = np.random.default_rng(0)
    points = rng.random((500, 3))
    weights = rng.integers(1, 10, 500).astype(np.float64)
    fit = cluster_table(points, weights, None, 5, random_state=0)
    assert fit.centers.shape == (5, 3)
    check_consistent(points, weights, fit)
    theirs = skc.KMeans(5, n_init=1, random_state=0).fit(points, sample_weight=weights)
    assert fit.inertia <= 1.01 * theirs.inertia_


def test_large_table_without_keys_is_exact() -> None:
    rng = np.random.default_rng(1)
    points = rng.random((20000, 3))
    weights = np.ones(20000)
    fit = cluster_table(points, weights, None, 10, random_state=0)
    check_consistent(points, weights, fit)


def test_fewer_rows_than_clusters() -> None:
    points = np.array([[0.1, 0.2, 0.3], [0.9, 0.8, 0.7]])
    fit = cluster_table(points, np.array([5.0, 1.0]), np.array([1, 2], np.uint32), 16)
    np.testing.assert_array_equal(fit.centers, points)
    np.testing.assert_array_equal(fit.labels, [0, 1])
    assert fit.inertia == 0.0
    assert fit.n_iter == 0


def test_exactly_k_rows() -> None:
    points = np.eye(3)
    fit = cluster_table(points, np.ones(3), None, 3)
    np.testing.assert_array_equal(fit.centers, points)


def test_single_cluster(china_table: ColorTable) -> None:
    points, weights = china_table.colors / 255.0, china_table.counts.astype(np.float64)
    fit = fit_rgb(china_table, 1, random_state=0)
    np.testing.assert_allclose(fit.centers[0], np.average(points, axis=0, weights=weights))
    assert (fit.labels == 0).all()


def test_gradient_with_few_bins_uses_finer_bins() -> None:
    # 16k distinct colors packed in a handful of coarse bins.
    g, b = np.meshgrid(np.arange(128), np.arange(128), indexing="ij")
    pixels = np.stack([np.full_like(g, 10), g // 8, b // 8 + 40], -1).astype(np.uint8)
    pixels = np.concatenate([pixels.reshape(-1, 3), np.stack([g, g, b], -1).reshape(-1, 3)])
    table = color_table(pack_rgb(pixels.astype(np.uint8)))
    points, weights = table.colors / 255.0, table.counts.astype(np.float64)
    fit = cluster_table(points, weights, table.keys, 32, random_state=0)
    assert fit.centers.shape[0] == 32
    check_consistent(points, weights, fit)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_clusters": 0}, "n_clusters"),
        ({"algorithm": "lloyd"}, "algorithm"),
        ({"n_init": 0}, "n_init"),
        ({"max_iter": 0}, "max_iter"),
        ({"weights": np.array([1.0, 0.0, 1.0])}, "weights"),
        ({"weights": np.ones(2)}, "weights"),
        ({"points": np.array([[0.0, np.nan, 0.0]] * 3)}, "NaN"),
        ({"points": np.zeros(3)}, "points"),
        ({"keys": np.zeros(2, np.uint32)}, "keys"),
        ({"random_state": "seed"}, "random_state"),
    ],
)
def test_validation(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "points": np.eye(3),
        "weights": np.ones(3),
        "keys": None,
        "n_clusters": 2,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        cluster_table(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("bits", range(1, 9))
def test_coarse_bins_number_cells_in_key_order(china_table: ColorTable, bits: int) -> None:
    # Dense-grid numbering (few bits) and sorting (many bits) must both give
    # the numbering of the distinct masked keys in increasing order.
    shift = 8 - bits
    mask = (0xFF >> shift) << shift
    coarse = china_table.keys & np.uint32((mask << 16) | (mask << 8) | mask)
    uniq, inverse = np.unique(coarse, return_inverse=True)
    index, n_bins = coarse_bins(china_table.keys, bits)
    assert n_bins == uniq.size
    assert index.dtype == np.intp
    np.testing.assert_array_equal(index, inverse)


@pytest.mark.parametrize("size", [0, 1, 2, 7, 5000, (1 << 20) - 1, 1 << 20])
def test_color_table_counts_like_unique(size: int) -> None:
    # Radix sort below 2**20 keys, a 2**24 histogram from there on: both must
    # give np.unique's sorted keys and counts, repeated keys included.
    rng = np.random.default_rng(size)
    keys = rng.integers(0, 1 << 24, size, dtype=np.uint32)
    keys[: size // 2] = keys[size // 2 : 2 * (size // 2)]  # every key of the first half twice
    keys[-1:] = (1 << 24) - 1
    uniq, counts = np.unique(keys, return_counts=True)
    table = color_table(keys)
    assert table.keys.dtype == np.uint32
    assert table.counts.dtype == np.int64
    np.testing.assert_array_equal(table.keys, uniq)
    np.testing.assert_array_equal(table.counts, counts)
    if table.inverse is not None:  # the sorting path: every key's own row
        np.testing.assert_array_equal(table.keys[table.inverse], keys)
    assert (table.inverse is None) == (size >= 1 << 20)


@pytest.mark.parametrize("repeats", [65535, 65536, 65537, 200_000])
def test_color_table_counts_beyond_16_bits(repeats: int) -> None:
    # The histogram counts in uint16 first: a color of 2**16 pixels or more
    # must still get its exact count (65536 wraps to zero, not absent).
    keys = np.concatenate(
        [np.arange(1 << 20, dtype=np.uint32), np.full(repeats, 12345, dtype=np.uint32)]
    )
    table = color_table(keys)
    assert table.n_colors == 1 << 20
    assert table.counts[12345] == repeats + 1
    assert table.n_pixels == keys.size


def test_color_table_keys_beyond_24_bits() -> None:
    keys = np.array([1 << 30, 5, 1 << 30, 5, 5], dtype=np.uint32)
    table = color_table(keys)
    np.testing.assert_array_equal(table.keys, [5, 1 << 30])
    np.testing.assert_array_equal(table.counts, [3, 2])


@pytest.mark.parametrize(("k", "algorithm"), [(8, "kmeans"), (48, "kmeans"), (8, "minibatch")])
def test_cluster_centers_are_cluster_tables_centers(
    china_table: ColorTable, k: int, algorithm: str
) -> None:
    # The pipeline's shortcut skips only the final assignment: same centers
    # (up to the rounding of a differently ordered sum), same iterations.
    points, weights = china_table.colors / 255.0, china_table.counts.astype(np.float64)
    options = {"algorithm": algorithm, "random_state": 3}
    full = cluster_table(points, weights, china_table.keys, k, **options)  # type: ignore[arg-type]
    centers, n_iter = cluster_centers(points, weights, china_table.keys, k, **options)  # type: ignore[arg-type]
    np.testing.assert_allclose(centers, full.centers, rtol=0, atol=1e-12)
    assert n_iter == full.n_iter


def test_cluster_centers_of_a_table_smaller_than_k() -> None:
    points = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    centers, n_iter = cluster_centers(points, np.ones(2), None, 4)
    np.testing.assert_array_equal(centers, points)
    assert n_iter == 0
    with pytest.raises(ValueError, match="algorithm"):
        cluster_centers(points, np.ones(2), None, 1, algorithm="lloyd")  # type: ignore[arg-type]


@pytest.mark.parametrize(("m", "k"), [(1, 1), (40_000, 16), (3000, 256)])
def test_nearest_rgb8_is_exact_with_ties_to_the_lowest_index(m: int, k: int) -> None:
    rng = np.random.default_rng(k)
    colors = rng.integers(0, 256, (m, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
    if k > 1:
        # Exact ties: 10 and 30 are both at distance 10 from 20 (and 255 * 3
        # puts the extremes' squared distances near the float32 limits).
        palette[:2] = [[10, 0, 255], [30, 0, 255]]
        colors[:3] = [[20, 0, 255], [255, 255, 255], [0, 0, 0]]
    sq = ((colors[:, None, :].astype(np.int64) - palette[None].astype(np.int64)) ** 2).sum(-1)
    np.testing.assert_array_equal(nearest_rgb8(colors, palette), sq.argmin(axis=1))


def test_nearest_float32_is_nearest_but_for_float32_ties() -> None:
    rng = np.random.default_rng(3)
    points, centers = rng.random((20_000, 3)), rng.random((256, 3))
    sq = ((points[:, None, :] - centers[None]) ** 2).sum(-1)
    labels = nearest_float32(points, centers)
    chosen = np.take_along_axis(sq, labels[:, None], axis=1)[:, 0]
    assert np.all(chosen - sq.min(axis=1) <= 1e-6)
    assert np.mean(labels == sq.argmin(axis=1)) > 0.999


def test_last_step_of_a_large_table_is_the_exact_lloyd_step() -> None:
    rng = np.random.default_rng(4)
    keys = np.unique(rng.integers(0, 1 << 24, 40_000, dtype=np.uint32))
    x = histogram.unpack_keys(keys) / 255.0
    w = rng.integers(1, 50, keys.size).astype(np.float64)
    # Off the 8-bit grid, as means are: no exact ties for float32 to break otherwise.
    centers = x[rng.choice(keys.size, 64, replace=False)] + rng.normal(0, 1e-3, (64, 3))
    bins = _bins.make_bins(x, w, keys, 64)
    assert bins is not None
    exact = _bins.exact_update(_bins.Filter.of(x, w, bins), centers)
    np.testing.assert_allclose(cluster._last_step(x, w, centers), exact, atol=1e-6)


@pytest.mark.parametrize("mask_first", [False, True])
def test_count_pixels_and_recolor_in_chunks(mask_first: bool) -> None:
    # Above 2**20 visible pixels: counted chunk by chunk on a histogram
    # (with a color of more than 65535 pixels, which wraps uint16 counts),
    # over two frames, one of them partly transparent.
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 256, (700, 1100, 3), dtype=np.uint8) for _ in range(2)]
    frames[1][:200] = (7, 8, 9)  # 220000 pixels of one color
    masks = [rng.random((700, 1100)) < 0.8 if mask_first else None, None]
    sources = list(zip(frames, masks, strict=True))
    visible = [pack_rgb(f).ravel() if m is None else pack_rgb(f[m]) for f, m in sources]
    keys = np.concatenate(visible)
    uniq, counts = np.unique(keys, return_counts=True)
    table = count_pixels(sources)
    assert table.inverse is None and table.histogram is not None
    np.testing.assert_array_equal(table.keys, uniq)
    np.testing.assert_array_equal(table.counts, counts)
    row_index = (table.keys % 251).astype(np.uint8)
    for frame, mask, got in zip(frames, masks, recolor(table, row_index, sources), strict=True):
        expected = (pack_rgb(frame) % 251).astype(np.uint8)
        if mask is not None:
            expected[~mask] = 0
        np.testing.assert_array_equal(got, expected)


def test_count_pixels_small_uses_the_inverse() -> None:
    rng = np.random.default_rng(6)
    frame = rng.integers(0, 4, (30, 40, 3), dtype=np.uint8)
    mask = rng.random((30, 40)) < 0.5
    table = count_pixels([(frame, mask), (frame, None)])
    assert table.inverse is not None and table.histogram is None
    assert table.n_pixels == int(mask.sum()) + 1200
    row_index = np.arange(table.n_colors, dtype=np.uint8)
    masked, full = recolor(table, row_index, [(frame, mask), (frame, None)])
    np.testing.assert_array_equal(table.keys[full], pack_rgb(frame))
    np.testing.assert_array_equal(table.keys[masked][mask], pack_rgb(frame)[mask])
    assert np.all(masked[~mask] == 0)


def test_pack_rgb_byte_lanes_equal_shifts(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(8)
    pixels = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)[:, ::3]  # strided input
    r, g, b = (pixels[..., c].astype(np.uint32) for c in range(3))
    expected = (r << 16) | (g << 8) | b
    out = np.empty(pixels.shape[:2], dtype=np.uint32)
    for little in (True, False):
        monkeypatch.setattr(histogram, "_LITTLE_ENDIAN", little)
        np.testing.assert_array_equal(pack_rgb(pixels), expected)
        assert pack_rgb(pixels, out=out) is out
        np.testing.assert_array_equal(out, expected)
        assert int(pack_rgb(np.array([1, 2, 3], np.uint8))) == 0x010203


@pytest.mark.parametrize("k", [2, 64, 256])
def test_filtered_assignment_is_the_nearest_center_of_every_row(k: int) -> None:
    # Bins straddling a boundary: their rows near the bin mean are settled
    # one by one, the others compared with every center; both must give the
    # nearest center of every row, its distance and the cluster sums.
    from quantize import cluster
    from quantize._kernels import assign_nearest

    rng = np.random.default_rng(5)
    pixels = rng.normal(128, 50, size=(60000, 3)).clip(0, 255).astype(np.uint8)
    table = color_table(pack_rgb(pixels))
    x, w = table.colors / 255.0, table.counts.astype(float)
    bins = cluster.make_bins(x, w, table.keys, k)
    assert bins is not None
    f = _bins.Filter.of(x, w, bins)
    centers = x[rng.choice(len(x), k, replace=False)]
    got = _bins.filtered_assign(f, centers)
    labels, sq = assign_nearest(x, centers)
    np.testing.assert_array_equal(got.labels(bins.index), labels)
    assert got.inertia == pytest.approx(float(w @ sq), rel=1e-9)
    totals = np.bincount(labels, weights=w, minlength=k)
    np.testing.assert_allclose(got.totals, totals)
    sums = np.stack([np.bincount(labels, weights=w * x[:, j], minlength=k) for j in range(3)], 1)
    np.testing.assert_allclose(got.sums, sums, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("count", [65536, 131072, 65536 * 3 + 17])
def test_count_pixels_exact_when_a_count_wraps_to_any_value(count: int) -> None:
    # A color of a multiple of 65536 pixels wraps its uint16 count to 0; it
    # must still be in the table, with its count, and so must its neighbors.
    rng = np.random.default_rng(6)
    pixels = rng.integers(0, 256, (1100, 1000, 3), dtype=np.uint8).reshape(-1, 3)
    pixels[:count] = (7, 8, 9)
    pixels[count : count + 70000] = (7, 8, 10)  # the same cell of keys
    table = count_pixels([(pixels.reshape(1100, 1000, 3), None)])
    uniq, counts = np.unique(pack_rgb(pixels), return_counts=True)
    np.testing.assert_array_equal(table.keys, uniq)
    np.testing.assert_array_equal(table.counts, counts)

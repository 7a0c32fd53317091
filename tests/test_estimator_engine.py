"""The estimators cluster pixel-like data on the image path's engine."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

import quantize.cluster as cluster
from quantize import _lloyd as loops
from quantize._distinct_rows import TABLE_SWAP_TRIES, row_table
from quantize._kernels import plain_sums, transpose_weighted, weighted_sums
from quantize._lloyd import best_of
from quantize.histogram import color_table, pack_rgb
from quantize.kmeans import ConvergenceWarning, KMeans, MiniBatchKMeans, nearest_center


def photo_like(n: int = 30000, seed: int = 0) -> NDArray[np.uint8]:
    """Pixels around a few colors: many repeated rows, like a photo."""
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 220, size=(12, 3))
    noise = rng.normal(0, 12, size=(n, 3))
    return np.clip(base[rng.integers(0, 12, n)] + noise, 0, 255).astype(np.uint8)


def sse(X: NDArray[Any], centers: NDArray[Any], labels: NDArray[np.intp], w: Any = None) -> float:
    per_row = ((X - centers[labels]) ** 2).sum(axis=1)
    return float(per_row.sum() if w is None else w @ per_row)


@pytest.fixture
def table_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the rows of every table the image path's clustering is given."""
    calls: list[int] = []
    original = cluster.cluster_table

    def spy(points: NDArray[np.float64], *args: Any, **kwargs: Any) -> cluster.TableFit:
        calls.append(points.shape[0])
        return original(points, *args, **kwargs)

    monkeypatch.setattr(cluster, "cluster_table", spy)
    return calls


@pytest.mark.parametrize("scale", [255.0, 1.0])
def test_pixels_take_the_image_path(scale: float, table_calls: list[int]) -> None:
    pixels = photo_like()
    X = pixels / scale
    model = KMeans(8, random_state=0).fit(X)
    table = color_table(pack_rgb(pixels))
    assert table_calls == [table.n_colors]
    # The estimators' fit sums without BLAS (the same up to rounding).
    with plain_sums():
        fit = cluster.cluster_table(
            table.colors / scale,
            table.counts * 1.0,
            table.keys,
            8,
            random_state=0,
            max_swap_tries=TABLE_SWAP_TRIES,
        )
    np.testing.assert_array_equal(model.cluster_centers_, fit.centers)
    assert model.labels_.shape == (len(X),)
    np.testing.assert_array_equal(model.labels_, nearest_center(X, model.cluster_centers_))
    assert model.inertia_ == pytest.approx(sse(X, model.cluster_centers_, model.labels_), rel=1e-9)
    assert model.n_iter_ == fit.n_iter


def test_sample_weight_summed_per_distinct_row(table_calls: list[int]) -> None:
    X = photo_like(20000, seed=1) / 255.0
    w = np.random.default_rng(2).random(len(X)) + 0.5
    model = KMeans(6, random_state=0).fit(X, sample_weight=w)
    assert table_calls
    expected = sse(X, model.cluster_centers_, model.labels_, w)
    assert model.inertia_ == pytest.approx(expected, rel=1e-9)


def test_repeated_rows_off_the_grid_take_the_image_path(table_calls: list[int]) -> None:
    rng = np.random.default_rng(0)
    X = np.round(rng.normal(size=(20000, 2)), 1) * 0.37
    model = KMeans(5, random_state=0).fit(X)
    assert table_calls == [len(np.unique(X, axis=0))]
    np.testing.assert_array_equal(model.labels_, nearest_center(X, model.cluster_centers_))
    assert model.inertia_ == pytest.approx(sse(X, model.cluster_centers_, model.labels_), rel=1e-9)


@pytest.mark.parametrize(
    "X",
    [
        np.random.default_rng(0).random((20000, 3)),  # all rows distinct
        np.random.default_rng(0).integers(0, 4, (20000, 6)) / 255.0,  # too many features
        photo_like(4000) / 255.0,  # too few rows to pay
    ],
)
def test_general_data_takes_the_general_path(X: NDArray[Any], table_calls: list[int]) -> None:
    KMeans(4, random_state=0).fit(X)
    assert table_calls == []


@pytest.mark.parametrize("params", [{"init": "random"}, {"tol": 0.0}])
def test_settings_the_image_path_cannot_honor(
    params: dict[str, Any], table_calls: list[int]
) -> None:
    KMeans(4, random_state=0, **params).fit(photo_like() / 255.0)
    assert table_calls == []


def test_predict_and_transform_through_the_table() -> None:
    X = photo_like(25000, seed=3) / 255.0
    model = KMeans(7, random_state=0).fit(X[:10000])
    np.testing.assert_array_equal(model.predict(X), nearest_center(X, model.cluster_centers_))
    expected = np.linalg.norm(X[:, None, :] - model.cluster_centers_[None], axis=2)
    np.testing.assert_allclose(model.transform(X), expected, atol=1e-9)


def test_float32_pixels_stay_float32() -> None:
    X = (photo_like() / 255.0).astype(np.float32)
    model = KMeans(4, random_state=0).fit(X)
    assert model.cluster_centers_.dtype == np.float32
    assert row_table(X) is not None


def test_fewer_colors_than_clusters_warns() -> None:
    X = np.repeat(np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]]) / 255.0, 5000, axis=0)
    with pytest.warns(ConvergenceWarning, match="3 distinct"):
        model = KMeans(5, random_state=0).fit(X)
    assert model.cluster_centers_.shape == (3, 3)
    assert model.inertia_ == 0.0


def test_rgba_with_constant_alpha_bins_on_the_color() -> None:
    rgba = np.concatenate([photo_like(), np.full((30000, 1), 255, np.uint8)], axis=1)
    table = row_table(rgba / 255.0)
    assert table is not None and table.keys is not None
    assert table.rows.shape == (color_table(pack_rgb(rgba[:, :3])).n_colors, 4)


def test_minibatch_on_pixels() -> None:
    X = photo_like(seed=4) / 255.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = MiniBatchKMeans(8, random_state=0).fit(X)
    np.testing.assert_array_equal(model.labels_, nearest_center(X, model.cluster_centers_))
    assert model.inertia_ == pytest.approx(sse(X, model.cluster_centers_, model.labels_), rel=1e-9)
    theirs = KMeans(8, random_state=0).fit(X).inertia_
    assert model.inertia_ <= 1.05 * theirs


def test_weighted_sums_of_many_features_match_bincount() -> None:
    rng = np.random.default_rng(0)
    X, w = rng.random((500, 20)), rng.random(500) + 0.5
    labels = rng.integers(0, 7, 500)
    sums, totals = weighted_sums(transpose_weighted(X, w), w, labels, 7)
    expected = np.stack([np.bincount(labels, weights=w * X[:, j], minlength=7) for j in range(20)])
    np.testing.assert_allclose(sums, expected.T, rtol=1e-12)
    np.testing.assert_allclose(totals, np.bincount(labels, weights=w, minlength=7), rtol=1e-12)


def test_small_data_restarts_in_lockstep_give_the_sequential_result() -> None:
    X = np.random.default_rng(0).random((600, 12))
    w = np.ones(600)
    ours = KMeans(6, n_init=5, random_state=3).fit(X)
    rng = np.random.default_rng(3)
    sequential = best_of(X, w, 6, "k-means++", 5, 300, 1e-4, rng)
    np.testing.assert_allclose(ours.cluster_centers_, sequential.centers, rtol=1e-9)
    assert ours.inertia_ == pytest.approx(sequential.inertia, rel=1e-9)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p / 255.0,
        lambda p: (p / 255.0).astype(np.float32),
        lambda p: p * 1.0,
        lambda p: np.concatenate([p, np.full((len(p), 1), 255)], axis=1) / 255.0,
        lambda p: p[:, :2] / 255.0,
    ],
)
def test_table_rebuilds_every_row_exactly(make: Any) -> None:
    X = make(photo_like(seed=5))
    table = row_table(X)
    assert table is not None
    np.testing.assert_array_equal(table.rows[table.inverse], X)
    assert table.rows.dtype == X.dtype
    assert len(np.unique(table.rows, axis=0)) == len(table.rows)


def swap_tries(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the tries of every swap search the image path runs."""
    calls: list[int] = []
    original = cluster._swap_search

    def spy(prep: Any, start: Any, max_iter: int, rng: Any, tries: int = 20, **options: Any) -> Any:
        calls.append(tries)
        return original(prep, start, max_iter, rng, tries, **options)

    monkeypatch.setattr(cluster, "_swap_search", spy)
    return calls


@pytest.mark.parametrize("k", [8, 40])
def test_estimator_caps_the_swap_search(k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Colors spread over the cube: seed bins that are not coarse.
    pixels = np.random.default_rng(0).integers(0, 256, size=(30000, 3))
    table = color_table(pack_rgb(pixels.astype(np.uint8)))
    args = (table.colors / 255.0, table.counts * 1.0, table.keys, k)
    calls = swap_tries(monkeypatch)
    full = cluster.cluster_table(*args, random_state=0)
    assert calls and max(calls) > TABLE_SWAP_TRIES
    calls.clear()
    capped = cluster.cluster_table(*args, random_state=0, max_swap_tries=TABLE_SWAP_TRIES)
    assert calls and max(calls) == TABLE_SWAP_TRIES
    calls.clear()
    model = KMeans(k, random_state=0).fit(pixels / 255.0)
    assert calls and max(calls) <= TABLE_SWAP_TRIES
    np.testing.assert_array_equal(model.cluster_centers_, capped.centers)
    # None is the command's schedule; 0 runs no swap search at all.
    again = cluster.cluster_table(*args, random_state=0, max_swap_tries=None)
    np.testing.assert_array_equal(again.centers, full.centers)
    calls.clear()
    cluster.cluster_table(*args, random_state=0, max_swap_tries=0)
    assert calls == []


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_lloyd_matches_plain_passes(dtype: type) -> None:
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(900, 30)) + rng.integers(0, 4, (900, 1)) * 3).astype(dtype)
    w = rng.random(900) + 0.5
    prep = loops.prepare(X, w)
    start = X[rng.choice(900, 7, replace=False)].astype(np.float64)
    plain = loops.lloyd_plain(prep, start, 300, 1e-4)
    dense = loops.lloyd_dense(prep, start, 300, 1e-4)
    np.testing.assert_array_equal(dense.labels, plain.labels)
    assert dense.n_iter == plain.n_iter
    tol = 1e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(dense.centers, plain.centers, rtol=tol, atol=tol)
    assert dense.inertia == pytest.approx(plain.inertia, rel=tol)


def test_dense_lloyd_assigns_exactly_after_float32_steps() -> None:
    # Rows of negligible weight 1e-9 on either side of the boundary between
    # two clusters' fixed centers: float32 scores (rounding about 2e-7)
    # cannot tell their side, float64 scores can.
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 0.3, (200, 5)), rng.normal(0, 0.4, (200, 5))])
    X[:200, 0] -= 1
    X[200:, 0] += 1.3
    start = X[[0, 200]].copy()
    fixed = loops.lloyd_plain(loops.prepare(X, np.ones(400)), start, 300, 0.0).centers
    across = (fixed[1] - fixed[0]) / np.linalg.norm(fixed[1] - fixed[0])
    side = np.where(np.arange(40) % 2, 1.0, -1.0)
    X = np.concatenate([X, fixed.mean(axis=0) + 1e-9 * side[:, None] * across])
    prep = loops.prepare(X, np.concatenate([np.ones(400), np.full(40, 1e-12)]))
    dense = loops.lloyd_dense(prep, start, 300, 0.0)
    exact = ((X[:, None, :] - dense.centers) ** 2).sum(axis=2).argmin(axis=1)
    np.testing.assert_array_equal(dense.labels, exact)
    np.testing.assert_array_equal(exact[400:], side > 0)
    rounded, _ = loops._DenseScores(prep, 2, np.float32)(dense.centers - prep.shift)
    assert (rounded != exact).sum() > 5


def _far_groups() -> NDArray[np.float64]:
    """Three groups 3e4 apart, of three clusters of unit spread each."""
    rng = np.random.default_rng(1)
    offsets = [g * 3e4 + s * 3 for g in range(3) for s in range(3)]
    return np.concatenate([offset + rng.normal(size=(100, 6)) for offset in offsets])


@pytest.mark.parametrize(
    ("X", "start"),
    [
        # Clusters far from the mean of all rows compared with their spread:
        # their scores are large numbers that differ in float32's rounding.
        pytest.param(_far_groups(), _far_groups()[::45], id="far-clusters"),
        # Squared norms past float32's range.
        pytest.param(
            (np.random.default_rng(2).normal(size=(600, 20)) + np.arange(600)[:, None] % 3 * 4)
            * 1e20,
            None,
            id="huge-rows",
        ),
        pytest.param(
            np.random.default_rng(3).normal(size=(500, 8)) + np.arange(500)[:, None] % 4 * 3,
            np.array([[1e20] * 8, [-1e20] * 8, [1e20, -1e20] * 4]),
            id="huge-start",
        ),
    ],
)
def test_dense_lloyd_keeps_float64_where_float32_would_mislead(
    X: NDArray[np.float64], start: NDArray[np.float64] | None
) -> None:
    prep = loops.prepare(X, np.ones(X.shape[0]))
    start = X[:5].copy() if start is None else start
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow in a float32 cast
        dense = loops.lloyd_dense(prep, start, 300, 1e-4)
    plain = loops.lloyd_plain(prep, start, 300, 1e-4)
    np.testing.assert_array_equal(dense.labels, plain.labels)
    assert dense.n_iter == plain.n_iter
    # Both sum distances expanded from squared norms of up to 5e9.
    assert dense.inertia == pytest.approx(plain.inertia, rel=1e-6)


def test_dense_lloyd_reseeds_empty_clusters() -> None:
    X = np.concatenate([np.zeros((50, 10)), np.ones((50, 10))])
    X += np.random.default_rng(0).normal(0, 0.01, X.shape)
    prep = loops.prepare(X, np.ones(100))
    # The third center is nearest to no row: it is reseeded, not left NaN.
    start = np.stack([X[0], X[60], np.full(10, 50.0)])
    dense = loops.lloyd_dense(prep, start, 300, 1e-4)
    plain = loops.lloyd_plain(prep, start, 300, 1e-4)
    assert np.isfinite(dense.centers).all() and dense.centers.shape == (3, 10)
    np.testing.assert_array_equal(dense.labels, plain.labels)
    assert dense.inertia == pytest.approx(plain.inertia, rel=1e-9)


def test_table_of_many_rows_counts_them_and_maps_every_row() -> None:
    # Above 2**20 rows the table comes from the command's counting and a
    # key lookup instead of one sort.
    pixels = np.concatenate([photo_like(1 << 19, seed=6), photo_like((1 << 19) + 7, seed=7)])
    X = pixels / 255.0
    table = row_table(X)
    assert table is not None
    np.testing.assert_array_equal(table.rows[table.inverse], X)
    assert table.counts.sum() == X.shape[0]
    expected = color_table(pack_rgb(pixels))
    np.testing.assert_array_equal(table.keys, expected.keys)
    np.testing.assert_array_equal(table.counts, expected.counts)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_column_layout_assignment_equals_assign_nearest(dtype: type) -> None:
    # lloyd_plain's centers x rows assignment must give assign_nearest's
    # labels and distances exactly, ties (a repeated center) to the lowest
    # index, over several blocks and thread stripes.
    from quantize._kernels import assign_nearest

    X = (photo_like(150_000, seed=8) / 255.0).astype(dtype)
    prep = loops.prepare(X, np.ones(len(X)))
    rng = np.random.default_rng(0)
    # Passes that reuse their arrays (lloyd_plain's) overwrite them exactly,
    # also when the number of centers changes between passes.
    reuse = loops._Scratch()
    for k in (2, 3, 7, 16, 24, 7):
        c = prep.X[rng.choice(len(X), k, replace=False)].astype(np.float64)
        c[k // 2] = c[0]
        expected = assign_nearest(prep.X, c, prep.x_sq)
        for got in (
            loops._assign_columns(prep.xt_aug, prep.x_sq, c),
            loops._assign_columns(prep.xt_aug, prep.x_sq, c, reuse),
        ):
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])
            assert got[1].dtype == expected[1].dtype
            assert not (got[0] == k // 2).any()


def test_seeding_on_prepared_rows_draws_the_same_rows() -> None:
    # The dense path seeds on the centered rows with the transpose and norms
    # Lloyd's iterations share: the same draws as on the rows themselves.
    from quantize._kernels import kmeans_plusplus_indices

    X = np.random.default_rng(3).normal(5.0, 2.0, size=(1500, 64))
    w = np.ones(len(X))
    prep = loops.prepare(X, w)
    for seed in range(3):
        plain = kmeans_plusplus_indices(X, w, 10, np.random.default_rng(seed))
        shared = kmeans_plusplus_indices(
            prep.X, w, 10, np.random.default_rng(seed), xt=prep.xt, x_sq=prep.x_sq
        )
        np.testing.assert_array_equal(shared, plain)


def test_sorted_keys_match_numpy_unique() -> None:
    # The radix sort of the table: sorted distinct keys, their counts and
    # every row's position, over the whole 24-bit range.
    from quantize._distinct_rows import _sorted_keys

    rng = np.random.default_rng(0)
    keys = rng.integers(0, 1 << 24, 5000, dtype=np.uint32)
    keys = np.concatenate([keys, keys[:700], [0, 0xFFFFFF, 0xFFFF, 0x10000]]).astype(np.uint32)
    rng.shuffle(keys)
    distinct, counts, inverse = _sorted_keys(keys)
    expected, where, n = np.unique(keys, return_inverse=True, return_counts=True)
    np.testing.assert_array_equal(distinct, expected)
    np.testing.assert_array_equal(counts, n)
    np.testing.assert_array_equal(inverse.result(), where)


def test_dense_nearest_center_breaks_ties_to_the_lowest_index() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(700, 64))
    prep = loops.prepare(X, np.ones(700))
    c = prep.X[:6].copy()
    c[4] = c[1]  # an exact tie for every row nearest to center 1
    labels, sq_dist = loops._DenseScores(prep, 6)(c)
    scores = -2.0 * c @ prep.X.T + (c**2).sum(axis=1)[:, None]
    np.testing.assert_array_equal(labels, np.argmin(scores, axis=0))
    assert (labels == 1).any() and not (labels == 4).any()
    assert sq_dist.shape == (700,) and (sq_dist >= 0).all()


def test_estimator_seeds_in_float32_on_few_seed_bins(monkeypatch: pytest.MonkeyPatch) -> None:
    # Under the cap the restarts and swaps on the seed bins (plain passes)
    # run in float32; the command's own fit keeps float64 (its results
    # must not move), and both end on float64 centers.
    pixels = np.random.default_rng(0).integers(0, 256, size=(30000, 3))
    table = color_table(pack_rgb(pixels.astype(np.uint8)))
    args = (table.colors / 255.0, table.counts * 1.0, table.keys, 8)
    seen: list[tuple[object, object]] = []
    runs, search = cluster._seed_runs, cluster._swap_search

    def spy_runs(x: Any, *rest: Any, **options: Any) -> Any:
        seen.append(("runs", x.dtype))
        return runs(x, *rest, **options)

    def spy_search(prep: Any, *rest: Any, **options: Any) -> Any:
        seen.append(("swaps", prep.X.dtype))
        return search(prep, *rest, **options)

    monkeypatch.setattr(cluster, "_seed_runs", spy_runs)
    monkeypatch.setattr(cluster, "_swap_search", spy_search)
    capped = cluster.cluster_table(*args, random_state=0, max_swap_tries=TABLE_SWAP_TRIES)
    assert seen[:2] == [("runs", np.float32), ("swaps", np.float32)]
    assert capped.centers.dtype == np.float64
    seen.clear()
    cluster.cluster_table(*args, random_state=0)
    assert seen[:2] == [("runs", np.float64), ("swaps", np.float64)]


def test_rounded_exact_step_ends_on_an_exact_assignment() -> None:
    # The estimators' exact step decides the means from float32 scores,
    # then labels the rows and sums their SSE exactly.
    pixels = np.random.default_rng(3).integers(0, 256, size=(40000, 3))
    table = color_table(pack_rgb(pixels.astype(np.uint8)))
    x, w = table.colors / 255.0, table.counts * 1.0
    prep = loops.prepare(x, w)
    start = x[np.random.default_rng(0).choice(x.shape[0], 12, replace=False)]
    step = loops.lloyd_step_rounded(prep, start)
    plain = loops.lloyd_plain(prep, start, 1, 0.0)
    # A row within float32 rounding of a boundary may count in another
    # cluster's mean: a few such rows move a mean by a few 1e-5.
    np.testing.assert_allclose(step.centers, plain.centers, atol=1e-3)
    sq = ((x[:, None, :] - step.centers[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(step.labels, np.argmin(sq, axis=1))
    assert step.inertia == pytest.approx(float(w @ sq.min(axis=1)), rel=1e-12)
    assert step.n_iter == 1

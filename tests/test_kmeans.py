"""Tests of the bundled k-means core, with scikit-learn as the oracle."""

from __future__ import annotations

import textwrap
import warnings

import numpy as np
import pytest
from numpy.typing import NDArray
from sklearn import cluster as skc
from sklearn.datasets import load_digits, make_blobs
from sklearn.metrics import adjusted_rand_score

from quantize.histogram import ColorTable
from quantize.kmeans import (
    ConvergenceWarning,
    KMeans,
    MiniBatchKMeans,
    NotFittedError,
    check_random_state,
    kmeans_plusplus,
    nearest_center,
)
from tests.helpers import outputs_by_blas_threads


def blobs() -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    X, y = make_blobs(n_samples=300, centers=4, cluster_std=0.60, random_state=0)
    return X, y


# --------------------------------------------------------------------------
# Quality against scikit-learn.


def test_make_blobs_recovered_exactly() -> None:
    X, y = blobs()
    km = KMeans(4, random_state=0).fit(X)
    assert adjusted_rand_score(y, km.labels_) == 1.0


def digits_accuracy(labels: NDArray[np.intp], truth: NDArray[np.intp]) -> float:
    mapped = np.empty_like(truth)
    for cluster in np.unique(labels):
        members = labels == cluster
        mapped[members] = np.bincount(truth[members]).argmax()
    return float(np.mean(mapped == truth))


@pytest.mark.parametrize("n_init", [10, "auto"])
def test_digits_accuracy(n_init: int | str) -> None:
    X, y = load_digits(return_X_y=True)
    km = KMeans(10, n_init=n_init, random_state=0).fit(X)  # type: ignore[arg-type]
    assert digits_accuracy(km.labels_, y) >= 0.78


@pytest.mark.parametrize(("seed", "k"), [(0, 5), (1, 20), (2, 50)])
def test_inertia_close_to_sklearn_on_random_data(seed: int, k: int) -> None:
    X = np.random.default_rng(seed).random((2000, 5))
    ours = KMeans(k, random_state=seed).fit(X).inertia_
    theirs = skc.KMeans(k, n_init=1, random_state=seed).fit(X).inertia_
    assert ours <= 1.01 * theirs


def test_inertia_close_to_sklearn_on_photo_colors(
    china_table: ColorTable,
) -> None:
    colors, counts = china_table.colors / 255.0, china_table.counts.astype(np.float64)
    ours = KMeans(16, random_state=0).fit(colors, sample_weight=counts).inertia_
    theirs = skc.KMeans(16, n_init=1, random_state=0).fit(colors, sample_weight=counts).inertia_
    assert ours <= 1.01 * theirs


@pytest.mark.parametrize("seed", [0, 1])
def test_minibatch_close_to_sklearn_on_random_data(seed: int) -> None:
    X = np.random.default_rng(seed).random((20000, 3))
    ours = MiniBatchKMeans(16, random_state=seed).fit(X).inertia_
    theirs = skc.MiniBatchKMeans(16, random_state=seed).fit(X).inertia_
    assert ours <= 1.05 * theirs


def test_minibatch_close_to_sklearn_on_photo_colors(
    china_table: ColorTable,
) -> None:
    colors, counts = china_table.colors / 255.0, china_table.counts.astype(np.float64)
    ours = MiniBatchKMeans(16, random_state=0).fit(colors, sample_weight=counts).inertia_
    theirs = skc.MiniBatchKMeans(16, random_state=0).fit(colors, sample_weight=counts).inertia_
    assert ours <= 1.05 * theirs


# --------------------------------------------------------------------------
# Weights.


def repeated_pair() -> tuple[
    NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]
]:
    """A table of distinct points with integer weights, and the same points repeated."""
    rng = np.random.default_rng(3)
    table = rng.normal(size=(60, 2)) + rng.integers(0, 3, size=(60, 1)) * 4
    weights = rng.integers(1, 6, size=60).astype(np.float64)
    repeated = np.repeat(table, weights.astype(int), axis=0)
    return table, weights, repeated, np.ones(len(repeated))


def test_weighted_equals_repeated_with_given_init() -> None:
    table, weights, repeated, _ = repeated_pair()
    start = table[[0, 1, 2]]
    a = KMeans(3, init=start).fit(table, sample_weight=weights)
    b = KMeans(3, init=start).fit(repeated)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-12, atol=1e-12)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-10)
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_array_equal(np.repeat(a.labels_, weights.astype(int)), b.labels_)


def test_weighted_equals_repeated_with_kmeans_plusplus() -> None:
    table, weights, repeated, _ = repeated_pair()
    a = KMeans(3, random_state=0).fit(table, sample_weight=weights)
    b = KMeans(3, random_state=0).fit(repeated)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-9)
    order_a, order_b = np.lexsort(a.cluster_centers_.T), np.lexsort(b.cluster_centers_.T)
    np.testing.assert_allclose(a.cluster_centers_[order_a], b.cluster_centers_[order_b])


def test_minibatch_weighted_matches_repeated_in_quality() -> None:
    table, weights, repeated, _ = repeated_pair()
    a = MiniBatchKMeans(3, batch_size=64, random_state=0).fit(table, sample_weight=weights)
    b = MiniBatchKMeans(3, batch_size=64, random_state=0).fit(repeated)
    # Both score the same objective: the weighted SSE equals the repeated SSE.
    assert a.inertia_ == pytest.approx(b.inertia_, rel=0.05)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
@pytest.mark.parametrize("estimator", [KMeans, MiniBatchKMeans])
def test_non_positive_weights_rejected(bad: float, estimator: type) -> None:
    X = np.arange(10.0).reshape(5, 2)
    weights = np.ones(5)
    weights[2] = bad
    with pytest.raises(ValueError, match="sample_weight"):
        estimator(2).fit(X, sample_weight=weights)


def test_weight_shape_checked() -> None:
    with pytest.raises(ValueError, match="shape"):
        KMeans(2).fit(np.zeros((5, 2)), sample_weight=np.ones(4))


# --------------------------------------------------------------------------
# Hard cases.


def test_more_clusters_than_distinct_points() -> None:
    X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [5.0, 5.0], [1.0, 1.0]] * 3)
    with pytest.warns(ConvergenceWarning, match="3 distinct"):
        km = KMeans(5, random_state=0).fit(X)
    centers = km.cluster_centers_
    assert centers.shape == (3, 2)
    assert np.isfinite(centers).all()
    assert len(np.unique(centers, axis=0)) == 3
    np.testing.assert_array_equal(np.unique(centers, axis=0), np.unique(X, axis=0))
    assert km.inertia_ == 0.0
    np.testing.assert_array_equal(centers[km.labels_], X)


@pytest.mark.parametrize("init", ["random", "array"])
def test_more_clusters_than_distinct_points_other_inits(init: str) -> None:
    X = np.array([[0.0], [0.0], [1.0], [2.0], [2.0]])
    start: str | NDArray[np.float64] = "random" if init == "random" else np.zeros((4, 1))
    with pytest.warns(ConvergenceWarning):
        km = KMeans(4, init=start, random_state=0).fit(X)
    np.testing.assert_allclose(np.sort(km.cluster_centers_[:, 0]), [0.0, 1.0, 2.0], atol=1e-12)


def test_fewer_samples_than_clusters() -> None:
    with pytest.warns(ConvergenceWarning):
        km = KMeans(8, random_state=0).fit([[1.0, 2.0], [3.0, 4.0]])
    assert km.cluster_centers_.shape == (2, 2)


def test_kmeans_plusplus_never_duplicates() -> None:
    X = np.repeat(np.eye(3), 50, axis=0)
    with pytest.warns(ConvergenceWarning):
        centers, indices = kmeans_plusplus(X, 6, random_state=0)
    assert centers.shape == (3, 3)
    assert len(np.unique(centers, axis=0)) == 3
    np.testing.assert_array_equal(centers, X[indices])


def test_kmeans_plusplus_matches_sklearn_quality() -> None:
    X = np.random.default_rng(0).random((1000, 2))
    sample_weight = np.random.default_rng(1).random(1000) + 0.5
    centers, indices = kmeans_plusplus(X, 10, sample_weight=sample_weight, random_state=0)
    assert centers.shape == (10, 2) and indices.shape == (10,)
    ours = KMeans(10, init=centers).fit(X, sample_weight=sample_weight).inertia_
    theirs = skc.KMeans(10, n_init=1, random_state=0).fit(X, sample_weight=sample_weight)
    assert ours <= 1.05 * theirs.inertia_


def test_single_cluster_is_weighted_mean() -> None:
    rng = np.random.default_rng(0)
    X, w = rng.normal(size=(100, 3)), rng.random(100) + 0.1
    km = KMeans(1, random_state=0).fit(X, sample_weight=w)
    np.testing.assert_allclose(km.cluster_centers_[0], np.average(X, axis=0, weights=w))
    assert (km.labels_ == 0).all()
    expected = float(w @ ((X - km.cluster_centers_[0]) ** 2).sum(axis=1))
    assert km.inertia_ == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("k", [1, 3])
def test_all_points_identical(k: int) -> None:
    X = np.full((20, 2), 7.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        km = KMeans(k, random_state=0).fit(X)
        mbk = MiniBatchKMeans(k, random_state=0).fit(X)
    for model in (km, mbk):
        np.testing.assert_array_equal(model.cluster_centers_, [[7.5, 7.5]])
        assert model.inertia_ == 0.0
        assert (model.labels_ == 0).all()


def test_empty_cluster_reseeded_with_farthest_point() -> None:
    # The third start is far from every point, so its cluster is empty after
    # the first assignment; it must restart at the worst-fitting point (12.0).
    X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    start = np.array([[1.0], [5.0], [100.0]])
    first = KMeans(3, init=start).fit(X)
    second = KMeans(3, init=start).fit(X)
    np.testing.assert_array_equal(first.cluster_centers_, second.cluster_centers_)
    assert first.cluster_centers_.shape == (3, 1)
    assert np.isfinite(first.cluster_centers_).all()
    assert len(np.unique(first.cluster_centers_)) == 3
    assert first.inertia_ < KMeans(2, init=start[:2]).fit(X).inertia_


def test_empty_cluster_in_large_data_uses_bounded_path() -> None:
    # Enough work to use the bounded Lloyd iterations, with a dead start.
    rng = np.random.default_rng(0)
    X = rng.random((30000, 3))
    start = np.vstack([rng.random((19, 3)), [[50.0, 50.0, 50.0]]])
    km = KMeans(20, init=start).fit(X)
    assert np.bincount(km.labels_, minlength=20).min() > 0
    np.testing.assert_array_equal(km.labels_, nearest_center(X, km.cluster_centers_))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes(dtype: type) -> None:
    X, y = blobs()
    km = KMeans(4, random_state=0).fit(X.astype(dtype))
    assert km.cluster_centers_.dtype == dtype
    assert km.transform(X.astype(dtype)).dtype == dtype
    assert adjusted_rand_score(y, km.labels_) == 1.0
    mbk = MiniBatchKMeans(4, batch_size=50, random_state=0).fit(X.astype(dtype))
    assert mbk.cluster_centers_.dtype == dtype


def test_float32_and_float64_agree() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((5000, 3))
    a = KMeans(8, init=X[:8]).fit(X)
    b = KMeans(8, init=X[:8]).fit(X.astype(np.float32))
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, atol=1e-3)
    assert b.inertia_ == pytest.approx(a.inertia_, rel=1e-3)


def test_integer_input_accepted() -> None:
    km = KMeans(2, random_state=0).fit([[0, 0], [0, 1], [9, 9], [9, 8]])
    assert km.cluster_centers_.dtype == np.float64
    assert sorted(km.cluster_centers_[:, 0].tolist()) == [0.0, 9.0]


# --------------------------------------------------------------------------
# Determinism.


def test_same_seed_same_result() -> None:
    X = np.random.default_rng(0).random((3000, 4))
    a = KMeans(7, random_state=42).fit(X)
    b = KMeans(7, random_state=42).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    c = MiniBatchKMeans(7, random_state=42).fit(X)
    d = MiniBatchKMeans(7, random_state=42).fit(X)
    np.testing.assert_array_equal(c.cluster_centers_, d.cluster_centers_)


def test_generator_random_state_is_consumed() -> None:
    X = np.random.default_rng(0).random((500, 2))
    rng = np.random.default_rng(5)
    a = KMeans(5, n_init=1, random_state=rng).fit(X).cluster_centers_
    b = KMeans(5, n_init=1, random_state=rng).fit(X).cluster_centers_
    c = KMeans(5, n_init=1, random_state=np.random.default_rng(5)).fit(X).cluster_centers_
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


_THREADS_SCRIPT = textwrap.dedent(
    """
    import hashlib, sys
    import numpy as np
    from quantize.cluster import cluster_table
    from quantize.histogram import color_table, pack_rgb
    from quantize.kmeans import KMeans, MiniBatchKMeans
    rng = np.random.default_rng(0)
    digest = hashlib.sha256()
    for dtype in (np.float32, np.float64):
        X = rng.random((60000, 3)).astype(dtype)
        for model in (KMeans(24, random_state=1), MiniBatchKMeans(24, random_state=1)):
            model.fit(X)
            digest.update(model.cluster_centers_.tobytes() + model.labels_.tobytes())
    table = color_table(pack_rgb(rng.integers(0, 256, (60000, 3), dtype=np.uint8)))
    fit = cluster_table(table.colors / 255.0, table.counts * 1.0, table.keys, 24, random_state=1)
    digest.update(fit.centers.tobytes() + fit.labels.tobytes())
    print(digest.hexdigest())
    """
)


def test_same_result_with_any_number_of_threads() -> None:
    assert len(outputs_by_blas_threads(_THREADS_SCRIPT, ("1", "2", "3"))) == 1


_PIXELS_SCRIPT = textwrap.dedent(
    """
    import hashlib
    from quantize.kmeans import KMeans
    from tests.helpers import sample_rgb
    X = sample_rgb("china.jpg").reshape(-1, 3) / 255
    km = KMeans(16, random_state=0).fit(X)
    digest = hashlib.sha256(km.cluster_centers_.tobytes() + km.labels_.tobytes()).hexdigest()
    print(repr(km.inertia_), km.n_iter_, digest)
    """
)


def test_pixel_fit_inertia_does_not_depend_on_blas_threads() -> None:
    # China's table has about 10**5 rows: BLAS would split the SSE's dot
    # product over its threads (another sum, and spinning workers); the
    # estimators' fit sums without BLAS (quantize._kernels.plain_sums).
    assert len(outputs_by_blas_threads(_PIXELS_SCRIPT, ("1", "2"))) == 1


# --------------------------------------------------------------------------
# API.


def test_predict_transform_fit_predict() -> None:
    X, _ = blobs()
    km = KMeans(4, random_state=0)
    labels = km.fit_predict(X)
    np.testing.assert_array_equal(labels, km.labels_)
    np.testing.assert_array_equal(km.predict(X), labels)
    dist = km.transform(X)
    assert dist.shape == (300, 4)
    np.testing.assert_array_equal(dist.argmin(axis=1), labels)
    expected = np.linalg.norm(X[:, None, :] - km.cluster_centers_[None], axis=2)
    np.testing.assert_allclose(dist, expected, atol=1e-9)
    assert km.n_features_in_ == 2
    assert km.n_iter_ >= 1


def test_inertia_is_weighted_sse_of_labels() -> None:
    rng = np.random.default_rng(0)
    X, w = rng.random((1000, 3)), rng.random(1000) + 0.5
    km = KMeans(6, random_state=0).fit(X, sample_weight=w)
    sse = float(w @ ((X - km.cluster_centers_[km.labels_]) ** 2).sum(axis=1))
    assert km.inertia_ == pytest.approx(sse, rel=1e-9)
    np.testing.assert_array_equal(km.labels_, nearest_center(X, km.cluster_centers_))


def test_not_fitted() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        KMeans(2).predict([[0.0]])
    with pytest.raises(NotFittedError):
        MiniBatchKMeans(2).transform([[0.0]])


def test_feature_mismatch() -> None:
    km = KMeans(2, random_state=0).fit(np.random.default_rng(0).random((10, 3)))
    with pytest.raises(ValueError, match="expecting 3"):
        km.predict(np.zeros((2, 2)))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_clusters": 0}, "n_clusters"),
        ({"n_clusters": 2.5}, "n_clusters"),
        ({"n_clusters": True}, "n_clusters"),
        ({"n_init": 0}, "n_init"),
        ({"n_init": "many"}, "n_init"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": -1.0}, "tol"),
        ({"init": "kmeans"}, "init"),
        ({"init": np.zeros((3, 2))}, "shape"),
        ({"random_state": 1.5}, "random_state"),
    ],
)
def test_invalid_parameters(params: dict[str, object], match: str) -> None:
    model = KMeans(**{"n_clusters": 2, **params})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=match):
        model.fit(np.random.default_rng(0).random((10, 2)))


@pytest.mark.parametrize(
    "X",
    [np.zeros(5), np.zeros((0, 2)), np.zeros((3, 0)), [[0.0, np.nan]], [["a", "b"]]],
)
def test_invalid_data(X: object) -> None:
    with pytest.raises(ValueError):
        KMeans(1).fit(X)  # type: ignore[arg-type]


def test_init_params_stored_untouched() -> None:
    km = KMeans(3, n_init="auto", max_iter=7, tol=0.5, random_state=3)
    assert (km.n_clusters, km.n_init, km.max_iter, km.tol, km.random_state) == (
        3,
        "auto",
        7,
        0.5,
        3,
    )
    km.fit(np.random.default_rng(0).random((20, 2)))
    assert km.n_init == "auto"


def test_explicit_init_with_several_runs_warns() -> None:
    X = np.random.default_rng(0).random((20, 2))
    with pytest.warns(UserWarning, match="n_init"):
        KMeans(2, init=X[:2], n_init=5).fit(X)


def test_check_random_state() -> None:
    rng = np.random.default_rng(1)
    assert check_random_state(rng) is rng
    assert isinstance(check_random_state(None), np.random.Generator)
    a, b = check_random_state(3).random(), check_random_state(np.int64(3)).random()
    assert a == b
    for bad in (-1, 1.0, "x", np.random.RandomState(0)):
        with pytest.raises(ValueError):
            check_random_state(bad)  # type: ignore[arg-type]


def test_nearest_center_ties_go_to_lowest_index() -> None:
    labels = nearest_center([[0.5], [0.0], [1.0]], [[0.0], [1.0]])
    np.testing.assert_array_equal(labels, [0, 0, 1])


# --------------------------------------------------------------------------
# Streaming.


def test_partial_fit_streams_to_the_blobs() -> None:
    X, y = blobs()
    order = np.random.default_rng(0).permutation(len(X))
    model = MiniBatchKMeans(4, random_state=0)
    for chunk in np.array_split(order, 6):
        model.partial_fit(X[chunk])
    assert model.n_steps_ == 6
    assert adjusted_rand_score(y, model.predict(X)) == 1.0


def test_partial_fit_grows_centers_from_later_batches() -> None:
    model = MiniBatchKMeans(3, random_state=0)
    with pytest.warns(ConvergenceWarning):
        model.partial_fit(np.zeros((10, 2)))
    assert model.cluster_centers_.shape == (1, 2)
    model.partial_fit(np.array([[0.0, 0.0], [5.0, 5.0], [9.0, 0.0]] * 4))
    assert model.cluster_centers_.shape == (3, 2)
    assert len(np.unique(model.cluster_centers_, axis=0)) == 3


def test_partial_fit_counts_are_running_means() -> None:
    model = MiniBatchKMeans(1, random_state=0)
    model.partial_fit([[0.0], [2.0]])
    model.partial_fit([[10.0]], sample_weight=[2.0])
    # Running weighted mean of everything seen: (0 + 2 + 2 * 10) / 4.
    np.testing.assert_allclose(model.cluster_centers_, [[5.5]])


def test_partial_fit_after_fit_continues() -> None:
    X, y = blobs()
    model = MiniBatchKMeans(4, random_state=0).fit(X)
    before = model.n_steps_
    model.partial_fit(X[:50])
    assert model.n_steps_ == before + 1
    assert adjusted_rand_score(y, model.predict(X)) == 1.0
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(np.zeros((3, 5)))


def test_minibatch_parameters_validated() -> None:
    X = np.zeros((10, 2))
    for params in ({"batch_size": 0}, {"max_no_improvement": -1}, {"max_iter": 0}):
        with pytest.raises(ValueError):
            MiniBatchKMeans(2, **params).fit(X)

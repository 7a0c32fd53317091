"""The kernels keep every matrix product under ``MAX_PRODUCT`` multiply-adds.

Larger products leave OpenBLAS's small-matrix kernels for its packed,
threaded ones: slower per element, and on a busy machine many times slower.
A recording ndarray subclass sees every product a kernel computes.
"""

from __future__ import annotations

import tracemalloc
from typing import Any, ClassVar

import numpy as np
import pytest

from quantize import _kernels

# Digits-like data: 64 features, as in the estimators' benchmark.
N, D, K = 1797, 64, 10


class Recording(np.ndarray):
    """An array that records the multiply-adds of each matmul it enters."""

    products: ClassVar[list[int]] = []

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        plain = [np.asarray(x) if isinstance(x, Recording) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(np.asarray(x) for x in kwargs["out"])
        if ufunc is np.matmul and method == "__call__":
            a, b = plain
            columns = b.shape[1] if b.ndim == 2 else 1
            Recording.products.append(a.shape[0] * a.shape[-1] * columns)
        return getattr(ufunc, method)(*plain, **kwargs)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    Recording.products = []
    return rng.normal(size=(N, D)), rng.normal(size=(K, D))


def test_assignment_products_stay_small(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, centers = data
    labels, sq = _kernels.assign_nearest(X.view(Recording), centers)
    assert Recording.products and max(Recording.products) <= _kernels.MAX_PRODUCT
    assert sum(Recording.products) == N * D * K
    expected = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(labels, expected.argmin(axis=1))
    np.testing.assert_allclose(sq, expected.min(axis=1), rtol=1e-9)


def test_cluster_sums_products_stay_small(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = data
    labels = np.arange(N) % K
    w = np.ones(N)
    wxt = _kernels.transpose_weighted(X, w)
    sums, totals = _kernels.weighted_sums(wxt.view(Recording), w, labels, K)
    assert Recording.products and max(Recording.products) <= _kernels.MAX_PRODUCT
    for j in range(K):
        np.testing.assert_allclose(sums[j], X[labels == j].sum(axis=0), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(totals, np.bincount(labels, minlength=K))


def test_seeding_products_stay_small(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = data
    big = np.concatenate([X] * 8)  # 4 candidates x 64 features x 14k rows: 3.7M
    chosen = _kernels.kmeans_plusplus_indices(
        big.view(Recording), np.ones(big.shape[0]), K, np.random.default_rng(0)
    )
    assert Recording.products and max(Recording.products) <= _kernels.MAX_PRODUCT
    w = np.ones(big.shape[0])
    plain = _kernels.kmeans_plusplus_indices(big, w, K, np.random.default_rng(0))
    np.testing.assert_array_equal(chosen, plain)


def _peak_bytes(func: Any) -> int:
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_temporaries_stay_small_on_many_features(data: tuple[np.ndarray, np.ndarray]) -> None:
    """No fresh copy of the data for the weighted transpose (unit weights)
    or the exact distances: on small data such copies are mostly page
    faults, a sizeable part of a fit on digits."""
    X, centers = data
    w = np.ones(N)
    assert _peak_bytes(lambda: _kernels.transpose_weighted(X, w)) < X.nbytes // 8
    np.testing.assert_array_equal(_kernels.transpose_weighted(X, w), X.T)
    weighted = _kernels.transpose_weighted(X, np.full(N, 2.0))
    np.testing.assert_array_equal(weighted, 2.0 * X.T)
    assert _peak_bytes(lambda: _kernels.sq_dist_exact(X, centers)) < X.nbytes // 2
    expected = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2)
    np.testing.assert_allclose(_kernels.sq_dist_exact(X, centers), expected, rtol=1e-12)

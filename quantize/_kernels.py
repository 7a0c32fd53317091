"""Kernels of the clustering core: distances, assignment, center updates, seeding.

The internal API shared by :mod:`quantize.kmeans`, :mod:`quantize.cluster`,
:mod:`quantize.restarts` and :mod:`quantize.fixed` (in the manner of
scikit-learn's ``_k_means_common``): the names are unprefixed and
documented, but the module is private to the package.  Every function
assumes validated, C-contiguous input (see :mod:`quantize._validation` and
the estimators' checks); nothing here validates, prints or reads files.

The loops built on these kernels (Lloyd's iterations plain and bounded,
the best of several runs, mini-batch k-means) are in :mod:`quantize.lloyd`:
kept apart, each module stays short enough to read, and the kernels stay
free of the iteration state.

Squared distances use ``||x||^2 - 2 x.c + ||c||^2`` on row blocks small
enough to stay in cache and to keep every matrix product under
``MAX_PRODUCT`` multiply-adds, in the input's precision, clamped at zero.
:func:`assign_nearest` is the one nearest-center search of the core;
:func:`nearest_three` (for the per-row bounds of :mod:`quantize._lloyd`)
and :func:`distances` (the whole matrix) are its variants.  Two more stay
with the only code that needs them, since they compute more than a
nearest center: the lockstep restarts of :mod:`quantize.restarts` (several
runs in one product) and the bin filter of :mod:`quantize.cluster`
(nearest and second nearest under a rounding bound).  8-bit colors are
matched to a palette by :func:`quantize.reduce.nearest_palette`, exactly in
integers in sRGB (:func:`quantize.histogram.nearest_rgb8`).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from quantize._threads import run_stripes

__all__ = [
    "MAX_PRODUCT",
    "FloatArray",
    "assign_nearest",
    "distances",
    "draw",
    "farthest_distinct",
    "kmeans_plusplus_indices",
    "nearest_three",
    "plain_sums",
    "random_init",
    "row_norms",
    "sq_dist_exact",
    "stripe_rows",
    "transpose_weighted",
    "update_centers",
    "weighted_count",
    "weighted_sum",
    "weighted_sums",
    "weighted_sums_of_rows",
]

FloatArray = NDArray[np.floating[Any]]

# Elements of one block of the (rows, k) matrix of weighted_sums' products:
# 2**18 floats is 1 MiB in float32, which stays in the L2 cache of current CPUs.
_BLOCK_ELEMENTS = 1 << 18
# Bytes of one block of the (rows, k) distance matrix of a nearest-center
# search: within the L2 cache whatever the precision.  The float64 blocks
# of twice that, which several passes (argmin, gathers) read again, made
# the searches at k = 256 a quarter slower.
_DISTANCE_BLOCK_BYTES = 1 << 20
_MIN_BLOCK_ROWS = 256
# Up to this many features, weighted sums per cluster are one bincount per
# feature (pixels: 3); above, a product with the cluster indicator matrix
# (digits: 64 bincounts cost several times the product).
_BINCOUNT_MAX_FEATURES = 8
# Elements of the difference buffer of sq_dist_exact (128 KiB of float64:
# small enough to be reused from the heap rather than mapped afresh).
_EXACT_BLOCK_ELEMENTS = 1 << 14
_EXACT_ONE_BLOCK_ELEMENTS = 1 << 15
# Fewest distances (rows x centers) per thread of a nearest-center search:
# below, starting a thread costs more than it saves.
_STRIPE_DISTANCES = 1 << 20

#: Multiply-adds per matrix product: row blocks are cut so that each
#: product stays under this.  OpenBLAS multiplies products of up to 10**6
#: without packing or threads (its small-matrix kernels); larger ones cost
#: more per element, and many times more while other processes keep the
#: cores busy, because its threads wait for each other.  Cutting a product
#: by rows gives the same numbers (every element sums over the same
#: features in the same order); sums over rows change only by rounding.
MAX_PRODUCT = 900_000


# Set by plain_sums(): weighted sums over rows without BLAS.
_PLAIN_SUMS: contextvars.ContextVar[bool] = contextvars.ContextVar("plain_sums", default=False)


@contextlib.contextmanager
def plain_sums() -> Iterator[None]:
    """Within the block, :func:`weighted_sum` and :func:`weighted_sums_of_rows`
    sum without BLAS, on the calling thread (and the threads of
    :mod:`quantize._threads`, which carry the caller's context).

    OpenBLAS splits a dot product of more than 10**4 numbers, or a
    matrix-vector product of more than 9216, over its threads, whose
    workers then spin for a while after each call: a fit that makes such
    a call every few milliseconds keeps a second core busy all along,
    delays the threads that prepare its next steps on that core, and its
    sums depend on the number of BLAS threads.  The estimators fit inside
    this block; the command (one BLAS thread, set by the CLI) keeps BLAS's
    sums, so that its results stay those it has always given.
    """
    token = _PLAIN_SUMS.set(True)
    try:
        yield
    finally:
        _PLAIN_SUMS.reset(token)


def weighted_sum(w: NDArray[np.floating[Any]], values: NDArray[np.floating[Any]]) -> float:
    """``w @ values`` (both (n,)), without BLAS within :func:`plain_sums`."""
    if _PLAIN_SUMS.get():
        return float(np.einsum("i,i->", w, values))
    return float(w @ values)


def weighted_sums_of_rows(
    values: NDArray[np.floating[Any]], w: NDArray[np.floating[Any]]
) -> NDArray[np.floating[Any]]:
    """``values @ w`` ((m, n) by (n,), one sum per row), without BLAS within
    :func:`plain_sums` (each row summed on its own)."""
    if _PLAIN_SUMS.get():
        return np.einsum("ij,j->i", values, w)
    return values @ w


def row_norms(X: FloatArray) -> FloatArray:
    """Squared Euclidean norm of each row, in X's precision."""
    return np.einsum("ij,ij->i", X, X)


def _block_rows(n_centers: int, n_features: int, elements: int = _BLOCK_ELEMENTS) -> int:
    """Rows per block of a (rows, n_centers) matrix computed from
    ``n_features`` coordinates: at most ``elements`` entries (within the
    cache) and under ``MAX_PRODUCT``."""
    per_row = max(n_centers, 1)
    by_product = MAX_PRODUCT // (per_row * max(n_features, 1))
    return max(_MIN_BLOCK_ROWS, min(elements // per_row, by_product))


def _distance_rows(n_centers: int, n_features: int, dtype: np.dtype[Any]) -> int:
    """`_block_rows` of a distance matrix in ``dtype``: `_DISTANCE_BLOCK_BYTES` a block."""
    return _block_rows(n_centers, n_features, _DISTANCE_BLOCK_BYTES // np.dtype(dtype).itemsize)


def assign_nearest(
    X: FloatArray, centers: FloatArray, x_sq: FloatArray | None = None
) -> tuple[NDArray[np.intp], FloatArray]:
    """Nearest center of every row and the squared distance to it.

    Parameters
    ----------
    X : ndarray, shape (n, d)
    centers : ndarray, shape (k, d)
        Cast to X's dtype, so float32 data is assigned in float32.
    x_sq : ndarray, shape (n,), optional
        Precomputed ``row_norms(X)``.

    Returns
    -------
    labels : ndarray of intp, shape (n,)
        Ties go to the lowest center index.
    sq_dist : ndarray, shape (n,), X's dtype
        Squared distances, clamped at zero.
    """
    n = X.shape[0]
    c = np.asarray(centers, dtype=X.dtype)
    k = c.shape[0]
    if x_sq is None:
        x_sq = row_norms(X)
    # argmin only needs ||c||^2 - 2 x.c; ||x||^2 is added to the minimum afterwards.
    minus_two_ct = np.ascontiguousarray(-2.0 * c.T)
    c_sq = row_norms(c)
    labels = np.empty(n, dtype=np.intp)
    sq_dist = np.empty(n, dtype=X.dtype)
    rows = _distance_rows(k, X.shape[1], X.dtype)

    def stripe(first: int, last: int) -> None:
        block = np.empty((min(rows, last - first), k), dtype=X.dtype)
        # Flat positions of each row's first entry: a gather several times
        # faster than take_along_axis.
        offsets = np.arange(block.shape[0]) * k
        for start in range(first, last, rows):
            stop = min(start + rows, last)
            part = block[: stop - start]
            np.matmul(X[start:stop], minus_two_ct, out=part)
            part += c_sq
            lab = labels[start:stop]
            np.argmin(part, axis=1, out=lab)
            np.take(part.reshape(-1), offsets[: stop - start] + lab, out=sq_dist[start:stop])
        out = sq_dist[first:last]
        out += x_sq[first:last]
        np.maximum(out, 0, out=out)

    # Stripes on whole blocks: every block is the product the serial loop makes.
    run_stripes(stripe, n, min_rows=stripe_rows(k, rows), align=rows)
    return labels, sq_dist


def stripe_rows(n_centers: int, block_rows: int) -> int:
    """Fewest rows per thread of a nearest-center search among
    ``n_centers`` centers in blocks of ``block_rows`` rows (also
    :mod:`quantize._lloyd`'s centers x rows search)."""
    return max(block_rows, _STRIPE_DISTANCES // max(n_centers, 1))


def distances(X: FloatArray, centers: FloatArray) -> FloatArray:
    """Euclidean distance (n, k) from every row of X (n, d) to every center
    (k, d), in X's precision: the whole matrix, for ``transform``."""
    c = centers.astype(X.dtype)
    sq = row_norms(X)[:, None] - 2.0 * (X @ c.T) + row_norms(c)
    return np.sqrt(np.maximum(sq, 0, out=sq), out=sq)


def transpose_weighted(X: FloatArray, w: NDArray[np.float64]) -> NDArray[np.float64]:
    """``(w * X).T`` in float64, one contiguous row per feature for bincount.

    Above ``_BINCOUNT_MAX_FEATURES`` features :func:`weighted_sums` reads it
    by rows instead: then it is the transposed view of ``w * X``, or of X
    itself for float64 X and unit weights (read-only: it may share X's
    memory).  A fresh copy of the data is mostly page faults on small data.
    """
    if X.shape[1] > _BINCOUNT_MAX_FEATURES:
        if X.dtype == np.float64 and bool((w == 1).all()):
            return np.asarray(X, dtype=np.float64).T
        return np.multiply(X, w[:, None], dtype=np.float64).T
    out = np.empty((X.shape[1], X.shape[0]), dtype=np.float64)
    np.multiply(X.T, w, out=out)
    return out


def weighted_count(
    labels: NDArray[np.intp], weights: NDArray[np.floating[Any]], k: int
) -> NDArray[np.float64]:
    """Sum of ``weights`` per label, shape (k,)."""
    return np.asarray(np.bincount(labels, weights=weights, minlength=k), dtype=np.float64)


def weighted_sums(
    wxt: NDArray[np.float64], w: NDArray[np.float64], labels: NDArray[np.intp], k: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-cluster weighted coordinate sums (k, d) and total weights (k,)."""
    d, n = wxt.shape
    if d > _BINCOUNT_MAX_FEATURES and k * n <= _BLOCK_ELEMENTS * 16:
        # Many features: products with the (k, rows) indicator matrix of
        # blocks of rows instead of a pass of bincount per feature.
        rows = _block_rows(k, d)
        sums = np.zeros((k, d), dtype=np.float64)
        indicator = np.empty((k, min(rows, n)))
        columns = np.arange(min(rows, n))
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            part = indicator[:, : stop - start]
            part.fill(0.0)
            part[labels[start:stop], columns[: stop - start]] = 1.0
            sums += part @ wxt[:, start:stop].T
        return sums, weighted_count(labels, w, k)
    sums = np.empty((k, d), dtype=np.float64)
    for j, column in enumerate(wxt):
        sums[:, j] = np.bincount(labels, weights=column, minlength=k)
    return sums, weighted_count(labels, w, k)


def sq_dist_exact(A: FloatArray, B: FloatArray) -> NDArray[np.float64]:
    """Squared distances (a, b) from explicit differences.

    Slower than the expansion in :func:`assign_nearest` but exactly zero for equal
    rows, which is what duplicate detection needs.
    """
    n, d = A.shape
    out = np.empty((n, B.shape[0]), dtype=np.float64)
    # Differences of a block of rows at a time, in one reused buffer: a
    # fresh (n, d) temporary per center is mostly page faults on large A.
    # One center reads each block once: larger blocks cost no cache, and
    # fewer of them less numpy overhead (k-means++'s first center).
    elements = _EXACT_BLOCK_ELEMENTS if B.shape[0] > 1 else _EXACT_ONE_BLOCK_ELEMENTS
    rows = max(1, elements // max(d, 1))
    diff = np.empty((min(rows, n), d), dtype=np.result_type(A, B))
    for start in range(0, n, rows):
        part = A[start : start + rows]
        buffer = diff[: part.shape[0]]
        for j, row in enumerate(B):
            np.subtract(part, row, out=buffer)
            out[start : start + part.shape[0], j] = np.einsum("ij,ij->i", buffer, buffer)
    return out


def draw(rng: np.random.Generator, mass: NDArray[np.float64], size: int) -> NDArray[np.intp]:
    """Draw ``size`` indices with probability proportional to ``mass`` (>= 0).

    Rows of zero mass are never drawn.  The caller ensures ``mass.sum() > 0``.
    """
    cdf = np.cumsum(mass)
    total = cdf[-1]
    idx = np.searchsorted(cdf, rng.random(size) * total, side="right")
    # u * total can round up to total: fall back on the last row with mass,
    # which is the first one whose cumulative sum reaches the total.
    last = np.searchsorted(cdf, total, side="left")
    return np.minimum(idx, last).astype(np.intp)


def kmeans_plusplus_indices(
    X: FloatArray,
    w: NDArray[np.float64],
    n_clusters: int,
    rng: np.random.Generator,
    existing: NDArray[np.float64] | None = None,
    n_local_trials: int | None = None,
    *,
    xt: FloatArray | None = None,
    x_sq: FloatArray | None = None,
) -> NDArray[np.intp]:
    """Greedy weighted k-means++ seeding; returns the indices of the chosen rows.

    Each step draws ``n_local_trials`` (default ``2 + int(ln k)``) candidates with probability
    proportional to ``w * D(x)^2`` and keeps the one that lowers the
    potential most (Arthur & Vassilvitskii 2007).  Rows equal to a chosen
    center get exactly zero mass, so they are never drawn again: when every
    row coincides with a center, seeding stops early and the result holds
    the distinct rows, fewer than ``n_clusters``.

    With ``existing`` centers, seeding continues from them and returns only
    the ``n_clusters`` new rows.  ``xt`` (the contiguous ``X.T``) and
    ``x_sq`` (``row_norms(X)``) may be given where the caller has them.
    """
    if n_local_trials is None:
        total = n_clusters + (0 if existing is None else existing.shape[0])
        n_local_trials = 2 + int(math.log(total))
    # Candidates x rows layout: every elementwise pass runs over long
    # contiguous rows, where the rows x candidates layout strides across them.
    if xt is None:
        xt = np.ascontiguousarray(X.T)
    if x_sq is None:
        x_sq = row_norms(X)
    # The rounding bound of _zero_copies, less the chosen center's norm.
    x_sq_max = float(x_sq.max())
    n, d = X.shape
    # Columns per product (candidates, d) x (d, columns), see MAX_PRODUCT.
    columns = max(_MIN_BLOCK_ROWS, MAX_PRODUCT // (n_local_trials * d))
    dist = np.empty((n_local_trials, n), dtype=X.dtype)
    chosen: list[int] = []
    if existing is None or existing.shape[0] == 0:
        first = int(draw(rng, w, 1)[0])
        chosen.append(first)
        closest = sq_dist_exact(X, X[[first]])[:, 0]
    else:
        closest = sq_dist_exact(X, existing).min(axis=1)
    potential = w * closest
    while len(chosen) < n_clusters:
        if not potential.any():
            # The expansion can round a tiny distance to zero: confirm with
            # exact differences before concluding that every row is covered.
            closest = sq_dist_exact(X, _stack_centers(X, chosen, existing)).min(axis=1)
            potential = w * closest
            if not potential.any():
                break
        candidates = draw(rng, potential, n_local_trials)
        rows = X[candidates]
        minus_two_rows = -2.0 * rows
        for start in range(0, n, columns):
            part = slice(start, start + columns)
            np.matmul(minus_two_rows, xt[:, part], out=dist[:, part])
        dist += x_sq
        dist += row_norms(rows)[:, None]
        np.minimum(dist, closest, out=dist)
        np.maximum(dist, 0, out=dist)
        best = int(np.argmin(dist @ w))
        chosen.append(int(candidates[best]))
        closest = dist[best].astype(np.float64)
        _zero_copies(X, closest, x_sq_max, rows[best])
        potential = w * closest
    return np.asarray(chosen, dtype=np.intp)


def _stack_centers(
    X: FloatArray, chosen: list[int], existing: NDArray[np.float64] | None
) -> NDArray[np.float64]:
    parts = [X[chosen].astype(np.float64)]
    if existing is not None:
        parts.insert(0, existing)
    return np.concatenate(parts)


def _zero_copies(
    X: FloatArray, closest: NDArray[np.float64], x_sq_max: float, center: FloatArray
) -> None:
    """Set ``closest`` to exactly 0 on the rows equal to ``center``.

    The expansion leaves them rounding noise of a few ulps of the norms
    (``x_sq_max`` is the largest squared norm of a row); only rows under a
    generous bound on that noise are compared exactly.
    """
    eps = float(np.finfo(X.dtype).eps)
    bound = 64 * eps * (x_sq_max + float(center @ center))
    near = np.flatnonzero(closest <= bound)
    closest[near[(X[near] == center).all(axis=1)]] = 0


def random_init(
    X: FloatArray, w: NDArray[np.float64], n_clusters: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """``n_clusters`` distinct rows drawn with probability proportional to weight."""
    n = X.shape[0]
    idx = rng.choice(n, size=min(n_clusters, n), replace=False, p=w / w.sum())
    return X[np.sort(idx)].astype(np.float64)


def farthest_distinct(
    X: FloatArray, sq_dist: FloatArray, centers: NDArray[np.float64], count: int
) -> NDArray[np.intp]:
    """Up to ``count`` rows farthest from their centers, distinct from every
    center and from each other (ties by row index, so deterministic)."""
    order = np.argsort(-sq_dist, kind="stable")
    picks = np.empty(0, dtype=np.intp)
    start, size = 0, max(8 * count, 64)
    while picks.size < count and start < order.size:
        cand = order[start : start + size]
        start += size
        size *= 2
        # ``sq_dist`` refers to the previous centers and carries rounding
        # noise: only exact differences decide whether a row is new.
        reference = np.concatenate([centers, X[picks].astype(np.float64)])
        cand = cand[sq_dist_exact(X[cand], reference).min(axis=1) > 0]
        _, first = np.unique(X[cand], axis=0, return_index=True)
        cand = cand[np.sort(first)]
        picks = np.concatenate([picks, cand[: count - picks.size]])
    return picks


def update_centers(
    X: FloatArray,
    w: NDArray[np.float64],
    wxt: NDArray[np.float64],
    labels: NDArray[np.intp],
    sq_dist: FloatArray,
    centers: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Weighted means of the clusters; empty clusters get the worst-fitting rows.

    If no row is left that differs from every center (fewer distinct rows
    than clusters), the empty clusters are dropped, so the result may have
    fewer rows than ``centers`` but never a duplicate or NaN one.
    """
    sums, totals = weighted_sums(wxt, w, labels, centers.shape[0])
    filled = totals > 0
    new = centers.copy()
    new[filled] = sums[filled] / totals[filled, None]
    if filled.all():
        return new
    empty = np.flatnonzero(~filled)
    picks = farthest_distinct(X, sq_dist, new[filled], empty.size)
    new[empty[: picks.size]] = X[picks]
    return np.delete(new, empty[picks.size :], axis=0)


def nearest_three(
    X: FloatArray, centers: NDArray[np.float64], x_sq: FloatArray
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
    """Nearest and second-nearest centers of every row, with the distances
    (not squared) to the nearest, and a (n, 2) array of the distances to the
    second and third nearest (``inf`` where there are fewer centers)."""
    n, k = X.shape[0], centers.shape[0]
    ranks = min(3, k)
    # ||c||^2 - 2 x.c as one product [x, 1] . [-2 c, ||c||^2]: adding
    # ||c||^2 to the block separately costs more than the product itself.
    c_aug = _augmented_centers(centers, X.dtype)
    d = X.shape[1]
    first_label = np.zeros(n, dtype=np.intp)
    second_label = np.zeros(n, dtype=np.intp)
    dist = np.full((3, n), np.inf)
    rows = _distance_rows(k, d + 1, X.dtype)

    def stripe(first: int, last: int) -> None:
        # [x, 1] a block at a time, in one buffer: no augmented copy of X.
        x_aug = np.empty((min(rows, last - first), d + 1), dtype=X.dtype)
        x_aug[:, d] = 1
        offsets = np.arange(x_aug.shape[0]) * k
        for start in range(first, last, rows):
            stop = min(start + rows, last)
            block = x_aug[: stop - start]
            block[:, :d] = X[start:stop]
            part = block @ c_aug
            # Flat indexing: several times faster than take/put_along_axis, and
            # an argmin plus a gather beats a min along the short axis.
            flat = part.reshape(-1)
            for rank in range(ranks):
                lab = np.argmin(part, axis=1)
                at = offsets[: stop - start] + lab
                dist[rank, start:stop] = flat[at]
                if rank < 2:
                    (first_label, second_label)[rank][start:stop] = lab
                if rank < ranks - 1:
                    flat[at] = np.inf
        out = dist[:, first:last]
        out += x_sq[first:last]
        np.sqrt(np.maximum(out, 0, out=out), out=out)

    run_stripes(stripe, n, min_rows=stripe_rows(k, rows), align=rows)
    return first_label, second_label, dist[0], dist[1:].T.copy()


def _augmented_centers(centers: NDArray[np.float64], dtype: np.dtype[Any]) -> FloatArray:
    """``[-2 centers.T; ||centers||^2]`` (d + 1, k) in ``dtype``: its product
    with a row ``[x, 1]`` is ``||c||^2 - 2 x.c``."""
    c = np.asarray(centers, dtype=dtype)
    c_aug = np.empty((c.shape[1] + 1, c.shape[0]), dtype=dtype)
    np.multiply(c.T, -2.0, out=c_aug[:-1])
    c_aug[-1] = row_norms(c)
    return c_aug

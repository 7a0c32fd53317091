"""The table of distinct rows: pixel-like data clustered on the image path.

Low-dimensional data with many repeated rows (pixels) is clustered as a
weighted table of its distinct rows, on the image path's coarse-to-fine
strategy (:func:`quantize.cluster.cluster_table`), and mapped to its centers
through that table.  :mod:`quantize.kmeans`'s estimators decide when
(:func:`row_table` says whether the table is worth building); this module
builds the table, its coarse bin keys, and runs the fit on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from quantize._kernels import FloatArray, plain_sums
from quantize._lloyd import LloydResult
from quantize._threads import Deferred

__all__ = ["TABLE_SWAP_TRIES", "RowTable", "fit_table_kmeans", "row_table"]

# The distinct-row path is tried on at most this many features (RGB, RGBA,
# gray + alpha ...) and at least this many rows: below it Lloyd's
# iterations on the rows cost less than building the table.
_TABLE_MAX_FEATURES = 4
_TABLE_MIN_ROWS = 1 << 13
# Off the 8-bit grid, the table must leave at most this fraction of the rows.
_TABLE_MAX_DISTINCT = 0.5
# ... and a probe of its first 8192 rows must repeat some (a sample holds
# fewer repeats than the whole, so this rejects only hopeless data).
_PROBE_MAX_DISTINCT = 0.95
# 8-bit levels: pixels given as integers 0..255 or as floats i / 255.
_GRID_SCALES = (255.0, 1.0)
_GRID_PROBE_ROWS = 256
_GRID_CHUNK = 1 << 15
# Rows of the 2**24-entry lookup that maps packed keys back to table rows.
_N_KEYS = 1 << 24
# Up to this many rows the distinct keys are found by a stable radix sort
# (:func:`_radix_order`): it yields the sorted keys and the permutation
# together.  Above, the command's counting
# (:func:`quantize.histogram.color_table`).
_SORT_MAX_ROWS = 1 << 20

#: Cap on the tries of each swap search of the estimators' fit (the
#: command runs up to 20): their target is a better optimum than one
#: scikit-learn run, not the best of ten, and the swaps are most of the
#: fit's time.  Against scikit-learn ``KMeans(n_init=1)``, 5 seeds each,
#: on six held-out photos (benchmarks/corpus.py) and the two samples at
#: k = 16 and 64, the median inertia stayed below scikit-learn's in 14 of
#: the 16 cases; coffee and chelsea at k = 16 end within 0.1% above it
#: (chelsea also with the full schedule).  Tables whose seed bins are
#: coarse keep the full schedule (:func:`quantize.cluster.cluster_table`):
#: restarts alone fail there.
TABLE_SWAP_TRIES = 4


@dataclass(frozen=True)
class RowTable:
    """The distinct rows of X, how many times each occurs, and where.

    ``keys`` group the rows into coarse bins for the coarse-to-fine path:
    packed 8-bit levels of up to three varying columns, ``r << 16 | g << 8 |
    b`` as for colors (None when more than three columns vary).
    """

    rows: FloatArray
    counts: NDArray[np.float64]
    keys: NDArray[np.uint32] | None
    # The row of the table of every row of X: only the labels of the rows
    # need it, at the end of a fit, so it may be computed meanwhile.
    _inverse: Deferred[NDArray[np.intp]]

    @property
    def inverse(self) -> NDArray[np.intp]:
        """Index into ``rows`` of every row of X, shape (n_samples,)."""
        return self._inverse.result()

    def weights(self, w: NDArray[np.float64] | None) -> NDArray[np.float64]:
        """Per-row weight: the count, or the sum of the rows' sample weights."""
        if w is None:
            return self.counts
        return np.asarray(
            np.bincount(self.inverse, weights=w, minlength=self.rows.shape[0]), dtype=np.float64
        )


def row_table(X: FloatArray, *, grid_only: bool = False) -> RowTable | None:
    """The table of distinct rows when it is the faster way to cluster X:
    at most 4 features, 8192 rows or more, and either values on an 8-bit
    grid (pixels) or, unless ``grid_only``, at most half as many distinct
    rows as rows."""
    n, d = X.shape
    if d > _TABLE_MAX_FEATURES or n < _TABLE_MIN_ROWS:
        return None
    grid = _grid_levels(X)
    if grid is not None:
        return _grid_table(X, *grid)
    if grid_only or _all_distinct(X[:_TABLE_MIN_ROWS]):
        return None
    rows, inverse, counts = np.unique(X, axis=0, return_inverse=True, return_counts=True)
    if rows.shape[0] > _TABLE_MAX_DISTINCT * n:
        return None
    keys = _range_keys(rows)
    return RowTable(rows, counts.astype(np.float64), keys, Deferred.ready(inverse.reshape(-1)))


def _all_distinct(X: FloatArray) -> bool:
    """Whether the rows of a probe are (nearly) all distinct: then sorting
    every row to count the repeats would be wasted."""
    return bool(np.unique(X, axis=0).shape[0] > _PROBE_MAX_DISTINCT * X.shape[0])


def _grid_levels(X: FloatArray) -> tuple[NDArray[np.uint8], float] | None:
    """X's values as 8-bit levels, and the scale ``s``, when every value is
    exactly ``level / s`` (255: pixels / 255; 1: pixels as numbers)."""
    flat = X.reshape(-1)
    for scale in _GRID_SCALES:
        if _on_grid(flat[: _GRID_PROBE_ROWS * X.shape[1]], scale) is not None:
            levels = _on_grid(flat, scale)
            if levels is not None:
                return levels.reshape(X.shape), scale
    return None


def _on_grid(flat: FloatArray, scale: float) -> NDArray[np.uint8] | None:
    """The levels ``rint(flat * scale)`` when they divide back to ``flat``
    exactly (so equal levels <=> equal values), else None.  In chunks that
    stay in cache: five passes over the data otherwise cost more than the
    sort that counts the distinct rows."""
    s = flat.dtype.type(scale)
    levels = np.empty(flat.shape, dtype=np.uint8)
    size = min(flat.size, _GRID_CHUNK)
    q = np.empty(size, dtype=flat.dtype)
    back = np.empty(size, dtype=flat.dtype)
    for start in range(0, flat.size, _GRID_CHUNK):
        part = flat[start : start + _GRID_CHUNK]
        n = part.size
        np.multiply(part, s, out=q[:n])
        np.rint(q[:n], out=q[:n])
        # Values off 0..255 cast to some level that cannot divide back to them.
        with np.errstate(invalid="ignore"):
            lv = levels[start : start + n]
            np.copyto(lv, q[:n], casting="unsafe")
        np.divide(lv, s, out=back[:n], dtype=flat.dtype)
        if not np.array_equal(back[:n], part):
            return None
    return levels


def _pack_levels(levels: NDArray[np.uint8], columns: list[int]) -> NDArray[np.uint32]:
    """``c0 << 16 | c1 << 8 | c2`` of up to three columns (missing ones 0)."""
    from quantize.histogram import pack_rgb

    if columns == [0, 1, 2] and levels.shape[1] == 3:
        return pack_rgb(levels)  # pixels: no copy of the levels
    padded = np.zeros((levels.shape[0], 3), dtype=np.uint8)
    for i, j in enumerate(columns):
        padded[:, i] = levels[:, j]
    return pack_rgb(padded)


def _varying(levels: NDArray[np.uint8]) -> list[int]:
    """Columns that hold more than one level."""
    lo, hi = levels.min(axis=0), levels.max(axis=0)
    return [j for j in range(levels.shape[1]) if lo[j] != hi[j]]


def _grid_table(X: FloatArray, levels: NDArray[np.uint8], scale: float) -> RowTable:
    """Distinct rows of 8-bit data by their packed levels (a radix sort or a
    histogram, as for an image's colors)."""
    from quantize.histogram import color_table

    # A constant column adds nothing to a key: drop it from RGBA-like data.
    varying = list(range(levels.shape[1])) if levels.shape[1] <= 3 else _varying(levels)
    if len(varying) <= 3:
        keys = _pack_levels(levels, varying)
        if keys.size <= _SORT_MAX_ROWS:
            distinct, counts, inverse = _sorted_keys(keys)
        else:
            table = color_table(keys)
            distinct, counts = table.keys, table.counts.astype(np.float64)
            inverse = Deferred(lambda: _lookup_rows(distinct, keys))
        rows = _rows_of_keys(X, distinct, varying, scale)
        return RowTable(rows, counts, distinct, inverse)
    packed = np.ascontiguousarray(levels).view(np.uint32).reshape(-1)
    _, first, inv, n = np.unique(packed, return_index=True, return_inverse=True, return_counts=True)
    return RowTable(X[first], n.astype(np.float64), None, Deferred.ready(inv.reshape(-1)))


def _sorted_keys(
    keys: NDArray[np.uint32],
) -> tuple[NDArray[np.uint32], NDArray[np.float64], Deferred[NDArray[np.intp]]]:
    """Distinct keys (sorted), their counts, and (deferred) the position of
    every key among them, from a stable sort of the keys: equal keys keep
    their rows' order, as a sort of ``key << 32 | row`` would order them."""
    n = keys.size
    order = _radix_order(keys)
    ordered = keys[order]
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    first = np.flatnonzero(starts)
    counts = np.diff(first, append=n).astype(np.float64)

    def inverse() -> NDArray[np.intp]:
        position = np.cumsum(starts, dtype=np.intp)
        position -= 1  # in place: each temporary of n rows is fresh memory
        out = np.empty(n, dtype=np.intp)
        out[order] = position
        return out

    return ordered[first], counts, Deferred(inverse)


def _radix_order(keys: NDArray[np.uint32]) -> NDArray[np.intp]:
    """The stable sorting permutation of 24-bit keys, in two passes of
    16 and 8 bits: numpy's stable argsort of 16-bit integers is a radix
    sort, a few times faster than a comparison sort of 64-bit integers,
    and of 8-bit integers a single counting pass."""
    low = np.bitwise_and(keys, 0xFFFF, dtype=np.uint32).astype(np.uint16)
    order = np.argsort(low, kind="stable")
    high = np.right_shift(keys, 16, dtype=np.uint32).astype(np.uint8)
    return order[np.argsort(high[order], kind="stable")]


def _lookup_rows(distinct: NDArray[np.uint32], keys: NDArray[np.uint32]) -> NDArray[np.intp]:
    """Position of every key among the sorted ``distinct`` keys, by a
    2**24-entry lookup."""
    lookup = np.empty(_N_KEYS, dtype=np.int32)
    lookup[distinct] = np.arange(distinct.size, dtype=np.int32)
    return lookup[keys].astype(np.intp)


def _rows_of_keys(
    X: FloatArray, keys: NDArray[np.uint32], varying: list[int], scale: float
) -> FloatArray:
    """The rows of X that packed to ``keys``, rebuilt from them: ``level /
    scale`` is exactly X's value (checked by :func:`_on_grid`), and the
    table is a few times shorter than X."""
    rows = np.empty((keys.shape[0], X.shape[1]), dtype=X.dtype)
    s = X.dtype.type(scale)
    for j in range(X.shape[1]):
        if j in varying:
            shift = np.uint32(16 - 8 * varying.index(j))
            np.divide((keys >> shift) & np.uint32(0xFF), s, out=rows[:, j], dtype=X.dtype)
        else:
            rows[:, j] = X[0, j]
    return rows


def _range_keys(rows: FloatArray) -> NDArray[np.uint32] | None:
    """Bin keys of rows off the 8-bit grid: each varying column cut into 256
    equal steps of its range (None when more than three columns vary)."""
    lo, hi = rows.min(axis=0), rows.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    levels = np.minimum((rows - lo) * (256.0 / span), 255).astype(np.uint8)
    varying = [j for j in range(rows.shape[1]) if hi[j] > lo[j]]
    return _pack_levels(levels, varying) if len(varying) <= 3 else None


def fit_table_kmeans(
    table: RowTable,
    w: NDArray[np.float64] | None,
    n_clusters: int,
    n_init: int,
    max_iter: int,
    rng: np.random.Generator,
) -> LloydResult:
    """The image path's coarse-to-fine k-means on the distinct rows, with at
    most ``TABLE_SWAP_TRIES`` tries per swap search; labels and inertia of
    every original row."""
    from quantize.cluster import cluster_table

    # Sums without BLAS's threads (see plain_sums): the same up to rounding.
    with plain_sums():
        fit = cluster_table(
            table.rows.astype(np.float64, copy=False),
            table.weights(w),
            table.keys,
            n_clusters,
            n_init=n_init,
            max_iter=max_iter,
            random_state=rng,
            max_swap_tries=TABLE_SWAP_TRIES,
        )
    return LloydResult(fit.centers, fit.labels[table.inverse], fit.inertia, fit.n_iter)

"""Lloyd's iterations, the best of several runs, and mini-batch k-means.

The iteration loops of the clustering core, built on the kernels of
:mod:`quantize._kernels` and shared by :mod:`quantize.kmeans` (the
estimators), :mod:`quantize.cluster` (the image path), :mod:`quantize.restarts`
and :mod:`quantize.fixed`.  Private to the package, unprefixed names, as
scikit-learn's ``_k_means_lloyd``; input is validated by the callers.

Lloyd's iterations stop when the weighted SSE improves by less than ``tol``
relative to its previous value.  The SSE comes free from per-cluster
sufficient statistics (weight, weighted sums, weighted squared norms) of
data shifted to its mean, which also keeps the distance expansion accurate
far from the origin.  On larger data, per-row bounds in the spirit of
Hamerly (2010) (:class:`_Bounds`) let the late iterations revisit only the
rows near a Voronoi boundary; the result is the same as with full passes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from quantize._kernels import (
    FloatArray,
    assign_nearest,
    kmeans_plusplus_indices,
    nearest_three,
    random_init,
    row_norms,
    stripe_rows,
    transpose_weighted,
    update_centers,
    weighted_count,
    weighted_sum,
    weighted_sums,
)
from quantize._threads import run_stripes

__all__ = [
    "BOUNDS_MIN_ROWS",
    "BOUNDS_MIN_WORK",
    "DENSE_MAX_PRODUCT",
    "DENSE_MAX_WORK",
    "LloydResult",
    "MiniBatchResult",
    "Prepared",
    "augment_centers",
    "best_of",
    "distinct_rows_result",
    "index_count_rows",
    "lloyd",
    "lloyd_dense",
    "lloyd_plain",
    "lloyd_step_rounded",
    "minibatch_fit",
    "minibatch_run",
    "minibatch_step",
    "nearest_two",
    "plain_passes",
    "prepare",
]

# Below this many point-center pairs, or this many rows, a full assignment
# pass is cheaper than the per-row bounds that let Lloyd's iterations skip
# most rows (their setup finds three nearest centers per row, which a few
# thousand rows do not win back); on the tens of thousands of 6-bit bins
# of a photo they skip most rows after the first few iterations.
BOUNDS_MIN_WORK = 1 << 18
BOUNDS_MIN_ROWS = 8192
#: Multiply-adds per product of the estimators' dense Lloyd steps: numpy's
#: OpenBLAS splits larger products over its threads (from 2**19 on, below
#: quantize._kernels' MAX_PRODUCT), whose waits for each other cost many
#: times the product while other processes keep the cores busy.
DENSE_MAX_PRODUCT = 1 << 19
# Up to this many features and clusters, lloyd_plain assigns the rows in a
# centers x rows layout (see _assign_columns): numpy's argmin along rows of
# a few distances costs a fixed amount per row, several times the
# elementwise passes over long rows that replace it; they cost one pass per
# cluster, which loses from about 32 clusters on.
_COLUMNS_MAX_FEATURES = 4
_COLUMNS_MAX_K = 24
# Scores per block of that layout: within the L2 cache, and products of at
# most DENSE_MAX_PRODUCT multiply-adds.
_COLUMNS_BLOCK_ELEMENTS = 1 << 18
# Above this many features, the statistics of the rows that change cluster
# are moved by a matrix product rather than a bincount per feature (the
# image path's colors have 3).
_MOVE_BINCOUNT_MAX_FEATURES = 8


@dataclass(frozen=True)
class Prepared:
    """Data ready for Lloyd's iterations, computed once for all restarts.

    ``X`` is shifted by ``shift`` (its mean): distances do not change, but
    the norms become small, which keeps the expansion of the distances and
    the SSE from sufficient statistics accurate far from the origin.
    """

    X: FloatArray
    shift: NDArray[np.float64]
    w: NDArray[np.float64]
    x_sq: FloatArray
    wxt: NDArray[np.float64]
    wx_sq: NDArray[np.float64]

    @cached_property
    def xt(self) -> FloatArray:
        """``X`` transposed, contiguous (d, n): made when first asked for."""
        return self.xt_aug[:-1]

    @cached_property
    def xt_aug(self) -> FloatArray:
        """``X`` transposed over a row of ones, contiguous (d + 1, n): its
        product with ``[-2 c, ||c||^2]`` is the score ``||c||^2 - 2 c.x``
        of :func:`_assign_columns`.  Its first d rows are :attr:`xt`."""
        n, d = self.X.shape
        out = np.empty((d + 1, n), dtype=self.X.dtype)
        out[:d] = self.X.T
        out[d] = 1
        return out

    @cached_property
    def xt_aug32(self) -> NDArray[np.float32]:
        """:attr:`xt_aug` in float32, for the first pass of
        :func:`lloyd_step_rounded` and the float32 steps of
        :func:`lloyd_dense`: made when first asked for."""
        return self.xt_aug.astype(np.float32)


def prepare(X: FloatArray, w: NDArray[np.float64], n_clusters: int | None = None) -> Prepared:
    """X (n, d) and its weights (n,) ready for Lloyd's iterations: shifted to
    the mean, with the row norms and weighted transpose computed once.
    With ``n_clusters``, also the transposed rows when plain passes with
    that many centers read them (see :func:`_assign`), so that all of it
    can be made ahead, on another thread."""
    shift = X.mean(axis=0, dtype=np.float64)
    centered = X - shift.astype(X.dtype)
    x_sq = row_norms(centered)
    prep = Prepared(centered, shift, w, x_sq, transpose_weighted(centered, w), w * x_sq)
    if n_clusters is not None and _columns_layout(X.shape[1], n_clusters):
        prep.xt  # noqa: B018  # made now: a cached property
    return prep


@dataclass(frozen=True)
class _Stats:
    """Per-cluster row count, weight, weighted coordinate sums and weighted
    squared norms: everything the center update and the SSE need."""

    counts: NDArray[np.intp]
    totals: NDArray[np.float64]
    sums: NDArray[np.float64]
    sq_sums: NDArray[np.float64]

    @classmethod
    def of(cls, prep: Prepared, labels: NDArray[np.intp], k: int) -> _Stats:
        sums, totals = weighted_sums(prep.wxt, prep.w, labels, k)
        sq_sums = weighted_count(labels, prep.wx_sq, k)
        return cls(np.bincount(labels, minlength=k), totals, sums, sq_sums)

    def move_rows(
        self,
        prep: Prepared,
        rows: NDArray[np.intp],
        old: NDArray[np.intp],
        new: NDArray[np.intp],
    ) -> None:
        """Update in place for ``rows`` changing cluster from ``old`` to ``new``."""
        k = self.totals.shape[0]
        w, wx_sq = prep.w[rows], prep.wx_sq[rows]
        if prep.wxt.shape[0] > _MOVE_BINCOUNT_MAX_FEATURES:
            # Many features: one product with the (k, rows) matrix of +1 at
            # the new cluster and -1 at the old one.  wxt is then the
            # transposed view of contiguous weighted rows: take those.
            wx = np.take(prep.wxt.T, rows, axis=0)
            change = np.zeros((k, rows.size))
            columns = np.arange(rows.size)
            change[new, columns] = 1.0
            change[old, columns] = -1.0
            self.counts[:] += np.bincount(new, minlength=k) - np.bincount(old, minlength=k)
            self.totals[:] += change @ w
            self.sq_sums[:] += change @ wx_sq
            step = max(1, DENSE_MAX_PRODUCT // max(k * wx.shape[1], 1))
            for start in range(0, rows.size, step):
                self.sums[:] += change[:, start : start + step] @ wx[start : start + step]
            return
        wxt = np.take(prep.wxt, rows, axis=1)
        for labels, sign in ((old, -1), (new, 1)):
            self.counts[:] += sign * np.bincount(labels, minlength=k)
            self.totals[:] += sign * np.bincount(labels, weights=w, minlength=k)
            self.sq_sums[:] += sign * np.bincount(labels, weights=wx_sq, minlength=k)
            for j, column in enumerate(wxt):
                self.sums[:, j] += sign * np.bincount(labels, weights=column, minlength=k)

    def means(self) -> NDArray[np.float64]:
        return self.sums / self.totals[:, None]

    def inertia(self, centers: NDArray[np.float64]) -> float:
        """Weighted SSE of the clusters around ``centers``:
        sum over clusters of ``sum w|x|^2 - 2 c.sum(w x) + W |c|^2``."""
        per_cluster = self.sq_sums - 2 * np.einsum("ij,ij->i", centers, self.sums)
        per_cluster += self.totals * row_norms(centers)
        return float(np.maximum(per_cluster, 0).sum())


class _Bounds:
    """Per-row bounds that let late Lloyd iterations skip almost every row.

    Each row remembers its nearest center ``a`` and second-nearest ``b``,
    a lower bound on (distance to any other center) - (distance to ``a``),
    and a lower bound on the distance to every center other than ``a`` and
    ``b``.  Centers that move by ``delta`` change a distance by at most
    ``delta``; the moves are accumulated per center (``drift``) and their
    per-iteration maximum globally (``max_drift``), so a bound is stored
    once as a "key" and compared against the current drift, without
    touching every row at every iteration (Hamerly 2010, with a second
    center as in Elkan 2003 but only one extra label per row).

    A row whose margin may have vanished is first checked against its two
    remembered centers (two distances instead of k) and only falls back to
    a full pass over all centers when a third center might have come
    closer.  Labels stay the exact nearest-center assignment (up to rounding
    at exact ties).
    """

    def __init__(self, prep: Prepared, centers: NDArray[np.float64]) -> None:
        n, k = prep.X.shape[0], centers.shape[0]
        self.drift = np.zeros(k)
        self.max_drift = 0.0
        self.labels = np.empty(n, dtype=np.intp)
        self.second = np.empty(n, dtype=np.intp)
        # Keys: near_key + drift[label] bounds the distance to the nearest
        # center from above, second_key - drift[second] the distance to the
        # second from below, rest_key - max_drift that to any other center.
        # Bounding the second center by its own drift rather than the
        # largest one keeps most rows settled while a single center creeps.
        self.near_key = np.empty(n)
        self.second_key = np.empty(n)
        self.rest_key = np.empty(n)
        self._recompute(prep, slice(None), centers)

    def _recompute(
        self, prep: Prepared, rows: NDArray[np.intp] | slice, centers: NDArray[np.float64]
    ) -> None:
        """Full pass over ``rows`` (indices, or ``slice(None)`` for every
        row: then without copies of the rows)."""
        x = prep.X[rows] if isinstance(rows, slice) else np.take(prep.X, rows, axis=0)
        first, second, d1, d23 = nearest_three(x, centers, prep.x_sq[rows])
        self.labels[rows] = first
        self.second[rows] = second
        self.near_key[rows] = d1 - self.drift[first]
        self.second_key[rows] = d23[:, 0] + self.drift[second]
        self.rest_key[rows] = d23[:, 1] + self.max_drift

    def update(
        self,
        prep: Prepared,
        old: NDArray[np.float64],
        new: NDArray[np.float64],
        stats: _Stats,
    ) -> None:
        """Bring the labels up to date with ``new`` centers; keep ``stats`` in step."""
        moved = np.sqrt(row_norms(new - old))
        self.drift += moved
        self.max_drift += float(moved.max())
        near = self.near_key + self.drift[self.labels]
        others = self.second_key - self.drift[self.second]
        np.minimum(others, self.rest_key - self.max_drift, out=others)
        rows = np.flatnonzero(near >= others)
        if rows.size == 0:
            return
        before = self.labels[rows]
        unresolved = self._check_pair(prep, rows, new)
        if unresolved.size:
            self._recompute(prep, unresolved, new)
        after = self.labels[rows]
        changed = np.flatnonzero(after != before)
        if changed.size:
            stats.move_rows(prep, rows[changed], before[changed], after[changed])

    def _check_pair(
        self, prep: Prepared, rows: NDArray[np.intp], centers: NDArray[np.float64]
    ) -> NDArray[np.intp]:
        """Settle rows whose nearest center is one of their two remembered
        ones; return the rows that need a full pass."""
        # np.take: several times faster than fancy indexing of 2-D arrays.
        x = np.take(prep.X, rows, axis=0)
        a, b = self.labels[rows], self.second[rows]
        da = np.sqrt(row_norms(x - np.take(centers, a, axis=0)))
        db = np.sqrt(row_norms(x - np.take(centers, b, axis=0)))
        rest = self.rest_key[rows] - self.max_drift
        swap = db < da
        near = np.where(swap, db, da)
        settled = near < rest
        keep = rows[settled]
        label = np.where(swap, b, a)[settled]
        other = np.where(swap, a, b)[settled]
        self.labels[keep] = label
        self.second[keep] = other
        self.near_key[keep] = near[settled] - self.drift[label]
        self.second_key[keep] = np.where(swap, da, db)[settled] + self.drift[other]
        return rows[~settled]


@dataclass(frozen=True)
class LloydResult:
    """Where Lloyd's iterations ended: centers (k', d) in the original
    coordinates, the nearest-center labels (n,) of the rows, their weighted
    SSE and the number of center updates."""

    centers: NDArray[np.float64]
    labels: NDArray[np.intp]
    inertia: float
    n_iter: int
    # Where bounded iterations left off, to go on without setting the
    # bounds up again (see lloyd's ``resume``).
    state: _BoundedState | None = None

    def after(self, n_iter: int) -> LloydResult:
        """This run, kept as the continuation of runs of ``n_iter`` center
        updates: its ``n_iter`` counts both."""
        return replace(self, n_iter=n_iter + self.n_iter)


@dataclass(frozen=True)
class _BoundedState:
    """Bounds, statistics and centered centers of a bounded Lloyd run."""

    bounds: _Bounds
    stats: _Stats
    centers: NDArray[np.float64]


def lloyd(
    prep: Prepared,
    centers: NDArray[np.float64],
    max_iter: int,
    tol: float,
    resume: LloydResult | None = None,
) -> LloydResult:
    """Weighted Lloyd iterations from ``centers`` (in the original coordinates).

    Stops after ``max_iter`` center updates or when an update lowers the
    weighted SSE by at most ``tol`` times its previous value.  The last step
    is always an assignment, so the returned labels are the nearest-center
    assignment of the returned centers and ``inertia`` is their SSE.

    ``resume``, a result of an earlier call on the same ``prep`` ending at
    ``centers``, lets bounded iterations go on from its state (consumed).
    """
    if plain_passes(prep.X.shape[0], centers.shape[0]):
        return lloyd_plain(prep, centers, max_iter, tol)
    state = None if resume is None else resume.state
    return _lloyd_bounded(prep, centers, max_iter, tol, state)


def plain_passes(n: int, k: int) -> bool:
    """Whether Lloyd's iterations on ``n`` rows with ``k`` centers take plain
    passes (:func:`lloyd`): bounds pay only on many rows and much work."""
    return n < BOUNDS_MIN_ROWS or n * k < BOUNDS_MIN_WORK


def lloyd_plain(
    prep: Prepared, centers: NDArray[np.float64], max_iter: int, tol: float
) -> LloydResult:
    """Lloyd's iterations with a full assignment pass each time: on small
    data a pass costs less than the bookkeeping that would skip it."""
    c = centers - prep.shift
    # The passes write into the same arrays: the previous labels and
    # distances are spent once the centers are updated.
    reuse = _Scratch()
    labels, sq_dist = _assign(prep, c, reuse)
    inertia = weighted_sum(prep.w, sq_dist)
    n_iter = 0
    while n_iter < max_iter:
        c = update_centers(prep.X, prep.w, prep.wxt, labels, sq_dist, c)
        n_iter += 1
        labels, sq_dist = _assign(prep, c, reuse)
        previous, inertia = inertia, weighted_sum(prep.w, sq_dist)
        if previous - inertia <= tol * previous:
            break
    return LloydResult(c + prep.shift, labels, inertia, n_iter)


def lloyd_step_rounded(prep: Prepared, centers: NDArray[np.float64]) -> LloydResult:
    """One Lloyd step from ``centers`` (original coordinates) whose first
    assignment, which only decides the clusters' means, compares float32
    scores; the last one, which gives the labels and the inertia, is exact
    as :func:`lloyd_plain`'s.  The two assignments differ only for rows
    within rounding of float32 from a boundary, a negligible change of the
    means.  Plain passes in the centers x rows layout (few features and
    clusters, see :func:`_columns_layout`), else :func:`lloyd_plain`."""
    if not _columns_layout(prep.X.shape[1], centers.shape[0]):
        return lloyd_plain(prep, centers, 1, 0.0)
    c = centers - prep.shift
    labels, sq_dist = _assign_columns(prep.xt_aug32, prep.x_sq, c)
    c = update_centers(prep.X, prep.w, prep.wxt, labels, sq_dist, c)
    labels, sq_dist = _assign(prep, c)
    return LloydResult(c + prep.shift, labels, weighted_sum(prep.w, sq_dist), 1)


class _Scratch:
    """Arrays of :func:`_assign_columns` kept from one pass to the next of a
    run: fresh arrays of a large table's size cost page faults (the heap
    returns them to the system between passes) worth a good part of the
    pass itself.  ``out`` holds the last labels and distances, ``blocks``
    the score matrices of each stripe."""

    def __init__(self) -> None:
        self.out: tuple[NDArray[np.intp], FloatArray] | None = None
        self.blocks: dict[tuple[int, int, int], _Block] = {}


@dataclass(frozen=True)
class _Block:
    """Scratch of one block of :func:`_assign_columns`: the scores (k, m),
    and where they equal their column's minimum, as numbers and as bools."""

    scores: FloatArray
    equal: FloatArray
    same: NDArray[np.bool_]

    @classmethod
    def of(cls, k: int, m: int, dtype: np.dtype[Any]) -> _Block:
        scores = np.empty((k, m), dtype=dtype)
        return cls(scores, np.empty_like(scores), np.empty((k, m), dtype=bool))


def _assign(
    prep: Prepared, c: FloatArray, reuse: _Scratch | None = None
) -> tuple[NDArray[np.intp], FloatArray]:
    """:func:`quantize._kernels.assign_nearest` of the prepared rows to ``c``
    (shifted centers), in the layout that costs least for their shape;
    ``reuse`` overwrites the arrays an earlier call returned with it."""
    if _columns_layout(prep.X.shape[1], c.shape[0]):
        return _assign_columns(prep.xt_aug, prep.x_sq, c, reuse)
    return assign_nearest(prep.X, c, prep.x_sq)


def _columns_layout(d: int, k: int) -> bool:
    """Whether plain passes assign rows of ``d`` features to ``k`` centers
    with :func:`_assign_columns`."""
    # One center takes numpy's matrix-vector product, which rounds otherwise.
    return d <= _COLUMNS_MAX_FEATURES and 2 <= k <= _COLUMNS_MAX_K


def _assign_columns(
    xt_aug: FloatArray, x_sq: FloatArray, centers: FloatArray, reuse: _Scratch | None = None
) -> tuple[NDArray[np.intp], FloatArray]:
    """:func:`quantize._kernels.assign_nearest` from the transposed rows
    over a row of ones, ``xt_aug`` (d + 1, n) (``Prepared.xt_aug``), with
    the same labels and squared distances.

    Scores ``||c||^2 - 2 c.x`` are laid out centers x rows: each score is
    the same product of the same numbers as in the rows x centers layout,
    and the minimum over the centers runs along long rows.  ``||c||^2``
    comes in the product, as its last term (times one): the same sum as
    adding it to the product afterwards, one pass fewer over the scores.
    The label is the lowest center at the minimum (:func:`_lowest_at_min`).
    With ``reuse``, the arrays it holds are overwritten (see
    :class:`_Scratch`).
    """
    d_aug, n = xt_aug.shape
    c = np.asarray(centers, dtype=xt_aug.dtype)
    k = c.shape[0]
    c_aug = np.empty((k, d_aug), dtype=xt_aug.dtype)
    np.multiply(c, -2.0, out=c_aug[:, :-1])
    c_aug[:, -1] = row_norms(c)
    index_and_count = index_count_rows(k, xt_aug.dtype)
    scratch = reuse or _Scratch()
    if scratch.out is None:
        scratch.out = np.empty(n, dtype=np.intp), np.empty(n, dtype=xt_aug.dtype)
    labels, sq_dist = scratch.out
    size = max(256, min(_COLUMNS_BLOCK_ELEMENTS // k, DENSE_MAX_PRODUCT // (k * d_aug)))

    def stripe(first: int, last: int) -> None:
        key = (first, last, k)
        if key not in scratch.blocks:
            scratch.blocks[key] = _Block.of(k, min(size, last - first), xt_aug.dtype)
        block = scratch.blocks[key]
        for start in range(first, last, size):
            stop = min(start + size, last)
            m = stop - start
            part, equal, same = block.scores[:, :m], block.equal[:, :m], block.same[:, :m]
            np.matmul(c_aug, xt_aug[:, start:stop], out=part)
            near = np.min(part, axis=0, out=sq_dist[start:stop])
            _lowest_at_min(part, near, equal, index_and_count, labels[start:stop], same)
        out = sq_dist[first:last]
        out += x_sq[first:last]
        np.maximum(out, 0, out=out)

    # Stripes of whole blocks, as assign_nearest cuts them.
    run_stripes(stripe, n, min_rows=stripe_rows(k, size), align=size)
    return labels, sq_dist


@functools.cache
def index_count_rows(k: int, dtype: np.dtype[Any]) -> FloatArray:
    """``[0, 1, ..., k - 1]`` over ``k`` ones, (2, k): small integers, exact
    in any float type, for :func:`_lowest_at_min` and the labels of
    :class:`quantize.restarts.PlainRuns`.  Read-only and cached:
    the swap searches assign a few thousand rows hundreds of times a fit."""
    out = np.stack([np.arange(k), np.ones(k)]).astype(dtype)
    out.flags.writeable = False
    return out


def _lowest_at_min(
    scores: FloatArray,
    near: FloatArray,
    equal: FloatArray,
    index_and_count: FloatArray,
    out: NDArray[np.intp],
    same: NDArray[np.bool_] | None = None,
) -> None:
    """Write into ``out`` (n,) the lowest row of ``scores`` (k, n) equal to
    ``near``, their minimum over the rows: argmin along axis 0, without its
    transposed copy.  One product of the 0/1 matrix ``equal`` (scratch of
    the shape of ``scores``) with ``index_and_count`` gives the index of
    the equal score and how many there are; the rare columns with two (an
    exact tie) take argmin's.  With ``same``, a bool scratch of that shape,
    the comparison writes bools, then copied as numbers: faster than the
    comparison's own cast to floats."""
    if same is None:
        np.equal(scores, near, out=equal, casting="unsafe")
    else:
        np.equal(scores, near, out=same)
        np.copyto(equal, same)
    found = index_and_count @ equal
    out[:] = found[0]
    ties = np.flatnonzero(found[1] > 1)
    if ties.size:
        out[ties] = np.argmin(scores[:, ties], axis=0)


def augment_centers(centers: NDArray[np.float64], out: FloatArray) -> FloatArray:
    """``[-2 c, ||c||^2]`` of ``centers`` (m, d) written into ``out`` (m,
    d + 1) in its precision, and returned: its product with
    :attr:`Prepared.xt_aug` is every row's score ``||c||^2 - 2 c.x``.  The
    norm is that of the rounded ``-2 c``, over 4, so that both terms round
    alike in float32."""
    d = centers.shape[1]
    np.multiply(centers, -2.0, out=out[:, :d], casting="same_kind")
    out[:, d] = row_norms(out[:, :d]) / 4
    return out


def nearest_two(
    prep: Prepared, centers: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]:
    """Nearest center of every row (ties to the lowest index) and the squared
    distances to its nearest and second-nearest centers, for ``centers``
    (k, d) in ``prep``'s shifted coordinates: scores laid out centers x
    rows, so that the minima run along long rows."""
    k, n = centers.shape[0], prep.X.shape[0]
    c_aug = augment_centers(centers, np.empty((k, centers.shape[1] + 1), dtype=prep.X.dtype))
    scores = c_aug @ prep.xt_aug
    near = scores.min(axis=0)
    labels = np.empty(n, dtype=np.intp)
    _lowest_at_min(scores, near, np.empty_like(scores), index_count_rows(k, scores.dtype), labels)
    scores.reshape(-1)[labels * n + np.arange(n)] = np.inf
    second = scores.min(axis=0)
    near += prep.x_sq
    second += prep.x_sq
    return labels, np.maximum(near, 0, out=near), np.maximum(second, 0, out=second)


def _lloyd_bounded(
    prep: Prepared,
    centers: NDArray[np.float64],
    max_iter: int,
    tol: float,
    state: _BoundedState | None = None,
) -> LloydResult:
    """Lloyd's iterations that only revisit the rows :class:`_Bounds` cannot
    vouch for; same results as :func:`lloyd_plain` up to rounding.  With
    ``state`` (left at ``centers``) they go on from there instead of setting
    the bounds up with a full pass."""
    if state is None:
        c = centers - prep.shift
        bounds = _Bounds(prep, c)
        stats = _Stats.of(prep, bounds.labels, c.shape[0])
    else:
        c, bounds, stats = state.centers, state.bounds, state.stats
    inertia = stats.inertia(c)
    n_iter = 0
    while n_iter < max_iter:
        if (stats.counts > 0).all():
            new = stats.means()
            bounds.update(prep, c, new, stats)
            c = new
        else:
            c = _reseed(prep, bounds.labels, c)
            bounds = _Bounds(prep, c)
            stats = _Stats.of(prep, bounds.labels, c.shape[0])
        n_iter += 1
        previous, inertia = inertia, stats.inertia(c)
        if previous - inertia <= tol * previous:
            break
    state = _BoundedState(bounds, stats, c)
    return LloydResult(c + prep.shift, bounds.labels.copy(), inertia, n_iter, state)


# Up to this many row-center pairs, lloyd_dense holds the whole score
# matrix (a float array of this size).
DENSE_MAX_WORK = 1 << 18


def lloyd_dense(
    prep: Prepared, centers: NDArray[np.float64], max_iter: int, tol: float
) -> LloydResult:
    """Lloyd's iterations for small data with many features (digits: 1797
    x 64), the same steps as :func:`lloyd_plain` with less numpy work each.

    * Scores ``||c||^2 - 2 c.x`` are laid out centers x rows, so that the
      minimum over the centers runs along long contiguous rows, and computed
      in products small enough for OpenBLAS to keep on one thread.
    * The cluster statistics follow the rows that change cluster (a few
      after the first steps) instead of being summed afresh each time.
    * On float64 rows the iterations compare float32 scores until they
      converge, then assign exactly; where that moves a row (one within
      float32 rounding of a boundary) they go on in float64 until they
      converge again.  The result ends as :func:`lloyd_plain`'s ends, on
      scores that cost half as much.  Float32 is used only where its
      rounding is a negligible share of the distances (see
      ``_FLOAT32_ROUNDING_SHARE``): otherwise its steps would wander.

    (Per-row bounds do not pay here: on digits half the rows cross them at
    every step.)  The caller ensures ``n * k <= DENSE_MAX_WORK``.
    """
    k = centers.shape[0]
    c = centers - prep.shift
    nearest, labels, sq_dist, inertia = _dense_start(prep, c)
    rounded = nearest.rounded
    stats = _dense_stats(prep, labels, k)
    n_iter = 0
    while True:
        while n_iter < max_iter:
            if (stats.counts > 0).all():
                c = stats.means()
            else:
                c = update_centers(prep.X, prep.w, prep.wxt, labels, sq_dist, c)
                if c.shape[0] < k:
                    return lloyd_plain(prep, c + prep.shift, max_iter - n_iter, tol)
            n_iter += 1
            labels, sq_dist, _ = _relabel(prep, stats, labels, nearest(c))
            previous, inertia = inertia, float(prep.w @ sq_dist)
            if previous - inertia <= tol * previous:
                break
        if not rounded:
            break
        rounded, nearest = False, _DenseScores(prep, k)
        labels, sq_dist, moved = _relabel(prep, stats, labels, nearest(c))
        inertia = float(prep.w @ sq_dist)
        if not moved:
            break
    return LloydResult(c + prep.shift, labels, inertia, n_iter)


def _relabel(
    prep: Prepared,
    stats: _Stats,
    labels: NDArray[np.intp],
    assigned: tuple[NDArray[np.intp], FloatArray],
) -> tuple[NDArray[np.intp], FloatArray, bool]:
    """Move the rows whose label changed to ``assigned``'s (labels (n,),
    squared distances (n,)) in ``stats``: the new labels and distances, and
    whether any row moved."""
    new, sq_dist = assigned
    changed = np.flatnonzero(new != labels)
    if not changed.size:
        return labels, sq_dist, False
    stats.move_rows(prep, changed, labels[changed], new[changed])
    return new, sq_dist, True


# Float32 scores are used where the squared norms of the rows and centers
# stay within these bounds, far from float32's overflow (3e38) and subnormal
# numbers (1e-38) ...
_FLOAT32_SQ_NORMS = (1e-30, 1e30)
# ... and where their rounding is at most this share of the rows' mean
# squared distance to their nearest center: then float32 can only misjudge
# rows that are almost exactly between two centers.
_FLOAT32_ROUNDING_SHARE = 1e-4


def _dense_start(
    prep: Prepared, c: NDArray[np.float64]
) -> tuple[_DenseScores, NDArray[np.intp], FloatArray, float]:
    """The scores :func:`lloyd_dense` starts on, float32 where they suffice
    for float64 rows, and the first assignment to ``c`` (k, d, shifted):
    labels (n,), squared distances (n,) and their weighted sum."""
    k = c.shape[0]
    # Largest squared norm of a row or a center: the scores' magnitude.
    scale = float(prep.x_sq.max()) + float(row_norms(c).max())
    low, high = _FLOAT32_SQ_NORMS
    if prep.X.dtype == np.float64 and low <= scale <= high:
        nearest = _DenseScores(prep, k, np.float32)
        labels, sq_dist = nearest(c)
        inertia = float(prep.w @ sq_dist)
        # Not so where clusters lie far from the mean of all rows compared
        # with their spread: their scores are large numbers that differ little.
        rounding = float(np.finfo(np.float32).eps) * scale
        if rounding <= _FLOAT32_ROUNDING_SHARE * inertia / float(prep.w.sum()):
            return nearest, labels, sq_dist, inertia
    nearest = _DenseScores(prep, k)
    labels, sq_dist = nearest(c)
    return nearest, labels, sq_dist, float(prep.w @ sq_dist)


def _dense_stats(prep: Prepared, labels: NDArray[np.intp], k: int) -> _Stats:
    """:meth:`_Stats.of` with the weighted sums as products of the cluster
    indicator matrix with blocks of rows, each under ``DENSE_MAX_PRODUCT``."""
    n, d = prep.X.shape
    wx = prep.wxt.T
    step = max(1, DENSE_MAX_PRODUCT // max(k * d, 1))
    sums = np.zeros((k, d))
    clusters = np.arange(k)[:, None]
    for start in range(0, n, step):
        part = slice(start, start + step)
        indicator = np.equal(labels[part], clusters).astype(np.float64)
        sums += indicator @ wx[part]
    totals = weighted_count(labels, prep.w, k)
    sq_sums = weighted_count(labels, prep.wx_sq, k)
    return _Stats(np.bincount(labels, minlength=k), totals, sums, sq_sums)


class _DenseScores:
    """Nearest center of every row and the squared distance to it (clamped
    at zero), from a (k, n) score matrix ``||c||^2 - 2 c.x`` in X's
    precision or in ``dtype``, built in products of at most
    ``DENSE_MAX_PRODUCT`` multiply-adds.

    Made once per run of :func:`lloyd_dense`: the score matrices are reused
    at every step, and the products read the contiguous transpose of the
    rows (``Prepared.xt``, or ``Prepared.xt_aug32`` for float32 scores),
    which OpenBLAS multiplies faster than the transposed view of the rows.
    """

    def __init__(self, prep: Prepared, k: int, dtype: type[np.floating[Any]] | None = None) -> None:
        n, d = prep.X.shape
        if dtype is None or dtype == prep.X.dtype:
            self.xt, self.x_sq = prep.xt, prep.x_sq
        else:
            self.xt, self.x_sq = prep.xt_aug32[:-1], prep.x_sq.astype(dtype)
        self.rounded = self.xt.dtype != prep.X.dtype
        self.scores = np.empty((k, n), dtype=self.xt.dtype)
        self.equal = np.empty_like(self.scores)
        self.same = np.empty((k, n), dtype=bool)
        self.index_and_count = index_count_rows(k, self.xt.dtype)
        step = max(1, DENSE_MAX_PRODUCT // max(k * d, 1))
        self.blocks = [slice(start, start + step) for start in range(0, n, step)]

    def __call__(self, c: NDArray[np.float64]) -> tuple[NDArray[np.intp], FloatArray]:
        """Labels (n,) and squared distances (n,) of the rows to ``c`` (k, d),
        shifted centers; fresh arrays, the caller may keep them."""
        scores, xt = self.scores, self.xt
        minus_two_c = (-2.0 * c).astype(xt.dtype)
        for part in self.blocks:
            np.matmul(minus_two_c, xt[:, part], out=scores[:, part])
        scores += row_norms(c).astype(xt.dtype)[:, None]
        sq_dist = scores.min(axis=0)
        labels = np.empty(scores.shape[1], dtype=np.intp)
        _lowest_at_min(scores, sq_dist, self.equal, self.index_and_count, labels, self.same)
        sq_dist += self.x_sq
        return labels, np.maximum(sq_dist, 0, out=sq_dist)


def _reseed(
    prep: Prepared, labels: NDArray[np.intp], centers: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Center update when some cluster is empty (rare): needs exact distances."""
    _, sq_dist = assign_nearest(prep.X, centers, prep.x_sq)
    return update_centers(prep.X, prep.w, prep.wxt, labels, sq_dist, centers)


def _initial_centers(
    X: FloatArray,
    w: NDArray[np.float64],
    n_clusters: int,
    init: str | NDArray[np.float64],
    rng: np.random.Generator,
    n_local_trials: int | None = None,
    prep: Prepared | None = None,
) -> NDArray[np.float64]:
    """Starting centers; k-means++ runs on ``prep``'s centered rows when
    given (same draws up to rounding), reusing their transpose and norms."""
    if isinstance(init, np.ndarray):
        return init.copy()
    if init == "random":
        return random_init(X, w, n_clusters, rng)
    if prep is None:
        chosen = kmeans_plusplus_indices(X, w, n_clusters, rng, n_local_trials=n_local_trials)
    else:
        chosen = kmeans_plusplus_indices(
            prep.X, w, n_clusters, rng, n_local_trials=n_local_trials, xt=prep.xt, x_sq=prep.x_sq
        )
    return X[chosen].astype(np.float64)


def best_of(
    X: FloatArray,
    w: NDArray[np.float64],
    n_clusters: int,
    init: str | NDArray[np.float64],
    n_init: int,
    max_iter: int,
    tol: float,
    rng: np.random.Generator,
    n_local_trials: int | None = None,
    dense: bool = False,
) -> LloydResult:
    """Best of ``n_init`` seeded Lloyd runs by inertia (first one wins ties).

    ``dense`` runs :func:`lloyd_dense` where the data is small enough (the
    estimators' general path; the image path keeps :func:`lloyd`).
    """
    prep = prepare(X, w)
    run: Callable[[Prepared, NDArray[np.float64], int, float], LloydResult] = lloyd
    seed_prep = None
    if dense and X.shape[0] * n_clusters <= DENSE_MAX_WORK:
        run, seed_prep = lloyd_dense, prep
    best: LloydResult | None = None
    for _ in range(n_init):
        start = _initial_centers(X, w, n_clusters, init, rng, n_local_trials, seed_prep)
        if isinstance(init, str) and init == "k-means++" and start.shape[0] < n_clusters:
            # Seeding ran out of distinct rows: they are the exact answer.
            return distinct_rows_result(X, w, start)
        result = run(prep, start, max_iter, tol)
        if best is None or result.inertia < best.inertia:
            best = result
        if result.centers.shape[0] < n_clusters:
            # Too few distinct rows: this run already returned all of them.
            break
    assert best is not None
    return best


def distinct_rows_result(
    X: FloatArray, w: NDArray[np.float64], centers: NDArray[np.float64]
) -> LloydResult:
    """Every row equals one of ``centers``: label it exactly, inertia 0."""
    labels, _ = assign_nearest(X, centers)
    offset = X - centers[labels]
    return LloydResult(centers, labels, float(w @ np.einsum("ij,ij->i", offset, offset)), 0)


# --------------------------------------------------------------------------
# Mini-batch k-means (Sculley 2010), weighted.


def _sample_rows(rng: np.random.Generator, cdf: NDArray[np.float64], size: int) -> NDArray[np.intp]:
    """Rows drawn with replacement with probability proportional to weight."""
    idx = np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right")
    return np.minimum(idx, cdf.size - 1).astype(np.intp)


def minibatch_step(
    X: FloatArray,
    w: NDArray[np.float64],
    x_sq: FloatArray,
    centers: NDArray[np.float64],
    counts: NDArray[np.float64],
) -> float:
    """One mini-batch update of ``centers`` and ``counts``, in place.

    Each center moves towards the mean of its batch points with learning
    rate (batch weight) / (accumulated weight), i.e. it stays the running
    mean of everything it was ever assigned.  Returns the batch's weighted
    SSE against the centers before the update.
    """
    labels, sq = assign_nearest(X, centers, x_sq)
    sums, batch_w = weighted_sums(transpose_weighted(X, w), w, labels, centers.shape[0])
    counts += batch_w
    hit = batch_w > 0
    centers[hit] += (sums[hit] - batch_w[hit, None] * centers[hit]) / counts[hit, None]
    return float(w @ sq)


@dataclass(frozen=True)
class MiniBatchResult:
    """Mini-batch centers (k', d), the weight each has accumulated (k',),
    the batches drawn and the passes over the data they amount to."""

    centers: NDArray[np.float64]
    counts: NDArray[np.float64]
    n_steps: int
    n_iter: int


def _minibatch_seed(
    X: FloatArray,
    w: NDArray[np.float64],
    cdf: NDArray[np.float64],
    n_clusters: int,
    init_size: int,
    n_init: int,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Best of ``n_init`` k-means++ + Lloyd runs on a weight-proportional sample.

    Lloyd's iterations on a few thousand sampled rows are cheap and start
    the mini-batch phase much closer to a good optimum than raw seeding.
    """
    if init_size >= X.shape[0]:
        sample, sample_w = X, w
    else:
        sample = X[_sample_rows(rng, cdf, init_size)]
        sample_w = np.ones(init_size)
    best = best_of(sample, sample_w, n_clusters, "k-means++", n_init, 100, 1e-4, rng)
    centers = best.centers
    missing = n_clusters - centers.shape[0]
    if missing > 0:
        # The sample may hold fewer distinct rows than the data: top up
        # from the whole data set, continuing the k-means++ seeding.
        extra = kmeans_plusplus_indices(X, w, missing, rng, existing=centers)
        centers = np.concatenate([centers, X[extra].astype(np.float64)])
    return centers


def minibatch_fit(
    X: FloatArray,
    w: NDArray[np.float64],
    n_clusters: int,
    *,
    batch_size: int,
    max_iter: int,
    max_no_improvement: int | None,
    n_init: int,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float64], int]:
    """Centers from mini-batch k-means, and the number of passes over X."""
    result = minibatch_run(X, w, n_clusters, batch_size, max_iter, max_no_improvement, n_init, rng)
    return result.centers, result.n_iter


def minibatch_run(
    X: FloatArray,
    w: NDArray[np.float64],
    n_clusters: int,
    batch_size: int,
    max_iter: int,
    max_no_improvement: int | None,
    n_init: int,
    rng: np.random.Generator,
) -> MiniBatchResult:
    """Mini-batch k-means on X (n, d) with weights (n,): seeding on a
    sample (best of ``n_init``), then batches drawn in proportion to the
    weights until ``max_iter`` passes or the early stop."""
    n = X.shape[0]
    cdf = np.cumsum(w)
    init_size = max(3 * batch_size, 3 * n_clusters)
    centers = _minibatch_seed(X, w, cdf, n_clusters, init_size, n_init, rng)
    counts = np.zeros(centers.shape[0])
    x_sq = row_norms(X)
    n_steps = max(1, max_iter * n // batch_size)
    # Batches are drawn in proportion to weight, so every point counts once.
    unit = np.ones(batch_size)
    stop = _EarlyStop(max_no_improvement, min(1.0, 2.0 * batch_size / (n + 1)))
    step = 0
    while step < n_steps:
        idx = _sample_rows(rng, cdf, batch_size)
        step += 1
        sse = minibatch_step(X[idx], unit, x_sq[idx], centers, counts)
        if stop.update(sse / batch_size, first=step == 1):
            break
    return MiniBatchResult(centers, counts, step, math.ceil(step * batch_size / n))


class _EarlyStop:
    """Stop when an exponentially weighted average of the batch SSE has not
    improved for ``patience`` steps (the first batch only measures the seed)."""

    def __init__(self, patience: int | None, alpha: float) -> None:
        self.patience = patience
        self.alpha = alpha
        self.ewa: float | None = None
        self.best = math.inf
        self.stale = 0

    def update(self, batch_sse: float, first: bool) -> bool:
        if first:
            return False
        self.ewa = batch_sse if self.ewa is None else self.ewa + self.alpha * (batch_sse - self.ewa)
        if self.ewa < self.best:
            self.best, self.stale = self.ewa, 0
        else:
            self.stale += 1
        return self.patience is not None and self.stale >= self.patience

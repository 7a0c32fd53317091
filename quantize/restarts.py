"""Several k-means restarts run in lockstep, for small data.

:func:`quantize.kmeans._best_of` runs its restarts one after the other.  On
the few thousand bin means the image path seeds on, that pays numpy's
per-call overhead once per restart and step, and its nearest-center search
is an ``argmin`` along rows of only ``k`` distances, which numpy does one
short row at a time.  Here all restarts advance together instead:

* k-means++ draws each restart's candidates from its own potential (one
  generator, restarts in a fixed order), scores every restart's candidates
  against every row in one matrix product and keeps each restart's best.
* Lloyd's iterations compute the distances of every row to the centers of
  all restarts in one product laid out (restart, center, row), take each
  restart's minimum over its centers (an elementwise reduction over long
  rows, not a per-row ``argmin``), and get every cluster's weighted sums
  from one more product with the one-hot assignment.  A restart stops as
  soon as its own relative SSE improvement is at most ``tol``, exactly as
  :func:`quantize.kmeans._lloyd_plain` would stop it; the others go on.

Each restart computes what a sequential restart computes, up to rounding;
only the order in which the generator is drawn differs.  A row exactly
equidistant from two centers goes to the lower index, as everywhere else,
and empty clusters are reseeded by the sequential update.  Nothing depends
on the number of BLAS threads: products only ever sum over the short
coordinate axis or, for the cluster sums, over the rows of one fixed-size
operand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from quantize.kmeans import (
    _assign,
    _distinct_rows_result,
    _lloyd_plain,
    _LloydResult,
    _prepare,
    _Prepared,
    _row_norms,
    _sq_dist_exact,
    _update_centers,
)

# Restarts are batched only while one step's matrix, candidates (or centers)
# of every restart against every row, stays this small: beyond it the
# arithmetic outweighs the per-call overhead that batching saves, and the
# temporaries would leave the cache.
MAX_BATCH_ELEMENTS = 1 << 20
# Rows per block of the two-level draws of k-means++ (see _draw_runs).
_DRAW_BLOCK = 64


def fits_batch(n_rows: int, n_clusters: int, n_runs: int, n_local_trials: int) -> bool:
    """Whether :func:`best_of_batched` pays on this problem size: several
    runs, on data small enough for one matrix per step."""
    width = n_runs * max(n_clusters, n_local_trials)
    return n_runs > 1 and n_rows * width <= MAX_BATCH_ELEMENTS


def best_of_batched(
    X: NDArray[np.float64],
    w: NDArray[np.float64],
    n_clusters: int,
    n_init: int,
    max_iter: int,
    tol: float,
    rng: np.random.Generator,
    n_local_trials: int,
) -> _LloydResult:
    """Best of ``n_init`` greedy k-means++ + Lloyd runs, advanced together.

    Parameters
    ----------
    X : ndarray of float64, shape (n, d)
    w : ndarray of float64, shape (n,)
        Strictly positive weights.
    n_clusters : int
    n_init : int
        Runs; the one with the lowest inertia is kept (the first on ties).
    max_iter : int
        Cap on the center updates of each run.
    tol : float
        A run stops when an update lowers its SSE by at most ``tol`` times
        the previous value.
    rng : numpy.random.Generator
    n_local_trials : int
        Candidates per greedy k-means++ step.

    Returns
    -------
    _LloydResult
        As :func:`quantize.kmeans._best_of` returns it: the labels are the
        nearest-center assignment of the centers and the inertia their SSE;
        with fewer distinct rows than ``n_clusters``, those rows, exactly.
    """
    seeds = kmeans_plusplus_runs(X, w, n_clusters, n_init, rng, n_local_trials)
    if seeds.shape[1] < n_clusters:
        # Seeding ran out of distinct rows: they are the exact answer.
        return _distinct_rows_result(X, w, X[seeds[0]])
    prep = _prepare(X, w)
    runs = lloyd_runs(prep, X[seeds], max_iter, tol)
    best = runs[int(np.argmin([run.inertia for run in runs]))]
    if best.labels is not None:
        return _LloydResult(best.centers + prep.shift, best.labels, best.inertia, best.n_iter)
    labels, sq_dist = _assign(prep.X, best.centers, prep.x_sq)
    return _LloydResult(best.centers + prep.shift, labels, float(prep.w @ sq_dist), best.n_iter)


# --------------------------------------------------------------------------
# Seeding.


def kmeans_plusplus_runs(
    X: NDArray[np.float64],
    w: NDArray[np.float64],
    n_clusters: int,
    n_runs: int,
    rng: np.random.Generator,
    n_local_trials: int,
) -> NDArray[np.intp]:
    """Row indices (n_runs, n_clusters) chosen by ``n_runs`` greedy weighted
    k-means++ seedings run in lockstep.

    Every step draws ``n_local_trials`` candidates per run, run 0 first, in
    proportion to that run's ``w * D(x)^2``, and each run keeps the
    candidate that lowers its potential most.  Rows equal to a chosen center
    get exactly zero mass.  If a run finds every row covered before
    ``n_clusters`` centers, the result is that run's centers alone, shape
    (1, m) with ``m < n_clusters``: they are all the distinct rows.
    """
    n, d = X.shape
    x_sq = np.einsum("ij,ij->i", X, X)
    # [x, 1, |x|^2]: one product with [-2 c, |c|^2, 1] gives the squared
    # distances, without two more passes over the (candidates, rows) matrix.
    xt_aug = np.empty((d + 2, n))
    xt_aug[:d] = X.T
    xt_aug[d] = 1
    xt_aug[d + 1] = x_sq
    # Masses padded with zeros to whole blocks of _draw_runs.
    padded = -(-n // _DRAW_BLOCK) * _DRAW_BLOCK
    mass = np.zeros((n_runs, padded))
    mass[:, :n] = w
    # Each run reads the generator as a sequential run would, one run after
    # the other, so that the seeds are those of kmeans._best_of (up to
    # rounding) and so is the generator's state afterwards.
    uniform = rng.random((n_runs, 1 + (n_clusters - 1) * n_local_trials))
    chosen = np.empty((n_runs, n_clusters), dtype=np.intp)
    chosen[:, 0] = _draw_runs(uniform[:, :1], mass)[:, 0]
    closest = np.ascontiguousarray(_sq_dist_exact(X, X[chosen[:, 0]]).T)
    potential = mass[:, :n]
    np.multiply(closest, w, out=potential)
    # Reused at every step: fresh memory of this size costs page faults that
    # take as long as the arithmetic.
    dist = np.empty((n_runs * n_local_trials, n))
    for step in range(1, n_clusters):
        for r in np.flatnonzero(~potential.any(axis=1)):
            # The expansion can round a tiny distance to zero: confirm with
            # exact differences before concluding that every row is covered.
            closest[r] = _sq_dist_exact(X, X[chosen[r, :step]]).min(axis=1)
            potential[r] = closest[r] * w
            if not potential[r].any():
                return chosen[r : r + 1, :step].copy()
        draws = uniform[:, 1 + (step - 1) * n_local_trials : 1 + step * n_local_trials]
        candidates = _draw_runs(draws, mass).ravel()
        rows = X[candidates]
        rows_aug = np.empty((candidates.size, d + 2))
        np.multiply(rows, -2.0, out=rows_aug[:, :d])
        rows_aug[:, d] = _row_norms(rows)
        rows_aug[:, d + 1] = 1
        # Candidates x rows layout: elementwise passes run over long rows.
        np.matmul(rows_aug, xt_aug, out=dist)
        by_run = dist.reshape(n_runs, n_local_trials, n)
        np.minimum(by_run, closest[:, None, :], out=by_run)
        # Rounding can leave tiny negative distances: harmless in the
        # scores, clamped in the potential that is drawn from.
        best = np.argmin((dist @ w).reshape(n_runs, n_local_trials), axis=1)
        best += np.arange(n_runs) * n_local_trials
        chosen[:, step] = candidates[best]
        closest = np.maximum(dist[best], 0)
        _zero_copies_runs(X, closest, x_sq, rows[best])
        potential = np.multiply(closest, w, out=potential)
    return chosen


def _draw_runs(uniform: NDArray[np.float64], mass: NDArray[np.float64]) -> NDArray[np.intp]:
    """One index per entry of ``uniform`` (runs, size), uniform in [0, 1),
    drawn from its run's row of ``mass`` (runs, m) with probability
    proportional to the mass; ``m`` is a multiple of ``_DRAW_BLOCK``.  The
    index is the one :func:`quantize.kmeans._draw` maps the same number to,
    up to rounding at the boundaries.

    Two levels: a block of ``_DRAW_BLOCK`` rows in proportion to its total,
    then a row within it.  A cumulative sum over every row, as
    :func:`quantize.kmeans._draw` takes, would cost more than the rest of a
    seeding step.  Rows of zero mass are never drawn.
    """
    n_runs, m = mass.shape
    blocks = mass.reshape(n_runs, m // _DRAW_BLOCK, _DRAW_BLOCK)
    block_cdf = np.cumsum(blocks.sum(axis=2), axis=1)
    total = block_cdf[:, -1:]
    targets = uniform * total
    # First block whose cumulative mass exceeds the target; u * total can
    # round up to total, hence at most the first block that reaches it.
    block = np.count_nonzero(block_cdf[:, None, :] <= targets[:, :, None], axis=2)
    np.minimum(block, np.count_nonzero(block_cdf < total, axis=1)[:, None], out=block)
    before = np.take_along_axis(block_cdf, np.maximum(block - 1, 0), axis=1)
    residual = targets - np.where(block > 0, before, 0)
    inner = np.cumsum(blocks[np.arange(n_runs)[:, None], block], axis=2)
    pick = np.count_nonzero(inner <= residual[:, :, None], axis=2)
    np.minimum(pick, np.count_nonzero(inner < inner[:, :, -1:], axis=2), out=pick)
    return (block * _DRAW_BLOCK + pick).astype(np.intp)


def _zero_copies_runs(
    X: NDArray[np.float64],
    closest: NDArray[np.float64],
    x_sq: NDArray[np.float64],
    centers: NDArray[np.float64],
) -> None:
    """Set ``closest[r]`` to exactly 0 on the rows equal to ``centers[r]``
    (see :func:`quantize.kmeans._zero_copies`)."""
    eps = float(np.finfo(X.dtype).eps)
    bound = 64 * eps * (float(x_sq.max()) + _row_norms(centers))
    run, row = np.nonzero(closest <= bound[:, None])
    same = (X[row] == centers[run]).all(axis=1)
    closest[run[same], row[same]] = 0


# --------------------------------------------------------------------------
# Lloyd's iterations.


@dataclass(frozen=True)
class _Run:
    """Where one run ended: centers in ``prep``'s shifted coordinates; the
    labels only when the run had to finish on its own."""

    centers: NDArray[np.float64]
    inertia: float
    n_iter: int
    labels: NDArray[np.intp] | None = None


def lloyd_runs(
    prep: _Prepared, starts: NDArray[np.float64], max_iter: int, tol: float
) -> list[_Run]:
    """Lloyd's iterations from each of ``starts`` (runs, k, d), advanced together.

    Each run stops as :func:`quantize.kmeans._lloyd_plain` stops it, after
    ``max_iter`` updates or when an update lowers its SSE by at most ``tol``
    times the previous value, and its inertia is that of its last
    assignment.  A run with an empty cluster takes the sequential update,
    which reseeds it.
    """
    n_runs = starts.shape[0]
    centers = starts - prep.shift
    runs: list[_Run | None] = [None] * n_runs
    active = np.arange(n_runs)
    table = _Table(prep, starts.shape[0] * starts.shape[1])
    step = table.assign(centers)
    n_iter = 0
    while active.size and n_iter < max_iter:
        new, alone = _update_runs(prep, step, centers[active])
        n_iter += 1
        for i, shrunk in alone.items():
            # Fewer distinct rows than clusters: the run goes on by itself.
            run = _lloyd_plain(prep, shrunk + prep.shift, max_iter - n_iter, tol)
            centers_i = run.centers - prep.shift
            runs[active[i]] = _Run(centers_i, run.inertia, n_iter + run.n_iter, run.labels)
        centers[active] = new
        previous = step.inertia
        step = table.assign(centers[active])
        done = previous - step.inertia <= tol * previous
        keep = ~done
        for i in np.flatnonzero(done).tolist():
            if i not in alone:
                runs[active[i]] = _Run(centers[active[i]], float(step.inertia[i]), n_iter)
        keep[list(alone)] = False
        active = active[keep]
        step = step.subset(keep)
    for i, r in enumerate(active):
        runs[r] = _Run(centers[r], float(step.inertia[i]), n_iter)
    return [run for run in runs if run is not None]


class _Table:
    """The rows as the batched assignment needs them, and its buffers.

    ``xt_aug`` is ``[x, 1]`` transposed; ``stats`` holds ``[w x, w, 1]`` per
    row, so that one-hot assignments times ``stats`` are every cluster's
    weighted coordinate sums, weight and row count.  The buffers are reused
    by every assignment: fresh memory of this size costs page faults that
    take as long as the arithmetic.
    """

    def __init__(self, prep: _Prepared, n_centers: int) -> None:
        n, d = prep.X.shape
        self.prep = prep
        self.xt_aug = np.empty((d + 1, n))
        self.xt_aug[:d] = prep.X.T
        self.xt_aug[d] = 1
        self.stats = np.empty((n, d + 2))
        self.stats[:, :d] = prep.wxt.T
        self.stats[:, d] = prep.w
        self.stats[:, d + 1] = 1
        self._dist = np.empty((n_centers, n))
        self._equal = np.empty((n_centers, n), dtype=bool)
        self._onehot = np.empty((n_centers, n))

    def assign(self, centers: NDArray[np.float64]) -> _Step:
        """Nearest center of every row in each run's ``centers`` (runs, k, d),
        summed up per cluster; valid until the next call."""
        n_runs, k, d = centers.shape
        n = self.xt_aug.shape[1]
        size = n_runs * k
        c_aug = np.empty((size, d + 1))
        np.multiply(centers.reshape(-1, d), -2.0, out=c_aug[:, :d])
        c_aug[:, d] = _row_norms(c_aug[:, :d]) / 4
        # |c|^2 - 2 c.x for (run, center, row).
        flat = np.matmul(c_aug, self.xt_aug, out=self._dist[:size])
        dist = flat.reshape(n_runs, k, n)
        nearest = dist.min(axis=1)
        equal = self._equal[:size].reshape(n_runs, k, n)
        np.equal(dist, nearest[:, None, :], out=equal)
        onehot = self._onehot[:size]
        np.copyto(onehot, self._equal[:size])
        sums = (onehot @ self.stats).reshape(n_runs, k, d + 2)
        sq_dist = np.add(nearest, self.prep.x_sq, out=nearest)
        np.maximum(sq_dist, 0, out=sq_dist)
        return _Step(dist, np.arange(n_runs), sq_dist, sq_dist @ self.prep.w, sums)


@dataclass(frozen=True)
class _Step:
    """One batched assignment: distances ``dist`` (runs, k, n) up to each
    row's ``|x|^2`` (of the runs at ``index``), and for each of those runs
    the squared distances to the nearest center (runs, n), the SSE, and per
    cluster ``[sum w x, sum w, rows]`` (runs, k, d + 2), which count a row
    twice where it ties."""

    dist: NDArray[np.float64]
    index: NDArray[np.intp]
    sq_dist: NDArray[np.float64]
    inertia: NDArray[np.float64]
    sums: NDArray[np.float64]

    def subset(self, keep: NDArray[np.bool_]) -> _Step:
        return _Step(
            self.dist, self.index[keep], self.sq_dist[keep], self.inertia[keep], self.sums[keep]
        )

    def labels(self, i: int) -> NDArray[np.intp]:
        """Nearest center of every row in run ``i``, ties to the lowest index."""
        return np.argmin(self.dist[self.index[i]], axis=0)


def _update_runs(
    prep: _Prepared, step: _Step, centers: NDArray[np.float64]
) -> tuple[NDArray[np.float64], dict[int, NDArray[np.float64]]]:
    """New centers (runs, k, d), and by run the reseeded centers of the runs
    that found fewer new rows than empty clusters (their row of the new
    centers is stale: they go on alone)."""
    k, d = centers.shape[1:]
    n = prep.X.shape[0]
    sums, totals, rows = step.sums[:, :, :d], step.sums[:, :, d], step.sums[:, :, d + 1]
    redo = np.flatnonzero((rows.sum(axis=1) > n) | (rows == 0).any(axis=1))
    new = sums / np.where(rows > 0, totals, 1)[:, :, None]
    alone: dict[int, NDArray[np.float64]] = {}
    for i in redo.tolist():
        # Rare (a row exactly between two centers, or an empty cluster): the
        # sequential update counts each row once and reseeds.
        labels = step.labels(i)
        reseeded = _update_centers(prep.X, prep.w, prep.wxt, labels, step.sq_dist[i], centers[i])
        if reseeded.shape[0] < k:
            alone[i] = reseeded
        else:
            new[i] = reseeded
    return new, alone

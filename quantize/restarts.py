"""Several k-means restarts run in lockstep, for small data.

:func:`quantize._lloyd.best_of` runs its restarts one after the other.  On
the few thousand bin means the image path seeds on, that pays numpy's
per-call overhead once per restart and step, and its nearest-center search
is an ``argmin`` along rows of only ``k`` distances, which numpy does one
short row at a time.  Here the restarts advance together instead:

* k-means++ scores the candidates of several restarts against every row in
  one matrix product and keeps each restart's best.
* Lloyd's iterations compute the distances of every row to the centers of
  several restarts in one product laid out (restart, center, row), take
  each restart's minimum over its centers (an elementwise reduction over
  long rows, not a per-row ``argmin``), and get every cluster's weighted
  sums from one more product with the one-hot assignment.  A restart stops
  as soon as its own relative SSE improvement is at most ``tol``, exactly
  as :func:`quantize._lloyd.lloyd_plain` would stop it; the others go on.

Above ``LOCKSTEP_LLOYD_MAX_K`` clusters the restarts' Lloyd iterations run
one restart per thread instead (:func:`lloyd_each`): their products and
passes over the rows release the GIL, and a restart computes the same on
any thread.

Each restart reads the generator as it would in sequence and computes what
a sequential restart computes, up to rounding: the seeds, the result and
the generator's state afterwards are those of ``best_of``.  A row exactly
equidistant from two centers goes to the lower index, as everywhere else,
and empty clusters are reseeded by the sequential update.  Nothing depends
on the number of BLAS threads: the products are cut by restart, never
along a sum, and they only sum over the short coordinate axis or, for the
cluster sums, over all rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike, NDArray

from quantize._kernels import (
    MAX_PRODUCT,
    FloatArray,
    assign_nearest,
    row_norms,
    sq_dist_exact,
    update_centers,
    weighted_sum,
    weighted_sums_of_rows,
)
from quantize._lloyd import (
    LloydResult,
    Prepared,
    augment_centers,
    distinct_rows_result,
    index_count_rows,
    lloyd,
    lloyd_plain,
    prepare,
)
from quantize._threads import run_stripes

# Restarts are grouped so that each matrix product stays under
# MAX_PRODUCT multiply-adds (see quantize._kernels).
# Lloyd's iterations run in lockstep up to this many clusters.  The one-hot
# assignment costs a few passes over (centers x rows) where numpy's argmin
# costs a fixed amount per row, so lockstep wins at small k and loses its
# lead as k grows (bench_kmeans.py measures the crossing).
LOCKSTEP_LLOYD_MAX_K = 32
# Fewest data rows per product when one run's products are cut by rows.
_MIN_BLOCK_ROWS = 256
# Rows per block of the two-level draws of k-means++ (see _draw_runs).
_DRAW_BLOCK = 64


def best_of_batched(
    X: NDArray[np.float64],
    w: NDArray[np.float64],
    n_clusters: int,
    n_init: int,
    max_iter: int,
    tol: float,
    rng: np.random.Generator,
    n_local_trials: int,
    one_at_a_time: bool = False,
) -> LloydResult:
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
    one_at_a_time : bool, default False
        Lloyd's iterations of the runs one after the other
        (:class:`PlainRuns`) instead of in lockstep, up to
        ``LOCKSTEP_LLOYD_MAX_K`` clusters: the same runs up to rounding, for
        less numpy overhead per pass where the rows are float32 (the
        estimators' seeding).

    Returns
    -------
    LloydResult
        As :func:`quantize._lloyd.best_of` returns it: the labels are the
        nearest-center assignment of the centers and the inertia their SSE;
        with fewer distinct rows than ``n_clusters``, those rows, exactly.
    """
    runs = seeded_runs(X, w, n_clusters, n_init, max_iter, tol, rng, n_local_trials, one_at_a_time)
    best = runs[int(np.argmin([run.inertia for run in runs]))]
    if best.labels is not None:
        return LloydResult(best.centers, best.labels, best.inertia, best.n_iter)
    labels, sq_dist = assign_nearest(X, best.centers)
    return LloydResult(best.centers, labels, weighted_sum(w, sq_dist), best.n_iter)


def seeded_runs(
    X: NDArray[np.float64],
    w: NDArray[np.float64],
    n_clusters: int,
    n_init: int,
    max_iter: int,
    tol: float,
    rng: np.random.Generator,
    n_local_trials: int,
    one_at_a_time: bool = False,
) -> list[Run]:
    """Where each of ``n_init`` greedy k-means++ + Lloyd runs ends, in order.

    Parameters as for :func:`best_of_batched`.  Run ``r`` is what the
    ``r``-th of ``n_init`` sequential calls of ``best_of(..., n_init=1,
    ...)`` returns, up to rounding; with fewer distinct rows than
    ``n_clusters`` the result is one run, those rows exactly.
    """
    work = _Workspace(X.shape, n_init, n_clusters, n_local_trials, dtype=X.dtype)
    seeds = kmeans_plusplus_runs(X, w, n_clusters, n_init, rng, n_local_trials, work)
    if seeds.shape[1] < n_clusters:
        # Seeding ran out of distinct rows: they are the exact answer.
        exact = distinct_rows_result(X, w, X[seeds[0]])
        return [Run(exact.centers, exact.inertia, 0, exact.labels)]
    prep = prepare(X, w)
    if n_clusters > LOCKSTEP_LLOYD_MAX_K:
        return [
            Run(run.centers, run.inertia, run.n_iter, run.labels)
            for run in lloyd_each(prep, [X[rows] for rows in seeds], max_iter, tol)
        ]
    if one_at_a_time:
        each = PlainRuns(prep, n_clusters, tol)
        done = [each.run(X[rows], max_iter) for rows in seeds]
        return [Run(run.centers, run.inertia, run.n_iter, run.labels) for run in done]
    runs = lloyd_runs(prep, X[seeds], max_iter, tol, work)
    return [Run(run.centers + prep.shift, run.inertia, run.n_iter, run.labels) for run in runs]


def lloyd_each(
    prep: Prepared, starts: Sequence[NDArray[np.float64]], max_iter: int, tol: float
) -> list[LloydResult]:
    """:func:`quantize._lloyd.lloyd` from each of ``starts`` (centers in the
    original coordinates), the runs split over threads (see
    :mod:`quantize._threads`); the results in the order of ``starts``, each
    what a call of its own returns."""

    def some(first: int, last: int) -> list[LloydResult]:
        return [lloyd(prep, starts[i], max_iter, tol) for i in range(first, last)]

    return [run for part in run_stripes(some, len(starts), min_rows=1) for run in part]


@dataclass(frozen=True)
class Run:
    """Where one run ended: centers, inertia and center updates, and the
    labels (the nearest-center assignment of the centers) where known."""

    centers: NDArray[np.float64]
    inertia: float
    n_iter: int
    labels: NDArray[np.intp] | None = None


class _Workspace:
    """Scratch matrices shared by the seeding and Lloyd's iterations: rows
    (candidates or centers of a group of runs) x data rows.

    Allocated once per fit: fresh memory of this size costs page faults that
    take as long as the arithmetic of several iterations.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        n_runs: int,
        *per_run: int,
        dtype: DTypeLike = np.float64,
    ) -> None:
        self.n, self.d = shape
        self.n_runs = n_runs
        rows = max(self._group_size(p) * p for p in per_run)
        self.dist = np.empty((rows, self.n), dtype=dtype)
        self._same: NDArray[np.bool_] | None = None

    def groups(self, n_runs: int, per_run: int) -> list[slice]:
        """Consecutive runs of ``per_run`` rows each (one of those the
        workspace was made for, as at most as many runs) whose products
        stay under ``MAX_PRODUCT``."""
        size = self._group_size(per_run)
        return [slice(i, min(i + size, n_runs)) for i in range(0, n_runs, size)]

    def row_blocks(self, per_run: int) -> list[slice]:
        """Data rows in blocks small enough for the products of one run,
        where all rows at once would not be."""
        size = max(_MIN_BLOCK_ROWS, MAX_PRODUCT // (per_run * (self.d + 2)))
        return [slice(i, min(i + size, self.n)) for i in range(0, self.n, size)]

    def matrix(self, rows: int, columns: int) -> NDArray[np.float64]:
        """A (rows, columns) scratch matrix, columns <= n, over ``dist``."""
        return self.dist.reshape(-1)[: rows * columns].reshape(rows, columns)

    def flags(self, rows: int, columns: int) -> NDArray[np.bool_]:
        """A (rows, columns) bool scratch matrix, columns <= n."""
        if self._same is None:
            self._same = np.empty(self.dist.shape, dtype=bool)
        return self._same.reshape(-1)[: rows * columns].reshape(rows, columns)

    def _group_size(self, per_run: int) -> int:
        # The products have at most d + 2 columns.
        fit = MAX_PRODUCT // (per_run * self.n * (self.d + 2))
        return max(1, min(self.n_runs, fit))


# --------------------------------------------------------------------------
# Seeding.


def kmeans_plusplus_runs(
    X: NDArray[np.float64],
    w: NDArray[np.float64],
    n_clusters: int,
    n_runs: int,
    rng: np.random.Generator,
    n_local_trials: int,
    work: _Workspace | None = None,
) -> NDArray[np.intp]:
    """Row indices (n_runs, n_clusters) chosen by ``n_runs`` greedy weighted
    k-means++ seedings run in lockstep.

    Every step draws ``n_local_trials`` candidates per run in proportion to
    that run's ``w * D(x)^2``, and each run keeps the candidate that lowers
    its potential most.  Rows equal to a chosen center get exactly zero
    mass.  If a run finds every row covered before ``n_clusters`` centers,
    the result is that run's centers alone, shape (1, m) with
    ``m < n_clusters``: they are all the distinct rows.  ``work`` must have
    been made for ``n_local_trials`` rows per run.
    """
    n, d = X.shape
    x_sq = np.einsum("ij,ij->i", X, X)
    # [x, 1, |x|^2]: one product with [-2 c, |c|^2, 1] gives the squared
    # distances, without two more passes over the (candidates, rows) matrix.
    xt_aug = np.empty((d + 2, n), dtype=X.dtype)
    xt_aug[:d] = X.T
    xt_aug[d] = 1
    xt_aug[d + 1] = x_sq
    # Masses padded with zeros to whole blocks of _draw_runs.
    padded = -(-n // _DRAW_BLOCK) * _DRAW_BLOCK
    mass = np.zeros((n_runs, padded))
    mass[:, :n] = w
    # Each run reads the generator as a sequential run would, one run after
    # the other, so that the seeds are those of _lloyd.best_of (up to
    # rounding) and so is the generator's state afterwards (unless seeding
    # runs out of distinct rows, where best_of stops drawing early).
    uniform = rng.random((n_runs, 1 + (n_clusters - 1) * n_local_trials))
    chosen = np.empty((n_runs, n_clusters), dtype=np.intp)
    chosen[:, 0] = _draw_runs(uniform[:, :1], mass)[:, 0]
    offset = X[None, :, :] - X[chosen[:, 0], None, :]
    closest = np.einsum("rij,rij->ri", offset, offset)  # exact: 0 on copies
    potential = mass[:, :n]
    np.multiply(closest, w, out=potential)
    work = work or _Workspace(X.shape, n_runs, n_local_trials, dtype=X.dtype)
    groups = work.groups(n_runs, n_local_trials)
    for step in range(1, n_clusters):
        for r in np.flatnonzero(~potential.any(axis=1)):
            # The expansion can round a tiny distance to zero: confirm with
            # exact differences before concluding that every row is covered.
            closest[r] = sq_dist_exact(X, X[chosen[r, :step]]).min(axis=1)
            potential[r] = closest[r] * w
            if not potential[r].any():
                return chosen[r : r + 1, :step].copy()
        draws = uniform[:, 1 + (step - 1) * n_local_trials : 1 + step * n_local_trials]
        candidates = _draw_runs(draws, mass).ravel()
        rows = X[candidates]
        rows_aug = np.empty((candidates.size, d + 2), dtype=X.dtype)
        np.multiply(rows, -2.0, out=rows_aug[:, :d])
        rows_aug[:, d] = row_norms(rows)
        rows_aug[:, d + 1] = 1
        best = np.empty(n_runs, dtype=np.intp)
        for runs in groups:
            best[runs] = _best_candidates(work, rows_aug, xt_aug, w, closest, runs)
        chosen[:, step] = candidates[best]
        _zero_copies_runs(X, closest, x_sq, rows[best])
        np.multiply(closest, w, out=potential)
    return chosen


def _best_candidates(
    work: _Workspace,
    rows_aug: NDArray[np.float64],
    xt_aug: NDArray[np.float64],
    w: NDArray[np.float64],
    closest: NDArray[np.float64],
    runs: slice,
) -> NDArray[np.intp]:
    """Index (into all candidates) of the best candidate of each of ``runs``,
    whose ``closest`` squared distances are updated to include it."""
    n_runs, trials, n = runs.stop - runs.start, rows_aug.shape[0] // closest.shape[0], w.size
    first = runs.start * trials
    # Candidates x rows layout: elementwise passes run over long rows.
    dist = np.matmul(
        rows_aug[first : first + n_runs * trials], xt_aug, out=work.dist[: n_runs * trials]
    )
    by_run = dist.reshape(n_runs, trials, n)
    np.minimum(by_run, closest[runs, None, :], out=by_run)
    # Rounding can leave tiny negative distances: harmless in the scores,
    # clamped in the potential that is drawn from.
    # In the rows' precision: float32 rows (a seeding that only ranks runs)
    # would otherwise have their scores cast to float64 whole first.
    scores = weighted_sums_of_rows(dist, w.astype(dist.dtype, copy=False))
    best = np.argmin(scores.reshape(n_runs, trials), axis=1)
    np.maximum(by_run[np.arange(n_runs), best], 0, out=closest[runs])
    return best + np.arange(first, first + n_runs * trials, trials)


def _draw_runs(uniform: NDArray[np.float64], mass: NDArray[np.float64]) -> NDArray[np.intp]:
    """One index per entry of ``uniform`` (runs, size), uniform in [0, 1),
    drawn from its run's row of ``mass`` (runs, m) with probability
    proportional to the mass; ``m`` is a multiple of ``_DRAW_BLOCK``.  The
    index is the one :func:`quantize._kernels.draw` maps the same number to,
    up to rounding at the boundaries.

    Two levels: a block of ``_DRAW_BLOCK`` rows in proportion to its total,
    then a row within it.  A cumulative sum over every row, as
    :func:`quantize._kernels.draw` takes, would cost more than the rest of a
    seeding step.  Rows of zero mass are never drawn.
    """
    n_runs, m = mass.shape
    blocks = mass.reshape(n_runs, m // _DRAW_BLOCK, _DRAW_BLOCK)
    # Cumulative mass before each block, and in all.
    cdf = np.zeros((n_runs, m // _DRAW_BLOCK + 1))
    np.cumsum(blocks.sum(axis=2), axis=1, out=cdf[:, 1:])
    total = cdf[:, -1:]
    targets = uniform * total
    # First block whose cumulative mass exceeds the target; u * total can
    # round up to total, hence at most the first block that reaches it.
    block = (cdf[:, None, 1:] <= targets[:, :, None]).sum(axis=2)
    np.minimum(block, (cdf[:, 1:] < total).sum(axis=1)[:, None], out=block)
    runs = np.arange(n_runs)[:, None]
    residual = targets - cdf[runs, block]
    inner = np.cumsum(blocks[runs, block], axis=2)
    # The same within the block.
    pick = (inner <= residual[:, :, None]).sum(axis=2)
    np.minimum(pick, (inner < inner[:, :, -1:]).sum(axis=2), out=pick)
    pick += block * _DRAW_BLOCK
    return pick


def _zero_copies_runs(
    X: NDArray[np.float64],
    closest: NDArray[np.float64],
    x_sq: NDArray[np.float64],
    centers: NDArray[np.float64],
) -> None:
    """Set ``closest[r]`` to exactly 0 on the rows equal to ``centers[r]``
    (see :func:`quantize._kernels._zero_copies`)."""
    eps = float(np.finfo(X.dtype).eps)
    bound = 64 * eps * (float(x_sq.max()) + float(row_norms(centers).max()))
    run, row = np.divmod(np.flatnonzero(closest <= bound), closest.shape[1])
    same = (X[row] == centers[run]).all(axis=1)
    closest[run[same], row[same]] = 0


# --------------------------------------------------------------------------
# Lloyd's iterations.


def lloyd_runs(
    prep: Prepared,
    starts: NDArray[np.float64],
    max_iter: int,
    tol: float,
    work: _Workspace | None = None,
) -> list[Run]:
    """Lloyd's iterations from each of ``starts`` (runs, k, d), advanced
    together; the centers of the result are in ``prep``'s shifted
    coordinates.

    Each run stops as :func:`quantize._lloyd.lloyd_plain` stops it, after
    ``max_iter`` updates or when an update lowers its SSE by at most ``tol``
    times the previous value, and its inertia is that of its last
    assignment.  A run with an empty cluster takes the sequential update,
    which reseeds it.  ``work`` must have been made for ``k`` rows per run.
    """
    n_runs, k, _ = starts.shape
    centers = starts - prep.shift
    runs: list[Run | None] = [None] * n_runs
    active = np.arange(n_runs)
    table = _Table(prep, work or _Workspace(prep.X.shape, n_runs, k, dtype=prep.X.dtype))
    inertia, sums = table.assign(centers)
    n_iter = 0
    while active.size and n_iter < max_iter:
        new, alone = _update_runs(prep, sums, centers[active])
        n_iter += 1
        for i, shrunk in alone.items():
            # Fewer distinct rows than clusters: the run goes on by itself.
            run = lloyd_plain(prep, shrunk + prep.shift, max_iter - n_iter, tol)
            centers_i = run.centers - prep.shift
            runs[active[i]] = Run(centers_i, run.inertia, n_iter + run.n_iter, run.labels)
        centers[active] = new
        previous = inertia
        inertia, sums = table.assign(centers[active])
        done = previous - inertia <= tol * previous
        for i in np.flatnonzero(done).tolist():
            if i not in alone:
                runs[active[i]] = Run(centers[active[i]], float(inertia[i]), n_iter)
        keep = ~done
        keep[list(alone)] = False
        active, inertia, sums = active[keep], inertia[keep], sums[keep]
    for i, r in enumerate(active.tolist()):
        runs[r] = Run(centers[r], float(inertia[i]), n_iter)
    return [run for run in runs if run is not None]


class PlainRuns:
    """Lloyd's iterations to ``tol`` from one start at a time on few rows,
    computed as one run of :func:`quantize.restarts.lloyd_runs` computes
    them (scores laid out centers x rows; each cluster's sums from the
    one-hot assignment times ``[w x, w, 1]``), in the rows' precision, with
    the rows' layout and every scratch array made once for all the tries of
    a search: on a few thousand rows each pass is mostly numpy's per-call
    overhead, which the setup of ``lloyd_runs`` for several runs multiplies.
    """

    def __init__(self, prep: Prepared, k: int, tol: float) -> None:
        n, d = prep.X.shape
        dtype = prep.X.dtype
        self.prep = prep
        self.tol = tol
        self.stats = _row_stats(prep)
        self.scores = np.empty((k, n), dtype=dtype)
        self.same = np.empty((k, n), dtype=bool)
        self.near = np.empty(n, dtype=dtype)
        self.c_aug = np.empty((k, d + 1), dtype=dtype)
        self.index_and_count = index_count_rows(k, dtype)

    def run(self, centers: NDArray[np.float64], max_iter: int) -> LloydResult:
        """Lloyd's iterations from ``centers`` (original coordinates), as
        :func:`quantize._lloyd.lloyd` ends them; labels and inertia of the
        returned centers."""
        prep = self.prep
        n, d = prep.X.shape
        c = centers - prep.shift
        inertia, sums = self._assign(c)
        n_iter = 0
        while n_iter < max_iter:
            counts = sums[:, d + 1]
            if counts.sum() > n or not counts.all():
                # A row exactly as near to two centers, or an empty cluster
                # (rare): the sequential iterations go on, and reseed.
                return lloyd(prep, c + prep.shift, max_iter - n_iter, self.tol).after(n_iter)
            c = (sums[:, :d] / sums[:, d, None]).astype(np.float64)
            n_iter += 1
            previous = inertia
            inertia, sums = self._assign(c)
            if previous - inertia <= self.tol * previous:
                break
        return LloydResult(c + prep.shift, self._labels(), inertia, n_iter)

    def _assign(self, c: NDArray[np.float64]) -> tuple[float, FloatArray]:
        """Assign every row to its nearest of ``c`` (shifted centers): the
        SSE, and per cluster ``[sum w x, sum w, rows]`` (k, d + 2), which
        count a row twice where it is exactly as near to two centers.
        Leaves the one-hot assignment in ``scores``."""
        np.matmul(augment_centers(c, self.c_aug), self.prep.xt_aug, out=self.scores)
        near = np.min(self.scores, axis=0, out=self.near)
        np.equal(self.scores, near, out=self.same)
        np.copyto(self.scores, self.same)
        sq_dist = near + self.prep.x_sq
        np.maximum(sq_dist, 0, out=sq_dist)
        return weighted_sum(self.prep.w, sq_dist), self.scores @ self.stats

    def _labels(self) -> NDArray[np.intp]:
        """The lowest nearest center of every row, from the last one-hot
        assignment."""
        found = self.index_and_count @ self.scores
        labels = found[0].astype(np.intp)
        ties = np.flatnonzero(found[1] > 1)
        if ties.size:
            labels[ties] = np.argmax(self.scores[:, ties], axis=0)
        return labels


def _row_stats(prep: Prepared) -> FloatArray:
    """``[w x, w, 1]`` of every row (n, d + 2), in the rows' precision: the
    one-hot assignment times this is every cluster's weighted coordinate
    sums, weight and row count."""
    n, d = prep.X.shape
    stats = np.empty((n, d + 2), dtype=prep.X.dtype)
    stats[:, :d] = prep.wxt.T
    stats[:, d] = prep.w
    stats[:, d + 1] = 1
    return stats


class _Table:
    """The rows as the batched assignment needs them.

    ``xt_aug`` is ``[x, 1]`` transposed; ``stats`` holds ``[w x, w, 1]`` per
    row, so that one-hot assignments times ``stats`` are every cluster's
    weighted coordinate sums, weight and row count.
    """

    def __init__(self, prep: Prepared, work: _Workspace) -> None:
        self.prep = prep
        self.work = work
        self.xt_aug = prep.xt_aug
        self.stats = _row_stats(prep)

    def assign(
        self, centers: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Assign every row to its nearest center in each run's ``centers``
        (runs, k, d).  Returns the SSE of each run (runs,) and per cluster
        ``[sum w x, sum w, rows]`` (runs, k, d + 2), which count a row twice
        where it is exactly as near to two centers."""
        n_runs, k, d = centers.shape
        n = self.xt_aug.shape[1]
        c_aug = augment_centers(
            centers.reshape(-1, d), np.empty((n_runs * k, d + 1), dtype=self.xt_aug.dtype)
        )
        nearest = np.empty((n_runs, n), dtype=self.xt_aug.dtype)
        sums = np.zeros((n_runs, k, d + 2), dtype=self.xt_aug.dtype)
        blocks = self.work.row_blocks(k)
        for runs in self.work.groups(n_runs, k):
            size = (runs.stop - runs.start) * k
            for rows in blocks:
                # |c|^2 - 2 c.x for (run, center, row).
                flat = self.work.matrix(size, rows.stop - rows.start)
                np.matmul(c_aug[runs.start * k : runs.stop * k], self.xt_aug[:, rows], out=flat)
                dist = flat.reshape(-1, k, flat.shape[1])
                near = np.min(dist, axis=1, out=nearest[runs, rows])
                # The one-hot assignment, in place: 1.0 where equal (compared
                # into bools, then copied: faster than comparing into floats).
                same = self.work.flags(size, flat.shape[1]).reshape(dist.shape)
                np.equal(dist, near[:, None, :], out=same)
                np.copyto(dist, same)
                part = sums[runs].reshape(size, d + 2)
                if len(blocks) == 1:
                    np.matmul(flat, self.stats, out=part)
                else:
                    part += flat @ self.stats[rows]
        sq_dist = np.add(nearest, self.prep.x_sq, out=nearest)
        np.maximum(sq_dist, 0, out=sq_dist)
        return np.asarray(weighted_sums_of_rows(sq_dist, self.prep.w), dtype=np.float64), sums


def _update_runs(
    prep: Prepared, sums: NDArray[np.float64], centers: NDArray[np.float64]
) -> tuple[NDArray[np.float64], dict[int, NDArray[np.float64]]]:
    """New centers (runs, k, d) from the per-cluster ``sums`` of
    :meth:`_Table.assign`, and by run the reseeded centers of the runs that
    found fewer new rows than empty clusters (their row of the new centers
    is stale: they go on alone)."""
    k, d = centers.shape[1:]
    n = prep.X.shape[0]
    totals, rows = sums[:, :, d], sums[:, :, d + 1]
    redo = np.flatnonzero((rows.sum(axis=1) > n) | (rows == 0).any(axis=1))
    new = sums[:, :, :d] / np.where(rows > 0, totals, 1)[:, :, None]
    alone: dict[int, NDArray[np.float64]] = {}
    for i in redo.tolist():
        # Rare (a row exactly as near to two centers, or an empty cluster):
        # the sequential update counts each row once and reseeds.
        labels, sq_dist = assign_nearest(prep.X, centers[i], prep.x_sq)
        reseeded = update_centers(prep.X, prep.w, prep.wxt, labels, sq_dist, centers[i])
        if reseeded.shape[0] < k:
            alone[i] = reseeded
        else:
            new[i] = reseeded
    return new, alone

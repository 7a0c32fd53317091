"""k-means where some centers are given and never move.

Colors that must stay in a palette (``--keep``: brand colors, pure white)
are *fixed centers*: every point still goes to its nearest center, fixed or
learned, but the weighted Lloyd update moves only the learned ones, and
greedy k-means++ seeding treats the fixed centers as already chosen, so the
learned centers go where the fixed ones leave the most error.

The image path runs coarse to fine like :mod:`quantize.cluster`: restarts
seeded and iterated on the coarse seed bins, the best one iterated on the
6-bit bins, then exact Lloyd steps on every distinct color.  One more
candidate always competes: the fixed centers plus an unconstrained fit of
the learned ones (the caller's own, without any fixed center), improved by
the same pinned Lloyd steps.  Pinned Lloyd steps never raise the SSE, so
the result is never worse than "the fixed centers plus an unconstrained
palette of the rest, every point to its nearest".

Everything here is numpy on arrays; points are in any working space.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from quantize import cluster
from quantize._kernels import (
    assign_nearest,
    farthest_distinct,
    kmeans_plusplus_indices,
    row_norms,
    transpose_weighted,
    weighted_sums,
)
from quantize._lloyd import LloydResult, best_of

__all__ = [
    "FixedFit",
    "check_fixed",
    "fit_points",
    "fit_table",
    "fit_with_fixed",
    "pinned_lloyd",
    "pinned_lloyd_chunked",
]

# Rows per chunk of `pinned_lloyd_chunked`: float temporaries under a MB.
_CHUNK_ROWS: Final[int] = 1 << 14


@dataclass(frozen=True)
class FixedFit:
    """Centers found around fixed ones.

    Attributes
    ----------
    centers : ndarray of float64, shape (k', d)
        The fixed centers first, unchanged and in the order given, then the
        learned ones.  ``k' < k`` only when the points run out of distinct
        rows to learn from; fixed centers are kept even when no point is
        nearest to them.
    labels : ndarray of intp, shape (m,)
        Nearest center of each point (ties to the lowest index).
    inertia : float
        Weighted SSE of the points to ``centers[labels]``.
    n_iter : int
        Center updates of the winning run.
    """

    centers: NDArray[np.float64]
    labels: NDArray[np.intp]
    inertia: float
    n_iter: int


#: Signature of `pinned_lloyd` and `pinned_lloyd_chunked`.
_Points = NDArray[np.float64]
PinnedLloyd = Callable[[_Points, _Points, _Points, _Points, int, float], FixedFit]


@dataclass(frozen=True)
class _Level:
    """Points (a binning of them, or the points themselves) with their weights."""

    x: NDArray[np.float64]
    w: NDArray[np.float64]


def fit_with_fixed(
    levels: list[tuple[NDArray[np.float64], NDArray[np.float64]]],
    fixed: NDArray[np.float64],
    n_free: int,
    baseline: NDArray[np.float64],
    *,
    n_init: int,
    max_iter: int,
    tol: float,
    seed_tol: float,
    rng: np.random.Generator,
    n_local_trials: int | None = None,
    exact_steps: int | None = None,
    chunked: bool = False,
) -> FixedFit:
    """Learn ``n_free`` centers beside ``fixed`` ones, coarse to fine.

    Parameters
    ----------
    levels : list of (points, weights)
        Coarsest first, the exact points last: points of shape (m_i, d)
        with strictly positive weights of shape (m_i,).  Restarts run on
        the first level, the winner is iterated on each following one;
        with one level everything runs on the exact points.
    fixed : ndarray of float64, shape (f, d)
        Centers that never move; distinct.
    n_free : int
        Centers to learn, >= 1, fewer than the exact points.
    baseline : ndarray of float64, shape (b, d)
        Centers fitted to the exact points without any fixed center; the
        fixed centers plus these compete as one more start.
    n_init : int
        k-means++ restarts on the coarsest level; the best by inertia wins.
    max_iter : int
        Cap on the center updates of each phase.
    tol, seed_tol : float
        Relative SSE improvement below which iterations stop, on the exact
        points and on the coarser levels.
    rng : numpy.random.Generator
    n_local_trials : int, optional
        Candidates per greedy k-means++ step.
    exact_steps : int, optional
        Center updates on the exact points when there are coarser levels;
        ``None`` iterates to convergence.
    chunked : bool, default False
        Iterate on the exact points with `pinned_lloyd_chunked` (no copy of
        them: for tables too large for one).

    Returns
    -------
    FixedFit
    """
    coarse = [_Level(x, w) for x, w in levels]
    exact = coarse.pop()
    first = coarse[0] if coarse else exact
    best: FixedFit | None = None
    for _ in range(n_init):
        chosen = kmeans_plusplus_indices(
            first.x, first.w, n_free, rng, existing=fixed, n_local_trials=n_local_trials
        )
        run = pinned_lloyd(first.x, first.w, fixed, first.x[chosen], max_iter, seed_tol)
        if best is None or run.inertia < best.inertia:
            best = run
    assert best is not None
    centers, n_iter = best.centers, best.n_iter
    for level in coarse[1:]:
        run = pinned_lloyd(level.x, level.w, fixed, centers[len(fixed) :], max_iter, seed_tol)
        centers, n_iter = run.centers, n_iter + run.n_iter
    steps = max_iter if exact_steps is None or not coarse else exact_steps
    last_tol = tol if exact_steps is None or not coarse else 0.0
    lloyd: PinnedLloyd = pinned_lloyd_chunked if chunked else pinned_lloyd
    won = lloyd(exact.x, exact.w, fixed, centers[len(fixed) :], steps, last_tol)
    won = FixedFit(won.centers, won.labels, won.inertia, n_iter + won.n_iter)
    # The unconstrained start, iterated on the exact points only: every
    # step lowers its exact SSE, so the result never loses to the baseline.
    base = lloyd(exact.x, exact.w, fixed, baseline, steps, last_tol)
    return base if base.inertia < won.inertia else won


def pinned_lloyd(
    x: NDArray[np.float64],
    w: NDArray[np.float64],
    fixed: NDArray[np.float64],
    free: NDArray[np.float64],
    max_iter: int,
    tol: float,
) -> FixedFit:
    """Weighted Lloyd iterations in which the ``fixed`` centers never move.

    Stops after ``max_iter`` updates or when one lowers the SSE by at most
    ``tol`` times its previous value; the last step is an assignment.  A
    learned center left with no point is moved to the worst-fitting point
    (dropped when every point already is a center).

    Parameters
    ----------
    x : ndarray of float64, shape (m, d)
    w : ndarray of float64, shape (m,)
    fixed : ndarray of float64, shape (f, d)
    free : ndarray of float64, shape (g, d)
        Starting learned centers.
    max_iter : int
    tol : float

    Returns
    -------
    FixedFit
    """
    n_fixed = fixed.shape[0]
    centers = np.concatenate([fixed, free]).astype(np.float64)
    # Shift to the mean: the expansion of the distances stays accurate.
    shift = x.mean(axis=0)
    xs = x - shift
    cs = centers - shift
    x_sq = row_norms(xs)
    wxt = transpose_weighted(xs, w)
    labels, sq = assign_nearest(xs, cs, x_sq)
    inertia = float(w @ sq)
    n_iter = 0
    while n_iter < max_iter:
        cs = _pinned_update(xs, wxt, w, labels, sq, cs, n_fixed)
        n_iter += 1
        labels, sq = assign_nearest(xs, cs, x_sq)
        previous, inertia = inertia, float(w @ sq)
        if previous - inertia <= tol * previous:
            break
    centers = cs + shift
    centers[:n_fixed] = fixed  # exactly, not shifted back with rounding
    return FixedFit(centers, labels, inertia, n_iter)


def pinned_lloyd_chunked(
    x: NDArray[np.float64],
    w: NDArray[np.float64],
    fixed: NDArray[np.float64],
    free: NDArray[np.float64],
    max_iter: int,
    tol: float,
) -> FixedFit:
    """`pinned_lloyd` a chunk of rows at a time: no shifted copy, norms or
    weighted transpose of ``x`` (each as large as ``x``), only the labels.

    The same iterations, parameters and result, up to the rounding of sums
    taken in another order.
    """
    n_fixed = fixed.shape[0]
    centers = np.concatenate([fixed, free]).astype(np.float64)
    shift = x.mean(axis=0)
    cs = centers - shift
    labels = np.empty(x.shape[0], dtype=np.intp)
    sums, totals, inertia = _chunked_pass(x, w, shift, cs, labels)
    n_iter = 0
    while n_iter < max_iter:
        cs = _pinned_update_chunked(x, w, shift, sums, totals, cs, n_fixed)
        n_iter += 1
        previous = inertia
        sums, totals, inertia = _chunked_pass(x, w, shift, cs, labels)
        if previous - inertia <= tol * previous:
            break
    centers = cs + shift
    centers[:n_fixed] = fixed  # exactly, not shifted back with rounding
    return FixedFit(centers, labels, inertia, n_iter)


def _chunked_pass(
    x: NDArray[np.float64],
    w: NDArray[np.float64],
    shift: NDArray[np.float64],
    centers: NDArray[np.float64],
    labels: NDArray[np.intp],
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """Assign every row to its nearest (shifted) center, a chunk at a time.

    Fills ``labels``; returns the weighted coordinate sums (k, d) of the
    shifted rows of each center, their total weights (k,) and the SSE.
    """
    k, d = centers.shape
    sums = np.zeros((k, d))
    totals = np.zeros(k)
    inertia = 0.0
    for start in range(0, x.shape[0], _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        xs = x[rows] - shift
        lab, sq = assign_nearest(xs, centers)
        labels[rows] = lab
        wr = w[rows]
        inertia += float(wr @ sq)
        totals += np.bincount(lab, weights=wr, minlength=k)
        xs *= wr[:, None]
        for j in range(d):
            sums[:, j] += np.bincount(lab, weights=xs[:, j], minlength=k)
    return sums, totals, inertia


def _pinned_update_chunked(
    x: NDArray[np.float64],
    w: NDArray[np.float64],
    shift: NDArray[np.float64],
    sums: NDArray[np.float64],
    totals: NDArray[np.float64],
    centers: NDArray[np.float64],
    n_fixed: int,
) -> NDArray[np.float64]:
    """`_pinned_update` from the sums of `_chunked_pass`.

    An empty learned center (rare) gets the worst-fitting row, found from
    the distances of one more pass.
    """
    k = centers.shape[0]
    learned = np.arange(k) >= n_fixed
    filled = learned & (totals > 0)
    new = centers.copy()
    new[filled] = sums[filled] / totals[filled, None]
    empty = np.flatnonzero(learned & ~filled)
    if empty.size == 0:
        return new
    others = np.delete(new, empty, axis=0)
    sq = np.empty(x.shape[0])
    for start in range(0, x.shape[0], _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        sq[rows] = assign_nearest(x[rows] - shift, centers)[1]
    # Compared unshifted: whether a row equals a center must be exact.
    picks = farthest_distinct(x, sq, others + shift, empty.size)
    new[empty[: picks.size]] = x[picks] - shift
    return np.delete(new, empty[picks.size :], axis=0)


def _pinned_update(
    x: NDArray[np.float64],
    wxt: NDArray[np.float64],
    w: NDArray[np.float64],
    labels: NDArray[np.intp],
    sq: NDArray[np.floating[Any]],
    centers: NDArray[np.float64],
    n_fixed: int,
) -> NDArray[np.float64]:
    """Move each learned center to the weighted mean of its points."""
    k = centers.shape[0]
    sums, totals = weighted_sums(wxt, w, labels, k)
    learned = np.arange(k) >= n_fixed
    filled = learned & (totals > 0)
    new = centers.copy()
    new[filled] = sums[filled] / totals[filled, None]
    empty = np.flatnonzero(learned & ~filled)
    if empty.size == 0:
        return new
    others = np.delete(new, empty, axis=0)
    picks = farthest_distinct(x, sq, others, empty.size)
    new[empty[: picks.size]] = x[picks]
    return np.delete(new, empty[picks.size :], axis=0)


def with_rows(x: NDArray[np.float64], fixed: NDArray[np.float64]) -> FixedFit:
    """Every point is a center: the fixed ones, then each point that is none of them."""
    # Few points here (at most the learned centers): compare them all exactly.
    taken = (x[:, None, :] == fixed[None]).all(axis=2).any(axis=1)
    centers = np.concatenate([fixed, x[~taken]])
    labels, _ = assign_nearest(x, centers)
    return FixedFit(centers, labels, 0.0, 0)


def check_fixed(fixed: object, n_features: int, n_clusters: int) -> NDArray[np.float64]:
    """Validate fixed centers: shape (f, n_features), finite, distinct, f <= n_clusters.

    Raises
    ------
    ValueError
    """
    f = np.array(fixed, dtype=np.float64, ndmin=2)
    if f.ndim != 2 or f.shape[1] != n_features:
        raise ValueError(f"fixed centers must have shape (f, {n_features}), got {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError("fixed centers contain NaN or infinity")
    if f.shape[0] > n_clusters:
        raise ValueError(f"{f.shape[0]} fixed centers but only {n_clusters} clusters")
    if np.unique(f, axis=0).shape[0] != f.shape[0]:
        raise ValueError("fixed centers must be distinct")
    return f


def fit_table(
    x: NDArray[np.float64],
    w: NDArray[np.float64],
    keys: NDArray[np.uint32] | None,
    n_clusters: int,
    fixed: NDArray[np.float64],
    *,
    algorithm: str,
    n_init: int | None,
    max_iter: int,
    rng: np.random.Generator,
    baseline: NDArray[np.float64] | None = None,
    chunked: bool = False,
) -> FixedFit:
    """Cluster a weighted color table around fixed centers, coarse to fine.

    Parameters as for :func:`quantize.cluster.cluster_table` (validated),
    with ``fixed`` from :func:`check_fixed`.  The baseline start is
    ``baseline`` when given, else the table's own clustering into the
    ``n_clusters - f`` learned centers with ``algorithm`` (see
    `baseline_centers`); the pinned iterations are Lloyd's whichever
    ``algorithm``.  ``chunked`` runs those on the whole table a chunk of
    rows at a time (`pinned_lloyd_chunked`).
    """
    n_free = n_clusters - fixed.shape[0]
    lloyd: PinnedLloyd = pinned_lloyd_chunked if chunked else pinned_lloyd
    if n_free == 0:
        return lloyd(x, w, fixed, np.empty((0, x.shape[1])), 0, 0.0)
    if x.shape[0] <= n_free:
        return with_rows(x, fixed)
    if baseline is None:
        baseline = baseline_centers(x, w, keys, n_free, algorithm, n_init, max_iter, rng)
    levels = [(x, w)]
    if algorithm == "kmeans" and keys is not None and x.shape[0] >= cluster.MIN_ROWS_TO_BIN:
        bins = cluster.make_bins(x, w, np.asarray(keys, dtype=np.uint32), n_clusters)
        if bins is not None:
            levels = [cluster.seed_set(bins, n_clusters), (bins.means, bins.totals), (x, w)]
    if n_init is None:
        # The one rule, for a fit without swap search.
        n_init = cluster.resolve_n_init("auto", n_clusters, swaps=False)
    return fit_with_fixed(
        levels,
        fixed,
        n_free,
        baseline,
        n_init=n_init,
        max_iter=max_iter,
        tol=cluster.TOL,
        seed_tol=cluster.SEED_TOL,
        rng=rng,
        n_local_trials=cluster.SEED_TRIALS,
        # Plain passes over every color are what the pinned steps cost; the
        # baseline start has converged on every color already.
        exact_steps=cluster.EXACT_STEPS,
        chunked=chunked,
    )


def baseline_centers(
    x: NDArray[np.float64],
    w: NDArray[np.float64],
    keys: NDArray[np.uint32] | None,
    n_free: int,
    algorithm: str,
    n_init: int | None,
    max_iter: int,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """The ``n_free`` centers :mod:`quantize.cluster` finds with no fixed center."""
    return cluster.cluster_centers(
        x,
        w,
        keys,
        n_free,
        algorithm=algorithm,  # type: ignore[arg-type]
        n_init="auto" if n_init is None else n_init,
        max_iter=max_iter,
        random_state=rng,
    )[0]


def fit_points(
    X: NDArray[np.floating[Any]],
    w: NDArray[np.float64],
    n_clusters: int,
    fixed: object,
    init: object,
    n_init: int,
    max_iter: int,
    tol: float,
    rng: np.random.Generator,
) -> LloydResult:
    """``KMeans(fixed_centers=...)``: learn the other centers on any data.

    ``X``, ``w`` and the parameters are validated by the estimator; the
    baseline start is the best of ``n_init`` unconstrained k-means++ runs.

    Returns
    -------
    LloydResult
        Centers (fixed ones first) in float64, labels, inertia, n_iter.
    """
    if not (isinstance(init, str) and init == "k-means++"):
        raise ValueError("fixed_centers needs init='k-means++'")
    x = np.asarray(X, dtype=np.float64)
    f = check_fixed(fixed, x.shape[1], n_clusters)
    n_free = n_clusters - f.shape[0]
    if n_free == 0:
        fit = pinned_lloyd(x, w, f, np.empty((0, x.shape[1])), 0, 0.0)
    elif x.shape[0] <= n_free:
        fit = with_rows(x, f)
    else:
        baseline = best_of(x, w, n_free, "k-means++", n_init, max_iter, tol, rng).centers
        fit = fit_with_fixed(
            [(x, w)],
            f,
            n_free,
            baseline,
            n_init=n_init,
            max_iter=max_iter,
            tol=tol,
            seed_tol=tol,
            rng=rng,
        )
    return LloydResult(fit.centers, fit.labels, fit.inertia, fit.n_iter)

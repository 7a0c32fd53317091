"""Local search by center swaps and split/merge moves, for Lloyd's local optima.

Internal to the clustering core (:mod:`quantize.cluster`), which decides
where and how often the search runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from quantize._kernels import FloatArray, draw, nearest_three, weighted_count, weighted_sums
from quantize._lloyd import LloydResult, Prepared, lloyd, nearest_two
from quantize.restarts import PlainRuns

__all__ = ["TOL", "split_merge_search", "swap_search"]

#: Relative SSE improvement below which Lloyd's iterations stop, here and
#: in :mod:`quantize.cluster`.
TOL = 1e-4


def swap_search(
    prep: Prepared,
    start: LloydResult,
    max_iter: int,
    rng: np.random.Generator,
    tries: int = 20,
    *,
    fresh_picks: bool = False,
    lockstep: bool = False,
) -> LloydResult:
    """Local search by swaps: replace one center by a row drawn in proportion
    to its weighted squared distance, rerun Lloyd's iterations, keep the
    result if its inertia is lower; ``tries`` times.

    With ``fresh_picks`` a row already tried against the current best is not
    drawn again (its try would be the same Lloyd run, rejected again), and
    the search ends early once every row that could be drawn has been
    tried: on a small table the tries then stop where the search is
    exhausted instead of repeating themselves.

    The center given up is the one whose loss costs least with the drawn row
    added, computed exactly for every center at once from each row's
    nearest and second-nearest distances (the swap step of k-means++ local
    search, Lattanzi & Sohler 2019).  Lloyd's iterations stop at local
    optima where a cluster is split across two lumps of color while another
    lump shares a center; a swap moves that center and the iterations
    settle the rest.  ``n_iter`` of the result counts the kept runs only.

    With ``lockstep`` the distances are computed as the lockstep restarts
    compute theirs (scores laid out centers x rows; Lloyd's iterations as
    one run of :func:`quantize.restarts.lloyd_runs`, see
    :class:`quantize.restarts.PlainRuns`), in ``prep``'s precision: for
    the few rows of the estimators' seeding, in float32, at a fraction of
    the cost of :func:`quantize._lloyd.lloyd`'s passes.  The tries are the
    same up to rounding.
    """
    best = start
    k = start.centers.shape[0]
    # A rejected try leaves ``best`` as it was: its distances are reused
    # (the same function of the same centers) instead of recomputed.
    nearest = None
    # Rows tried against the current best (fresh_picks only).
    tried = np.zeros(prep.X.shape[0], dtype=bool) if fresh_picks else None
    runs = PlainRuns(prep, k, TOL) if lockstep else None
    for _ in range(tries):
        if nearest is None:
            nearest = _nearest(prep, best.centers, lockstep)
        labels, d1, d2 = nearest
        mass = prep.w * d1
        if tried is not None:
            mass[tried] = 0.0
            if not mass.any():
                break
        pick = int(draw(rng, mass, 1)[0])
        if tried is not None:
            tried[pick] = True
        offset = prep.X - prep.X[pick]
        d_new = np.einsum("ij,ij->i", offset, offset)
        kept = np.minimum(d1, d_new)
        # Cost of dropping center j: its rows go to their second center or
        # to the new one, whichever is nearer.
        cost = weighted_count(labels, prep.w * (np.minimum(d2, d_new) - kept), k)
        centers = best.centers.copy()
        centers[int(np.argmin(cost))] = prep.X[pick] + prep.shift
        run = lloyd(prep, centers, max_iter, TOL) if runs is None else runs.run(centers, max_iter)
        if run.inertia < best.inertia:
            best = run.after(best.n_iter)
            nearest = None
            if tried is not None:
                tried[:] = False
    return best


def _nearest(
    prep: Prepared, centers: NDArray[np.float64], lockstep: bool
) -> tuple[NDArray[np.intp], FloatArray, FloatArray]:
    """Every row's nearest center and the squared distances to its nearest
    and second-nearest centers (``centers`` in the original coordinates)."""
    if lockstep:
        return nearest_two(prep, centers - prep.shift)
    labels, _, near, others = nearest_three(prep.X, centers - prep.shift, prep.x_sq)
    return labels, near**2, others[:, 0] ** 2


# Clusters considered on each side of a split/merge move: the most
# profitable splits and the cheapest merges, paired best first.
_MOVE_SIDE = 6


def split_merge_search(
    prep: Prepared,
    start: LloydResult,
    max_iter: int,
    tries: int,
    batch: int = 1,
) -> LloydResult:
    """Local search by split/merge moves: merge the two clusters whose merge
    costs least and split the cluster whose split gains most along its
    principal axis, rerun Lloyd's iterations, keep the result if its
    inertia is lower; at most ``tries`` runs of Lloyd's iterations.

    Unlike :func:`swap_search`, whose added center is a row drawn at random,
    the moves are ranked by an estimate computed for every cluster at once
    from the labels (see :func:`_moves`) and tried best first.  A try makes
    up to ``batch`` moves on disjoint clusters at once; a rejected try
    halves the batch, and once single moves are rejected, gives way to the
    next move; a kept one to a new ranking.  The moves reach optima where
    one cluster spans two lumps of color while two centers share one lump,
    which random rows rarely hit when the lumps are smooth ramps
    (gradients) rather than separate colors.  ``n_iter`` of the result
    counts the kept runs only.
    """
    best = start
    moves = _moves(prep, best)
    skipped = 0
    while tries > 0 and skipped < len(moves):
        centers = best.centers - prep.shift
        for move in _disjoint(moves[skipped:], batch):
            move.apply(centers)
        tries -= 1
        run = lloyd(prep, centers + prep.shift, max_iter, TOL)
        if run.inertia < best.inertia:
            best = run.after(best.n_iter)
            if tries:
                moves, skipped = _moves(prep, best), 0
        elif batch > 1:
            batch //= 2
        else:
            skipped += 1
    return best


@dataclass(frozen=True)
class _Move:
    """Cluster ``b`` merged into ``c``, cluster ``a`` split in two: the new
    centers of ``a``, ``b`` and ``c`` (rows of ``centers``) and the
    estimated change of SSE."""

    estimate: float
    a: int
    b: int
    c: int
    centers: NDArray[np.float64]

    def apply(self, centers: NDArray[np.float64]) -> None:
        centers[[self.a, self.b, self.c]] = self.centers


def _disjoint(moves: list[_Move], batch: int) -> list[_Move]:
    """The first ``batch`` moves in order that share no cluster with an
    earlier one taken."""
    taken: list[_Move] = []
    used: set[int] = set()
    for move in moves:
        clusters = {move.a, move.b, move.c}
        if used.isdisjoint(clusters):
            taken.append(move)
            used |= clusters
            if len(taken) == batch:
                break
    return taken


def _moves(prep: Prepared, fit: LloydResult) -> list[_Move]:
    """Split/merge moves from ``fit``'s centers and labels (shifted
    coordinates), best estimate first.

    A move merges one cluster ``b`` into another ``c`` at their weighted
    mean and splits a third cluster ``a`` in two.  The merge costs
    ``Wb Wc / (Wb + Wc) |mb - mc|^2`` with the clusters' weights and means
    (Ward's criterion; exact with their rows fixed), and ``b`` is merged
    with the cluster for which that is least.  Splitting ``a`` through its
    mean, across its principal axis, gains ``W1 W2 / (W1 + W2) |m1 - m2|^2``
    with the halves' weights and means (exact with their rows fixed).
    Both come from the labels alone: no pass over rows x centers.
    """
    k = fit.centers.shape[0]
    if k < 3:
        return []
    centers = fit.centers - prep.shift
    sums, weight = weighted_sums(prep.wxt, prep.w, fit.labels, k)
    held = weight > 0
    means = np.where(held[:, None], sums / np.where(held, weight, 1)[:, None], centers)
    pair = weight[:, None] + weight[None, :]
    ward = weight[:, None] * weight[None, :] / np.where(pair > 0, pair, 1)
    ward *= ((means[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(ward, np.inf)
    partner = np.argmin(ward, axis=1)
    merge = ward[np.arange(k), partner]
    split, halves = _splits(prep.X, prep.w, fit.labels, means, k)
    cheap = np.argsort(merge, kind="stable")[:_MOVE_SIDE]
    rich = np.argsort(-split, kind="stable")[:_MOVE_SIDE]
    moves: list[_Move] = []
    for a in rich.tolist():
        for b in cheap.tolist():
            c = int(partner[b])
            if split[a] <= 0 or a in (b, c) or pair[b, c] <= 0:
                continue
            joint = (weight[b] * means[b] + weight[c] * means[c]) / pair[b, c]
            new = np.stack([halves[a, 0], halves[a, 1], joint])
            moves.append(_Move(float(merge[b] - split[a]), a, b, c, new))
    moves.sort(key=lambda move: move.estimate)
    return moves


def _splits(
    X: FloatArray,
    w: NDArray[np.float64],
    labels: NDArray[np.intp],
    means: NDArray[np.float64],
    k: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each cluster cut in two through its mean across its principal axis:
    the SSE gained (k,) and the two halves' means (k, 2, d)."""
    d = X.shape[1]
    offset = X - means[labels]
    weighted = offset * w[:, None]
    cov = np.empty((k, d, d))
    for i in range(d):
        for j in range(i, d):
            cov[:, i, j] = cov[:, j, i] = np.bincount(
                labels, weights=weighted[:, i] * offset[:, j], minlength=k
            )
    axis = np.linalg.eigh(cov)[1][:, :, -1]
    side = np.einsum("ij,ij->i", offset, axis[labels]) > 0
    half = 2 * labels + side
    part = np.bincount(half, weights=w, minlength=2 * k).reshape(k, 2)
    sums = np.stack(
        [np.bincount(half, weights=weighted[:, j], minlength=2 * k) for j in range(d)], axis=1
    ).reshape(k, 2, d)
    both = (part > 0).all(axis=1)
    safe = np.where(part > 0, part, 1)
    halves = means[:, None, :] + sums / safe[:, :, None]
    spread = ((halves[:, 0] - halves[:, 1]) ** 2).sum(axis=1)
    gain = np.where(both, part[:, 0] * part[:, 1] / safe.sum(axis=1) * spread, 0.0)
    return gain, halves

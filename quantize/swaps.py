"""Local search by center swaps, for Lloyd's local optima.

Internal to the clustering core (:mod:`quantize.cluster`), which decides
where and how often the search runs.
"""

from __future__ import annotations

import numpy as np

from quantize._kernels import draw, nearest_three, weighted_count
from quantize._lloyd import LloydResult, Prepared, lloyd

__all__ = ["TOL", "swap_search"]

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
    """
    best = start
    k = start.centers.shape[0]
    # A rejected try leaves ``best`` as it was: its distances are reused
    # (the same function of the same centers) instead of recomputed.
    nearest = None
    # Rows tried against the current best (fresh_picks only).
    tried = np.zeros(prep.X.shape[0], dtype=bool) if fresh_picks else None
    for _ in range(tries):
        if nearest is None:
            labels, _, near, others = nearest_three(prep.X, best.centers - prep.shift, prep.x_sq)
            nearest = labels, near**2, others[:, 0] ** 2
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
        run = lloyd(prep, centers, max_iter, TOL)
        if run.inertia < best.inertia:
            n_iter = best.n_iter + run.n_iter
            best = LloydResult(run.centers, run.labels, run.inertia, n_iter, run.state)
            nearest = None
            if tried is not None:
                tried[:] = False
    return best

"""Pixel-weighted quantiles of large value tables, in a few linear passes.

`quantize.metrics.weighted_quantile` is the validated public entry; the
bounded-memory metrics call `parts_quantile` on values kept in parts.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = ["narrow_to_quantile_bin", "parts_quantile"]

FloatArray = NDArray[np.float64]

# `quantize.metrics.weighted_quantile` sorts directly below this size and bins above it.
_QUANTILE_SORT_SIZE: Final[int] = 4096
_QUANTILE_BINS: Final[int] = 1024


def narrow_to_quantile_bin(
    v: FloatArray, w: FloatArray, target: float
) -> tuple[FloatArray, FloatArray, float]:
    """Shrink (values, weights) to a subset that still contains the weighted quantile.

    Values are bucketed into equal-width bins; a weighted histogram shows which
    bin the cumulative weight ``target`` falls in, and only that bin is kept.
    Returns the kept values and weights plus the total weight of all values
    below them. This replaces an O(n log n) argsort of the whole table with a
    few linear passes, which matters for million-row color tables.
    """
    below = 0.0
    while v.size > _QUANTILE_SORT_SIZE:
        lo, hi = float(v.min()), float(v.max())
        scale = _QUANTILE_BINS / (hi - lo) if hi > lo else 0.0
        # All values equal, or a range so wide that the bin width overflows.
        if not (math.isfinite(scale) and scale > 0.0):
            break
        # (v - lo) * scale is monotone in v under rounding, so bins preserve
        # order and every value in a lower bin is strictly smaller. lo and hi
        # land in different bins, so each pass strictly shrinks the subset.
        bins = np.minimum(((v - lo) * scale).astype(np.intp), _QUANTILE_BINS - 1)
        cum = below + np.cumsum(np.bincount(bins, weights=w, minlength=_QUANTILE_BINS))
        k = min(int(np.searchsorted(cum, target, side="left")), _QUANTILE_BINS - 1)
        below = float(cum[k - 1]) if k > 0 else below
        keep = bins == k
        v, w = v[keep], w[keep]
    return v, w, below


def parts_quantile(
    values: list[NDArray[np.float32]],
    weights: list[NDArray[np.integer]],
    q: float,
    total: float,
) -> float:
    """`weighted_quantile` of values and positive integer weights given in parts.

    Narrows to one bin of a histogram of the values, part by part, as
    `narrow_to_quantile_bin` does, so no float64 copy of all the values is
    made; sums of integer weights are exact, so the result is the same.
    """
    target = q * total
    below = 0.0
    while sum(v.size for v in values) > _QUANTILE_SORT_SIZE:
        lo = min(float(v.min()) for v in values if v.size)
        hi = max(float(v.max()) for v in values if v.size)
        scale = _QUANTILE_BINS / (hi - lo) if hi > lo else 0.0
        if not (math.isfinite(scale) and scale > 0.0):
            break
        hist = np.zeros(_QUANTILE_BINS)
        for v, w in zip(values, weights, strict=True):
            b = _bin_of(v, lo, scale)
            hist += np.bincount(b, weights=w.astype(np.float64), minlength=_QUANTILE_BINS)
        cum = below + np.cumsum(hist)
        k = min(int(np.searchsorted(cum, target, side="left")), _QUANTILE_BINS - 1)
        below = float(cum[k - 1]) if k > 0 else below
        # Bins are recomputed rather than kept: they would be 8 bytes a value.
        keep = [_bin_of(v, lo, scale) == k for v in values]
        values = [np.concatenate([v[m] for v, m in zip(values, keep, strict=True)])]
        weights = [np.concatenate([w[m] for w, m in zip(weights, keep, strict=True)])]
    v = np.concatenate(values).astype(np.float64)
    w = np.concatenate(weights).astype(np.float64)
    order = np.argsort(v, kind="stable")
    cum = below + np.cumsum(w[order])
    idx = min(int(np.searchsorted(cum, target, side="left")), cum.size - 1)
    return float(v[order[idx]])


def _bin_of(values: NDArray[np.float32], lo: float, scale: float) -> NDArray[np.intp]:
    """Histogram bin of each value, as `narrow_to_quantile_bin` numbers them."""
    bins = ((values.astype(np.float64) - lo) * scale).astype(np.intp)
    return np.minimum(bins, _QUANTILE_BINS - 1, out=bins)

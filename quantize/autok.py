"""Choosing the palette size from a quality target (``-k auto``).

The search asks for the smallest k whose result meets the target.  Quality
grows with k almost always but not strictly (k-means finds local optima), so
the search is a bisection that *verifies* its answer: the chosen k met the
target and k - 1 was tried and missed it (unless k is the lower bound).  It
first tries the upper bound; when even that misses, it is used anyway and
the result says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from quantize.metrics import QualityMetrics

__all__ = ["DEFAULT_PSNR", "AutoK", "KSearch", "Target", "smallest_k"]

#: Target PSNR in dB of ``-k auto`` when none is given.
DEFAULT_PSNR = 32.0

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """A quality goal: PSNR at least ``value`` dB, or mean CIEDE2000 at most ``value``.

    Attributes
    ----------
    metric : {"psnr", "delta_e"}
    value : float
    """

    metric: Literal["psnr", "delta_e"]
    value: float

    def __post_init__(self) -> None:
        if self.metric not in ("psnr", "delta_e"):
            raise ValueError(f"target metric must be 'psnr' or 'delta_e', got {self.metric!r}")
        if not (math.isfinite(self.value) and self.value > 0):
            raise ValueError(f"target value must be a positive number, got {self.value}")

    def met_by(self, metrics: QualityMetrics) -> bool:
        """Whether ``metrics`` reach the target."""
        if self.metric == "psnr":
            return metrics.psnr >= self.value
        return metrics.delta_e_mean <= self.value

    def describe(self) -> str:
        """The target in words, e.g. ``PSNR >= 32 dB``."""
        if self.metric == "psnr":
            return f"PSNR >= {self.value:g} dB"
        return f"mean ΔE00 <= {self.value:g}"

    def to_dict(self) -> dict[str, float]:
        """``{"psnr": v}`` or ``{"delta_e_mean": v}`` for the report."""
        return {"psnr" if self.metric == "psnr" else "delta_e_mean": self.value}


@dataclass(frozen=True)
class KSearch(Generic[T]):
    """The outcome of :func:`smallest_k`.

    Attributes
    ----------
    chosen : int
        The k used.
    met : bool
        Whether ``chosen`` meets the target (False only when the upper bound
        missed it too).
    result : T
        What the evaluation returned for ``chosen``.
    tried : list of (int, bool)
        Every k evaluated, in order, and whether it met the target.
    """

    chosen: int
    met: bool
    result: T
    tried: list[tuple[int, bool]]


def smallest_k(
    evaluate: Callable[[int], T], meets: Callable[[T], bool], lo: int, hi: int
) -> KSearch[T]:
    """Smallest k in ``lo..hi`` whose evaluation meets the target, by bisection.

    Parameters
    ----------
    evaluate : callable int -> T
        Runs the quantization for one k; called at most once per k, about
        ``log2(hi - lo) + 2`` times in all.
    meets : callable T -> bool
        Whether a result reaches the target.
    lo, hi : int
        Bounds, ``lo <= hi``.

    Returns
    -------
    KSearch
        When ``hi`` misses the target, ``chosen == hi`` and ``met`` is False.
        Otherwise ``chosen`` met it and ``chosen - 1`` was tried and missed
        (or ``chosen == lo``).
    """
    if lo > hi:
        raise ValueError(f"empty range of k: {lo}..{hi}")
    tried: list[tuple[int, bool]] = []
    first = evaluate(hi)
    tried.append((hi, meets(first)))
    if not tried[-1][1]:
        return KSearch(hi, False, first, tried)
    # Invariant: ``good`` met the target; ``bad`` missed it or is below the
    # range.  Only the result of ``good`` is kept (results may be large).
    bad, good, good_result = lo - 1, hi, first
    while good - bad > 1:
        mid = (bad + good) // 2
        result = evaluate(mid)
        tried.append((mid, meets(result)))
        if tried[-1][1]:
            good, good_result = mid, result
        else:
            bad = mid
    return KSearch(good, True, good_result, tried)


@dataclass(frozen=True)
class AutoK:
    """What ``-k auto`` did, for the summary line and the report.

    Attributes
    ----------
    target : Target
    chosen : int
        The k used.
    met : bool
        Whether ``chosen`` meets the target.
    tried : list of (int, bool, QualityMetrics)
        Every k clustered, in order, whether it met the target, and its metrics.
    """

    target: Target
    chosen: int
    met: bool
    tried: list[tuple[int, bool, QualityMetrics]]

    def describe(self) -> str:
        """Why ``chosen`` was used, for the summary line."""
        if self.met:
            return f"smallest k with {self.target.describe()}"
        return f"{self.target.describe()} not reached even with k={self.chosen}"

    def to_dict(self) -> dict[str, Any]:
        """The ``k_auto`` object of the report.

        Each try is ``{"k", "met", "psnr", "delta_e_mean"}`` (PSNR ``null``
        when the result is exact).
        """
        tried = []
        for k, met, m in self.tried:
            psnr = None if math.isinf(m.psnr) else round(m.psnr, 3)
            entry = {"k": k, "met": met, "psnr": psnr, "delta_e_mean": round(m.delta_e_mean, 4)}
            tried.append(entry)
        return {
            "target": self.target.to_dict(),
            "chosen": self.chosen,
            "met": self.met,
            "tried": tried,
        }

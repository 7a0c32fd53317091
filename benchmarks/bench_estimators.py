"""Benchmark quantize's estimators against scikit-learn's, side by side.

Every case runs ours and scikit-learn's in turn, once per seed and repeat
(interleaved, so that a busy moment of the machine hits both), and prints
the median time and the median inertia:

* pixels: ``load_sample_image('china.jpg').reshape(-1, 3) / 255`` (the Python
  Data Science Handbook's k-means chapter) at k = 16 and 64, and the same of
  ``flower.jpg`` as a photo the targets were not set on.  ``KMeans(k)`` at our
  defaults against scikit-learn ``KMeans(k, n_init=1)``; ``MiniBatchKMeans(k)``
  against scikit-learn ``MiniBatchKMeans(k)``, both at their defaults.
* general data: digits (1797 x 64) at k = 10 and random normal 100k x 16 at
  k = 8, ``KMeans`` at equal ``n_init`` (1 and 10 on digits, 1 on the random
  data).
* the chapter's digits accuracy: ``KMeans(10)`` on digits at each library's
  defaults, each cluster mapped to the most common true digit in it,
  ``accuracy_score``; over the same seeds (the chapter uses 0).

Finally every target of issue 14 with PASS or FAIL:

* china k = 16 and 64: ``KMeans`` at least 5x faster than scikit-learn
  ``KMeans(n_init=1)`` with a lower inertia; ``MiniBatchKMeans`` at least as
  fast as scikit-learn's with a lower inertia;
* digits and random 100k x 16: no slower than scikit-learn at equal
  ``n_init``, inertia within 1%;
* digits accuracy at the defaults at least scikit-learn's (median over the
  seeds, and the chapter's seed 0).

Run from the repository root on a quiet machine::

    python benchmarks/bench_estimators.py

``--quick`` runs one seed and one repeat (a check that the script works, not
a measurement); ``--seeds`` and ``--repeats`` change the defaults (5 and 3).
``--clock cpu`` times the CPU time of the process (all its threads) instead
of the wall clock: on a busy machine that compares the work done, which the
wall clock cannot; run it with ``OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1``
so that neither library's threads wait for each other.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import status as verdict  # noqa: E402

from quantize import KMeans, MiniBatchKMeans  # noqa: E402

try:
    from sklearn import cluster as skc
    from sklearn.datasets import load_digits, load_sample_image
    from sklearn.metrics import accuracy_score
except ImportError:  # pragma: no cover - the peer is required
    sys.exit("bench_estimators: scikit-learn is not installed; it is the peer of every row")

Factory = Callable[[int], Any]


@dataclass
class Case:
    """One side-by-side comparison: ours and theirs, fitted once per seed."""

    name: str
    X: NDArray[np.float64]
    ours: Factory
    theirs: Factory
    ours_times: list[float] = field(default_factory=list)
    theirs_times: list[float] = field(default_factory=list)
    ours_inertia: list[float] = field(default_factory=list)
    theirs_inertia: list[float] = field(default_factory=list)

    def run(self, seeds: range, repeats: int, clock: Callable[[], float]) -> None:
        for seed in seeds:
            for repeat in range(repeats):
                # Alternate who goes first, so neither always gets a warm cache.
                order = [(self.ours, True), (self.theirs, False)]
                for factory, is_ours in order if repeat % 2 == 0 else order[::-1]:
                    model = factory(seed)
                    start = clock()
                    model.fit(self.X)
                    elapsed = clock() - start
                    (self.ours_times if is_ours else self.theirs_times).append(elapsed)
                    if repeat == 0:
                        inertia = float(model.inertia_)
                        (self.ours_inertia if is_ours else self.theirs_inertia).append(inertia)

    @property
    def speedup(self) -> float:
        return statistics.median(self.theirs_times) / statistics.median(self.ours_times)

    @property
    def inertia_ratio(self) -> float:
        """Our median inertia over theirs (below 1: ours is lower)."""
        return statistics.median(self.ours_inertia) / statistics.median(self.theirs_inertia)

    def row(self) -> str:
        med = statistics.median
        ours_t, theirs_t = med(self.ours_times), med(self.theirs_times)
        ours_i, theirs_i = med(self.ours_inertia), med(self.theirs_inertia)
        lower = sum(a < b for a, b in zip(self.ours_inertia, self.theirs_inertia, strict=True))
        return (
            f"{self.name:<44} {ours_t:8.3f} {theirs_t:8.3f} {self.speedup:7.2f}x "
            f"{ours_i:14.6g} {theirs_i:14.6g} {100 * (self.inertia_ratio - 1):+7.2f}% "
            f"{lower}/{len(self.ours_inertia)}"
        )


def pixels(name: str) -> NDArray[np.float64]:
    return np.asarray(load_sample_image(name), dtype=np.float64).reshape(-1, 3) / 255


def pixel_cases(image: str, ks: tuple[int, ...]) -> list[Case]:
    X = pixels(image)
    cases = []
    for k in ks:
        cases.append(
            Case(
                f"{image} k={k} KMeans (sklearn n_init=1)",
                X,
                lambda s, k=k: KMeans(k, random_state=s),
                lambda s, k=k: skc.KMeans(k, n_init=1, random_state=s),
            )
        )
        cases.append(
            Case(
                f"{image} k={k} MiniBatchKMeans",
                X,
                lambda s, k=k: MiniBatchKMeans(k, random_state=s),
                lambda s, k=k: skc.MiniBatchKMeans(k, random_state=s),
            )
        )
    return cases


def general_cases() -> list[Case]:
    digits = load_digits().data.astype(np.float64)
    noise = np.random.default_rng(0).normal(size=(100_000, 16))
    cases = []
    for n_init in (1, 10):
        cases.append(
            Case(
                f"digits k=10 KMeans n_init={n_init}",
                digits,
                lambda s, n=n_init: KMeans(10, n_init=n, random_state=s),
                lambda s, n=n_init: skc.KMeans(10, n_init=n, random_state=s),
            )
        )
    cases.append(
        Case(
            "random 100k x 16 k=8 KMeans n_init=1",
            noise,
            lambda s: KMeans(8, n_init=1, random_state=s),
            lambda s: skc.KMeans(8, n_init=1, random_state=s),
        )
    )
    return cases


def digits_accuracy(labels: NDArray[np.integer], truth: NDArray[np.integer]) -> float:
    """The chapter's score: each cluster is read as its most common digit."""
    mapped = np.zeros_like(truth)
    for cluster in np.unique(labels):
        members = labels == cluster
        mapped[members] = np.bincount(truth[members]).argmax()
    return float(accuracy_score(truth, mapped))


def accuracy_at_defaults(seeds: range) -> tuple[list[float], list[float]]:
    digits = load_digits()
    ours: list[float] = []
    theirs: list[float] = []
    for seed in seeds:
        ours.append(
            digits_accuracy(KMeans(10, random_state=seed).fit_predict(digits.data), digits.target)
        )
        theirs.append(
            digits_accuracy(
                skc.KMeans(10, random_state=seed).fit_predict(digits.data), digits.target
            )
        )
    return ours, theirs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per case (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="timed fits per seed (default 3)")
    parser.add_argument("--quick", action="store_true", help="one seed, one repeat")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall clock (default) or the process's CPU time",
    )
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    seeds = range(1 if args.quick else args.seeds)
    repeats = 1 if args.quick else args.repeats

    # Warm up both libraries (lazy imports, first BLAS and OpenMP calls).
    warm = np.random.default_rng(0).random((20000, 3))
    for model in (KMeans(4), MiniBatchKMeans(4), skc.KMeans(4), skc.MiniBatchKMeans(4)):
        model.fit(warm)
        model.fit((warm * 255).round() / 255)

    china = pixel_cases("china.jpg", (16, 64))
    flower = pixel_cases("flower.jpg", (16, 64))
    general = general_cases()
    print(
        f"seeds {seeds.start}..{seeds.stop - 1}, {repeats} timed fit(s) per seed, "
        f"interleaved, {args.clock} clock"
    )
    header = (
        f"{'case':<44} {'ours s':>8} {'sklearn':>8} {'speedup':>8} "
        f"{'ours inertia':>14} {'sk inertia':>14} {'diff':>8} lower"
    )
    print(header)
    print("-" * len(header))
    for case in (*china, *flower, *general):
        case.run(seeds, repeats, clock)
        print(case.row(), flush=True)

    ours_acc, theirs_acc = accuracy_at_defaults(seeds)
    print()
    print("digits accuracy, KMeans(10) at each library's defaults (seed: ours / sklearn)")
    for seed, a, b in zip(seeds, ours_acc, theirs_acc, strict=True):
        print(f"  seed {seed}: {a:.4f} / {b:.4f}")

    print()
    print("targets")
    results = []
    for case in china:
        if "MiniBatch" in case.name:
            ok = case.speedup >= 1.0 and case.inertia_ratio < 1.0
            goal = "as fast as sklearn, lower inertia"
        else:
            ok = case.speedup >= 5.0 and case.inertia_ratio < 1.0
            goal = ">= 5x faster, lower inertia"
        results.append(ok)
        print(
            f"  {verdict(ok)}  {case.name}: {goal} "
            f"({case.speedup:.2f}x, {100 * (case.inertia_ratio - 1):+.2f}%)"
        )
    for case in general:
        ok = case.speedup >= 1.0 and case.inertia_ratio <= 1.01
        results.append(ok)
        print(
            f"  {verdict(ok)}  {case.name}: no slower, inertia within 1% "
            f"({case.speedup:.2f}x, {100 * (case.inertia_ratio - 1):+.2f}%)"
        )
    median_ok = statistics.median(ours_acc) >= statistics.median(theirs_acc)
    book_ok = ours_acc[0] >= theirs_acc[0]
    results += [median_ok, book_ok]
    print(
        f"  {verdict(median_ok)}  digits accuracy at defaults, median over seeds: "
        f"{statistics.median(ours_acc):.4f} vs {statistics.median(theirs_acc):.4f}"
    )
    print(
        f"  {verdict(book_ok)}  digits accuracy at defaults, the chapter's seed 0: "
        f"{ours_acc[0]:.4f} vs {theirs_acc[0]:.4f}"
    )
    print(f"{sum(results)}/{len(results)} targets met")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Quality of the command's default result on photos nobody tuned on, against scikit-learn.

For every image of the held-out corpus (:mod:`corpus`: scikit-image and
matplotlib sample photos plus synthetic renders) and k = 8, 16, 64, 256 it
prints the MSE (per channel, 0-255 sRGB scale, over every pixel) of

* ours: what ``quantize IMG -k K`` writes, computed in-process with
  :func:`quantize.quantize_image` (the function the command calls) and
  judged on its palette image converted back to RGB; seed 0 is the
  command's default, seeds 0-4 give the seed-to-seed spread;
* scikit-learn ``KMeans(n_init=10, random_state=0)``: the best of ten runs,
  the oracle, and ``KMeans(n_init=1, random_state=s)`` for s = 0-4
  (``algorithm="elkan"`` from k = 64: the same iterations, sped up by
  exact bounds).

Both are judged the same way: centers rounded to 8-bit colors, every pixel
mapped to its nearest rounded color.

scikit-learn is fitted on the image's *distinct colors weighted by their
pixel counts* (``sample_weight``), not on the raw pixels.  That is the same
k-means problem, not an approximation: the weighted SSE of the distinct
colors equals the SSE of the pixels for any centers, Lloyd's iterations
take identical steps, and weighted k-means++ draws a color with the
probability that it draws one of that color's pixels.  It is still slow at
k = 256 (about an hour for the corpus), so its results are cached in
``benchmarks/corpus_sklearn.json``, keyed by image name, k and a digest of
the pixels (a changed render is recomputed), with the scikit-learn version
that produced them.  ``--recompute-sklearn`` ignores the cache.

Target of issue 14: ours (seed 0) within 0.5% of scikit-learn's best of 10
on every image and k.  The last table counts, per k, the cases that miss it
for each of our seeds, so that no verdict rests on one lucky seed.

Run from the repository root (``pip install ".[bench]"`` for scikit-image)::

    python benchmarks/bench_corpus.py            # every image, k, 5 seeds
    python benchmarks/bench_corpus.py --quick    # 5 images, 2 seeds
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import mse as image_mse  # noqa: E402
from corpus import CorpusImage, corpus  # noqa: E402
from tuning import tuning_set  # noqa: E402

from quantize import quantize_image  # noqa: E402
from quantize.histogram import color_table, pack_rgb  # noqa: E402

KS = (8, 16, 64, 256)
SEEDS = 5
TARGET = 0.005  # within 0.5% of scikit-learn's best of 10
CACHE = ROOT / "benchmarks" / "corpus_sklearn.json"
TUNING_CACHE = ROOT / "benchmarks" / "tuning_sklearn.json"
QUICK_IMAGES = ("astronaut", "coffee", "motorcycle_left", "grace_hopper", "render-gradient")


@dataclass(frozen=True)
class Oracle:
    """scikit-learn's MSE: best of 10 runs, and one run per seed 0-4."""

    best10: float
    single: list[float]


@dataclass(frozen=True)
class Ours:
    """Our MSE per seed (index 0 is the command's default) and median seconds."""

    mse: list[float]
    seconds: float


def digest(pixels: NDArray[np.uint8]) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()[:16]


def table_of(pixels: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:
    """Distinct colors (m, 3) and their pixel counts (m,)."""
    table = color_table(pack_rgb(pixels.reshape(-1, 3)))
    return table.colors, table.counts.astype(np.float64)


def palette_mse(
    colors: NDArray[np.uint8], counts: NDArray[np.float64], palette: NDArray[np.uint8]
) -> float:
    """Per-channel MSE of every pixel mapped to its nearest palette color.

    Plain numpy on the distinct colors (weighted by count), independent of
    quantize's own mapping.
    """
    pal = palette.astype(np.int64)
    total = 0.0
    for start in range(0, colors.shape[0], 4096):
        c = colors[start : start + 4096].astype(np.int64)
        d = ((c[:, None, :] - pal[None, :, :]) ** 2).sum(axis=2).min(axis=1)
        total += float(counts[start : start + 4096] @ d)
    return total / (3.0 * counts.sum())


def run_ours(image: CorpusImage, k: int, seeds: int) -> Ours:
    mses, times = [], []
    source = Image.fromarray(image.pixels)
    for seed in range(seeds):
        start = time.perf_counter()
        result = quantize_image(source, k, seed=seed)
        times.append(time.perf_counter() - start)
        mses.append(image_mse(image.pixels, result.image))
    return Ours(mses, statistics.median(times))


def sklearn_oracle(image: CorpusImage, k: int) -> Oracle:
    from sklearn.cluster import KMeans

    colors, counts = table_of(image.pixels)
    if colors.shape[0] <= k:
        return Oracle(0.0, [0.0] * SEEDS)
    data = colors / 255.0

    def mse_of(model: KMeans) -> float:
        model.fit(data, sample_weight=counts)
        palette = np.clip(np.rint(model.cluster_centers_ * 255.0), 0, 255).astype(np.uint8)
        return palette_mse(colors, counts, palette)

    # Elkan's algorithm takes the same steps as Lloyd's (exact bounds), faster at high k.
    algorithm = "elkan" if k >= 64 else "lloyd"
    best10 = mse_of(KMeans(k, n_init=10, random_state=0, algorithm=algorithm))
    single = [
        mse_of(KMeans(k, n_init=1, random_state=s, algorithm=algorithm)) for s in range(SEEDS)
    ]
    return Oracle(best10, single)


class OracleCache:
    """scikit-learn results on disk, computed once (see the module docstring)."""

    def __init__(self, path: Path, recompute: bool) -> None:
        self.path = path
        self.data: dict[str, object] = {"results": {}}
        if path.exists() and not recompute:
            self.data = json.loads(path.read_text())

    def get(self, image: CorpusImage, k: int) -> Oracle:
        import sklearn

        results = self.data["results"]
        assert isinstance(results, dict)
        key = f"{image.name}|{k}|{digest(image.pixels)}"
        if key not in results:
            print(f"  (computing scikit-learn on {image.name}, k={k} ...)", file=sys.stderr)
            oracle = sklearn_oracle(image, k)
            results[key] = {"best10": oracle.best10, "single": oracle.single}
            self.data["note"] = (
                "scikit-learn KMeans MSE (per channel, 0-255) on the distinct colors weighted "
                "by pixel count; best10 = KMeans(n_init=10, random_state=0), single[s] = "
                "KMeans(n_init=1, random_state=s); written by benchmarks/bench_corpus.py"
            )
            self.data["sklearn_version"] = sklearn.__version__
            self.path.write_text(json.dumps(self.data, indent=1, sort_keys=True) + "\n")
        entry = results[key]
        return Oracle(float(entry["best10"]), [float(v) for v in entry["single"]])


def gap(value: float, best: float) -> float:
    """Relative excess over ``best`` (0 when both are exact)."""
    if best == 0.0:
        return 0.0 if value == 0.0 else float("inf")
    return value / best - 1.0


def pct(value: float) -> str:
    return f"{100 * value:+.2f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK_IMAGES)}")
    parser.add_argument("--seeds", type=int, default=None, help="our seeds (default 5; 2 quick)")
    parser.add_argument("--ks", default=",".join(map(str, KS)), help="comma-separated k")
    parser.add_argument("--only", default="", help="comma-separated image names")
    parser.add_argument(
        "--set",
        choices=("corpus", "tuning"),
        default="corpus",
        help="the held-out corpus, or the tuning set (benchmarks/tuning.py) to tune on",
    )
    parser.add_argument("--recompute-sklearn", action="store_true", help="ignore the cache")
    parser.add_argument(
        "--fill-cache", action="store_true", help="only compute missing scikit-learn results"
    )
    args = parser.parse_args()
    seeds = args.seeds or (2 if args.quick else SEEDS)
    ks = [int(k) for k in args.ks.split(",")]
    images = corpus() if args.set == "corpus" else tuning_set()
    cache_path = CACHE if args.set == "corpus" else TUNING_CACHE
    wanted = set(args.only.split(",")) if args.only else set(QUICK_IMAGES) if args.quick else None
    if wanted is not None:
        images = [im for im in images if im.name in wanted]
    try:
        cache: OracleCache | None = OracleCache(cache_path, args.recompute_sklearn)
        import sklearn  # noqa: F401
    except ImportError:
        print("scikit-learn is not installed: cached oracle results only", file=sys.stderr)
        cache = None if not cache_path.exists() else OracleCache(cache_path, False)

    if args.fill_cache:
        assert cache is not None, "--fill-cache needs scikit-learn"
        for k in ks:
            for image in images:
                cache.get(image, k)
        return
    print(
        f"MSE per channel (0-255). ours: quantize_image (the command's path), seed 0 and "
        f"seeds 0-{seeds - 1}; sk10: scikit-learn KMeans(n_init=10); sk1: n_init=1, seeds 0-4. "
        f"Gaps relative to sk10."
    )
    header = (
        f"{'image':<26}{'k':>4}{'sk10':>10}{'ours s0':>10}{'gap s0':>9}"
        f"{'ours min..max gap':>21}{'sk1 min..max gap':>21}{'ours s':>8}"
    )
    print(header)
    misses: dict[int, list[int]] = {k: [0] * seeds for k in ks}
    worst: dict[int, float] = {k: -1.0 for k in ks}
    cases: dict[int, int] = {k: 0 for k in ks}
    for image in images:
        for k in ks:
            ours = run_ours(image, k, seeds)
            line = f"{image.name:<26}{k:>4}"
            if cache is None:
                print(f"{line}{'-':>10}{ours.mse[0]:>10.3f}")
                continue
            try:
                oracle = cache.get(image, k)
            except ImportError:
                print(f"{line}{'-':>10}{ours.mse[0]:>10.3f}  (no cached oracle)")
                continue
            gaps = [gap(m, oracle.best10) for m in ours.mse]
            sk_gaps = [gap(m, oracle.best10) for m in oracle.single]
            cases[k] += 1
            worst[k] = max(worst[k], gaps[0])
            for s, g in enumerate(gaps):
                misses[k][s] += g > TARGET
            spread = f"{pct(min(gaps))}..{pct(max(gaps))}"
            sk_spread = f"{pct(min(sk_gaps))}..{pct(max(sk_gaps))}"
            print(
                f"{line}{oracle.best10:>10.3f}{ours.mse[0]:>10.3f}{pct(gaps[0]):>9}"
                f"{spread:>21}{sk_spread:>21}{ours.seconds:>8.3f}",
                flush=True,
            )
    if cache is None:
        return
    print(f"\nCases more than {100 * TARGET:.1f}% above sk10, per k, for each of our seeds:")
    for k in ks:
        if cases[k]:
            per_seed = " ".join(str(m) for m in misses[k])
            print(
                f"  k={k:<4} {cases[k]} images; misses by seed: {per_seed}; worst seed-0 gap "
                f"{pct(worst[k])}"
            )
    ok = all(misses[k][0] == 0 for k in ks if cases[k])
    print(
        f"\n  {'PASS' if ok else 'FAIL'}  seed 0 (the default) within {100 * TARGET:.1f}% of "
        "scikit-learn's best of 10 on every image and k"
    )


if __name__ == "__main__":
    main()

"""Which --space gives the lowest mean CIEDE2000, on images nobody tuned on?

For every image of the held-out corpus (``benchmarks/corpus.py``), at k = 16
and 64 and over several seeds, it runs :func:`quantize.quantize_image` in
rgb, lab and oklab (no dithering, the command's defaults otherwise) and
prints the mean CIEDE2000 of each (the report's ``delta_e_mean``, a
pixel-by-pixel mean computed on the weighted color table), then per k a
summary: on how many images lab has the lowest mean ΔE00 of the three, and
the mean over images of each space.

``--large`` also runs every corpus image scaled to 12 MP (``corpus.large``),
which is where the issue saw lab tie or lose to rgb.  ``--images`` picks a
subset by name, ``--seeds`` the number of seeds.

Run from the repository root (``pip install ".[bench]"`` brings scikit-image
for the photos)::

    python benchmarks/bench_spaces.py --seeds 3 --large
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import _common  # noqa: F401  (puts the working tree on sys.path)
from corpus import CorpusImage, corpus, large
from PIL import Image

from quantize import quantize_image

SPACES = ("rgb", "lab", "oklab")
KS = (16, 64)


def mean_delta_e(image: CorpusImage, k: int, space: str, seed: int) -> tuple[float, float]:
    """Mean ΔE00 of the quantized image, and the seconds the call took."""
    start = time.perf_counter()
    result = quantize_image(Image.fromarray(image.pixels), k, space=space, seed=seed)
    seconds = time.perf_counter() - start
    assert result.metrics.delta_e_mean is not None
    return result.metrics.delta_e_mean, seconds


def run(
    images: list[CorpusImage], seeds: int, header: bool = True
) -> dict[tuple[str, int], dict[str, float]]:
    """Mean over seeds of each space's mean ΔE00, per (image, k); prints a row each."""
    table: dict[tuple[str, int], dict[str, float]] = {}
    if header:
        print("| image | MP | k | rgb | lab | oklab | best | seconds (rgb/lab/oklab) |")
        print("|---|---:|---:|---:|---:|---:|---|---|")
    for image in images:
        h, w = image.pixels.shape[:2]
        for k in KS:
            scores: dict[str, float] = {}
            times: dict[str, float] = {}
            for space in SPACES:
                runs = [mean_delta_e(image, k, space, seed) for seed in range(seeds)]
                scores[space] = statistics.fmean(de for de, _ in runs)
                times[space] = statistics.median(t for _, t in runs)
            table[(image.name, k)] = scores
            best = min(SPACES, key=scores.__getitem__)
            print(
                f"| {image.name} | {h * w / 1e6:.1f} | {k} | {scores['rgb']:.3f} | "
                f"{scores['lab']:.3f} | {scores['oklab']:.3f} | {best} | "
                + " / ".join(f"{times[s]:.2f}" for s in SPACES)
                + " |",
                flush=True,
            )
    return table


def summary(table: dict[tuple[str, int], dict[str, float]], label: str) -> None:
    """Per k: images where each space is best, and the mean of each space over images."""
    by_k: dict[int, list[dict[str, float]]] = defaultdict(list)
    for (_, k), scores in table.items():
        by_k[k].append(scores)
    for k, rows in sorted(by_k.items()):
        wins = {s: sum(min(SPACES, key=r.__getitem__) == s for r in rows) for s in SPACES}
        lab_vs_rgb = sum(r["lab"] < r["rgb"] for r in rows)
        means = {s: statistics.fmean(r[s] for r in rows) for s in SPACES}
        print(
            f"{label} k={k}: lowest mean ΔE00 on "
            + ", ".join(f"{s} {wins[s]}" for s in SPACES)
            + f" of {len(rows)} images; lab below rgb on {lab_vs_rgb}; mean over images "
            + ", ".join(f"{s} {means[s]:.3f}" for s in SPACES)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per setting (mean)")
    parser.add_argument("--large", action="store_true", help="also the 12 MP versions")
    parser.add_argument("--images", nargs="*", help="only these corpus images (by name)")
    args = parser.parse_args()
    images = corpus()
    if args.images:
        images = [im for im in images if im.name in args.images]
    print(f"mean ΔE00 over seeds 0..{args.seeds - 1}, no dithering\n")
    summary(run(images, args.seeds), "corpus")
    if args.large:
        print()
        # One 12 MP image at a time: its pixels are ~36 MB, its table larger.
        table: dict[tuple[str, int], dict[str, float]] = {}
        for i, image in enumerate(images):
            table.update(run([large(image)], args.seeds, header=i == 0))
        summary(table, "12 MP")


if __name__ == "__main__":
    main()

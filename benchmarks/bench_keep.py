"""Kept colors (--keep): quality and time against the simple baseline.

For every image of the held-out corpus (benchmarks/corpus.py) and the
sample photos, each k and seed, prints the MSE and mean CIEDE2000 of

* ``plain``: an ordinary palette of k colors (no kept color),
* ``keep``: ``quantize_image(..., keep=K)``, the kept colors as fixed centers,
* ``baseline``: the kept colors plus an ordinary palette of k - n colors,
  every pixel recolored with the union (what a user can do without --keep),

and the time of ``keep`` relative to ``plain``.  The kept colors are white
and black, or with ``--random`` n random colors per seed.  The last column
says whether keep did at least as well as the baseline in the clustering
space's objective (MSE for rgb).

Usage: python benchmarks/bench_keep.py [--ks 8,16,64] [--seeds 3] [--space rgb]
       [--random N] [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import SAMPLES
from corpus import corpus
from PIL import Image

from quantize import quantize_image
from quantize.imageio import LoadedImage, load_image
from quantize.metrics import palette_metrics
from quantize.palette import Palette
from quantize.pipeline import apply_palette, fit_palette, visible_table


def _images(quick: bool) -> list[tuple[str, LoadedImage]]:
    images = [(p.name, load_image(p)) for p in sorted(SAMPLES.glob("*.jpg"))]
    if quick:
        return images[:1]
    for item in corpus(renders_size=(300, 400)):
        images.append((item.name, load_image(Image.fromarray(item.pixels))))
    return images


def _baseline(
    loaded: LoadedImage, k: int, keep: np.ndarray, seed: int, space: str
) -> tuple[float, float]:
    table, _ = visible_table(loaded)
    free = fit_palette(table, k - len(keep), seed=seed, space=space).palette.colors
    colors = np.concatenate([keep, free])
    _, first = np.unique(colors, axis=0, return_index=True)
    fit = apply_palette(table, Palette.from_colors(colors[np.sort(first)]), space)
    m = palette_metrics(table.colors, table.counts, fit.palette.colors, fit.labels)
    return m.mse, m.delta_e_mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", default="8,16,64")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--space", default="rgb")
    parser.add_argument("--random", type=int, default=0, help="n random kept colors")
    parser.add_argument("--quick", action="store_true", help="one image, one seed: a smoke run")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    seeds = range(1 if args.quick else args.seeds)
    print(
        f"{'image':28} {'k':>3} {'seed':>4}  {'plain MSE/ΔE':>14}  {'keep MSE/ΔE':>14}  "
        f"{'baseline MSE/ΔE':>16}  {'time keep/plain':>15}  ok"
    )
    worse = 0
    for name, loaded in _images(args.quick):
        for k in ks:
            for seed in seeds:
                if args.random:
                    rng = np.random.default_rng(seed)
                    keep = rng.integers(0, 256, (args.random, 3)).astype(np.uint8)
                else:
                    keep = np.array([[255, 255, 255], [0, 0, 0]], np.uint8)
                start = time.perf_counter()
                plain = quantize_image(loaded, k, seed=seed, space=args.space).metrics
                t_plain = time.perf_counter() - start
                start = time.perf_counter()
                kept = quantize_image(loaded, k, seed=seed, space=args.space, keep=keep).metrics
                t_keep = time.perf_counter() - start
                base = _baseline(loaded, k, keep, seed, args.space)
                ok = kept.mse <= base[0] if args.space == "rgb" else "-"
                worse += ok is False
                print(
                    f"{name[:28]:28} {k:>3} {seed:>4}  {plain.mse:7.1f}/{plain.delta_e_mean:5.2f}"
                    f"  {kept.mse:7.1f}/{kept.delta_e_mean:5.2f}  {base[0]:9.1f}/{base[1]:5.2f}"
                    f"  {t_keep / t_plain:15.2f}  {ok}"
                )
    if args.space == "rgb":
        print(f"keep worse than the baseline in {worse} runs")


if __name__ == "__main__":
    main()

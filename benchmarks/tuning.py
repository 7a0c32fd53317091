"""A tuning set: images to tune the clustering schedule on, none of them in the corpus.

The held-out corpus (:mod:`corpus`) is what quality claims are measured on;
a change to the schedule is tuned here first and only then checked there, so
that the corpus stays data nobody tuned on.  These images come from the same
installed packages but are different pictures (scikit-image's textures,
chessboard and animated GIF, matplotlib's logo and elevation data rendered
with colormaps, crops and rescales of scikit-learn's two sample photos) and
from the corpus's renderers with other seeds and parameters.  Nothing is
downloaded.

``python benchmarks/bench_corpus.py --set tuning`` measures them against
scikit-learn (cached in ``benchmarks/tuning_sklearn.json``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
from corpus import CorpusImage, _flat, _gradient, _night, _rgb
from numpy.typing import NDArray
from PIL import Image


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _tint(
    gray: NDArray[np.uint8], low: tuple[int, int, int], high: tuple[int, int, int]
) -> NDArray[np.uint8]:
    """A grayscale image mapped linearly from color ``low`` to ``high``."""
    t = gray.astype(np.float64)[..., None] / 255.0
    rgb = np.array(low) * (1 - t) + np.array(high) * t
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _shaded(elevation: NDArray[np.float64], cmap: str, size: tuple[int, int]) -> NDArray[np.uint8]:
    """An elevation grid in a colormap with hill shading, resized (h, w)."""
    from matplotlib import colormaps
    from matplotlib.colors import LightSource

    rgb = LightSource(azdeg=315, altdeg=40).shade(
        elevation, cmap=colormaps[cmap], blend_mode="soft", vert_exag=0.05
    )
    im = Image.fromarray(np.clip(np.rint(rgb[..., :3] * 255), 0, 255).astype(np.uint8))
    return np.asarray(im.resize((size[1], size[0]), Image.Resampling.BICUBIC))


def _noisy(pixels: NDArray[np.uint8], sigma: float, seed: int) -> NDArray[np.uint8]:
    noise = np.random.default_rng(seed).normal(0.0, sigma, pixels.shape)
    return np.clip(pixels + noise, 0, 255).astype(np.uint8)


def _thumbnail(pixels: NDArray[np.uint8], size: tuple[int, int]) -> NDArray[np.uint8]:
    """``pixels`` resized (Lanczos) to ``size`` (h, w)."""
    im = Image.fromarray(pixels).resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return np.asarray(im)


def _darkened(pixels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """A photo as if underexposed: gamma 2.2 and half the light."""
    dark = 0.5 * (pixels / 255.0) ** 2.2
    return np.clip(np.rint(dark * 255), 0, 255).astype(np.uint8)


def _sunset(h: int, w: int, seed: int) -> NDArray[np.uint8]:
    """A vertical sky gradient from orange to violet, a bright sun, dark sea, noise."""
    y = np.linspace(0.0, 1.0, h)[:, None, None]
    top, horizon = np.array([60, 40, 110]), np.array([250, 150, 60])
    sky = top * (1 - y / 0.6) + horizon * (y / 0.6)
    sea = np.array([20, 25, 50]) + 0 * y
    rgb = np.where(y < 0.6, sky, sea) * np.ones((1, w, 1))
    yy, xx = np.mgrid[0:h, 0:w]
    sun = np.exp(-(((yy - 0.5 * h) ** 2 + (xx - 0.6 * w) ** 2) / (2 * (0.05 * w) ** 2)))
    rgb = rgb + sun[..., None] * np.array([255, 230, 150]) * 0.9
    return _noisy(np.clip(rgb, 0, 255).astype(np.uint8), 2.5, seed)


def tuning_set() -> list[CorpusImage]:
    """Every tuning image this machine can provide, in a fixed order."""
    images: list[CorpusImage] = []
    skimage = _package_dir("skimage")
    if skimage is not None:
        data = skimage / "data"
        brick = _rgb(data / "brick.png")
        gravel = _rgb(data / "gravel.png")
        moon = _rgb(data / "moon.png")
        images += [
            CorpusImage(
                "brick-tinted", "texture", _tint(brick[..., 0], (60, 20, 10), (240, 170, 120))
            ),
            CorpusImage(
                "gravel-tinted", "texture", _tint(gravel[..., 0], (30, 40, 30), (200, 210, 170))
            ),
            CorpusImage(
                "moon-tinted", "dark astronomy", _tint(moon[..., 0], (0, 0, 10), (255, 240, 200))
            ),
        ]
        with Image.open(data / "no_time_for_that_tiny.gif") as gif:
            frames = []
            for i in range(gif.n_frames):
                gif.seek(i)
                frames.append(np.asarray(gif.convert("RGB")))
        images.append(CorpusImage("gif-frames", "animation frames", np.concatenate(frames, axis=1)))
    try:
        import matplotlib.cbook as cbook

        with Image.open(cbook.get_sample_data("logo2.png", asfileobj=False)) as im:
            im.load()
            white = Image.new("RGBA", im.size, (255, 255, 255, 255))
            logo = np.asarray(Image.alpha_composite(white, im.convert("RGBA")).convert("RGB"))
        images.append(CorpusImage("mpl-logo2", "logo", logo))
        topo = np.load(cbook.get_sample_data("topobathy.npz", asfileobj=False))["topo"]
        images.append(
            CorpusImage("topobathy", "map", _shaded(topo.astype(float), "terrain", (455, 600)))
        )
        dem = np.load(cbook.get_sample_data("jacksboro_fault_dem.npz", asfileobj=False))
        images.append(
            CorpusImage(
                "jacksboro",
                "relief",
                _shaded(dem["elevation"].astype(float), "gist_earth", (516, 604)),
            )
        )
    except ImportError:
        print("tuning: matplotlib is not installed; its images are skipped", file=sys.stderr)
    try:
        from sklearn.datasets import load_sample_image

        china = load_sample_image("china.jpg")
        flower = load_sample_image("flower.jpg")
        half = Image.fromarray(china).resize((320, 214), Image.Resampling.LANCZOS)
        images += [
            CorpusImage("china-crop", "sample crop", china[100:400, 150:550].copy()),
            CorpusImage("flower-crop", "sample crop", flower[50:400, 200:600].copy()),
            CorpusImage("china-half-noisy", "sample, noisy", _noisy(np.asarray(half), 4.0, 7)),
            CorpusImage("flower-dark", "sample, darkened", _darkened(flower[::2, ::2])),
            # Tables too small to bin (under 8192 colors), like the corpus's
            # illustrations: thumbnails and a small crop.
            CorpusImage("china-thumb", "sample thumbnail", _thumbnail(china, (80, 120))),
            CorpusImage("flower-thumb", "sample thumbnail", _thumbnail(flower, (64, 96))),
            CorpusImage("china-crop64", "sample crop, small", china[200:264, 300:364].copy()),
        ]
    except ImportError:
        print("tuning: scikit-learn is not installed; its samples are skipped", file=sys.stderr)
    images += [
        CorpusImage("gradient-s11", "smooth gradient", _gradient(500, 700, seed=11)),
        CorpusImage("night-s12", "night scene", _night(500, 700, seed=12)),
        CorpusImage("flat-s13", "flat-color illustration", _flat(500, 700, seed=13)),
        CorpusImage("sunset-s14", "sky gradient, sun", _sunset(480, 640, seed=14)),
        # Small renders: tables too small to bin.
        CorpusImage("flat-small-s15", "flat-color illustration, small", _flat(128, 160, seed=15)),
        CorpusImage("flat-small-s16", "flat-color illustration, small", _flat(100, 100, seed=16)),
        CorpusImage("gradient-thumb-s17", "smooth gradient, small", _gradient(48, 64, seed=17)),
        CorpusImage("night-small-s18", "night scene, small", _night(120, 160, seed=18)),
    ]
    return images

"""A held-out benchmark corpus: photos and renders quantize was never tuned on.

The package ships only ``china.jpg`` and ``flower.jpg``; every quality or speed
claim must also hold on images nobody looked at while tuning. This module
gathers them from packages that ship sample images (scikit-image's data folder,
matplotlib's sample data; ``pip install ".[bench]"`` brings scikit-image) and
renders a few synthetic scenes (smooth gradients, a night scene, a flat-color
illustration) that photos do not cover. Nothing is downloaded.

``python benchmarks/corpus.py DIR`` writes the corpus to DIR as PNG files and
prints what it wrote; :func:`corpus` returns it as arrays for other scripts.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter

#: scikit-image sample images in color, with what each one stands for.
SKIMAGE_PHOTOS = {
    "astronaut.png": "portrait",
    "chelsea.png": "animal, soft fur",
    "coffee.png": "still life",
    "hubble_deep_field.jpg": "astronomy",
    "ihc.png": "medical (immunohistochemistry)",
    "retina.jpg": "medical (fundus)",
    "rocket.jpg": "launch, sky",
    "motorcycle_left.png": "indoor, saturated",
    "color.png": "color chart",
    "logo.png": "illustration, flat colors, transparency",
    "camera.png": "grayscale photo",
}

#: matplotlib's sample data.
MATPLOTLIB_PHOTOS = {
    "grace_hopper.jpg": "portrait, old photo",
    "Minduka_Present_Blue_Pack.png": "illustration",
}


@dataclass(frozen=True)
class CorpusImage:
    """One image of the corpus: its name, what it stands for, and its RGB pixels (h, w, 3)."""

    name: str
    kind: str
    pixels: NDArray[np.uint8]


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _rgb(path: Path) -> NDArray[np.uint8]:
    with Image.open(path) as im:
        im.load()
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            white = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, im)
        return np.asarray(im.convert("RGB"))


def _gradient(h: int, w: int, seed: int = 1) -> NDArray[np.uint8]:
    """A smooth two-axis color gradient with a little sensor-like noise."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    y /= h - 1
    x /= w - 1
    rgb = np.stack([0.9 * x + 0.1 * y, 0.2 + 0.6 * y * (1 - x), 1.0 - 0.8 * x * y], axis=-1)
    noise = np.random.default_rng(seed).normal(0.0, 1.5, rgb.shape)
    return np.clip(rgb * 255 + noise, 0, 255).astype(np.uint8)


def _night(h: int, w: int, seed: int = 2) -> NDArray[np.uint8]:
    """A dark scene: navy sky, black ground, a few warm blurred lights."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (w, h), (8, 12, 30))
    draw = ImageDraw.Draw(im)
    draw.rectangle([0, int(h * 0.65), w, h], fill=(4, 4, 6))
    for _ in range(40):
        cx, cy = int(rng.integers(0, w)), int(rng.integers(int(h * 0.4), h))
        r = int(rng.integers(2, max(3, w // 60)))
        color = tuple(int(c) for c in rng.integers((200, 120, 20), (256, 220, 120)))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    im = im.filter(ImageFilter.GaussianBlur(radius=max(1, w // 400)))
    noise = rng.normal(0.0, 2.0, (h, w, 3))
    return np.clip(np.asarray(im, dtype=np.float64) + noise, 0, 255).astype(np.uint8)


def _flat(h: int, w: int, seed: int = 3) -> NDArray[np.uint8]:
    """A flat-color illustration: 12 colors, antialiased shapes (so edges add blends)."""
    rng = np.random.default_rng(seed)
    colors = [tuple(int(c) for c in rng.integers(0, 256, 3)) for _ in range(12)]
    scale = 4
    im = Image.new("RGB", (w * scale, h * scale), colors[0])
    draw = ImageDraw.Draw(im)
    for i in range(60):
        x0, y0 = int(rng.integers(0, w * scale)), int(rng.integers(0, h * scale))
        size = int(rng.integers(w * scale // 20, w * scale // 4))
        box = [x0, y0, x0 + size, y0 + size]
        fill = colors[1 + i % 11]
        (draw.ellipse if i % 2 else draw.rectangle)(box, fill=fill)
    return np.asarray(im.resize((w, h), Image.Resampling.LANCZOS))


#: Synthetic renders: name -> (what it stands for, renderer of (height, width)).
RENDERS: dict[str, tuple[str, Callable[[int, int], NDArray[np.uint8]]]] = {
    "render-gradient": ("smooth gradient", _gradient),
    "render-night": ("night scene", _night),
    "render-flat": ("flat-color illustration", _flat),
}


def corpus(*, renders_size: tuple[int, int] = (600, 800)) -> list[CorpusImage]:
    """Every corpus image that this machine can provide, in a fixed order.

    Parameters
    ----------
    renders_size : (height, width)
        Size of the synthetic renders.

    Returns
    -------
    list of CorpusImage
        Photos from installed packages (skipped, with a note on stderr, when a
        package is absent), then the renders.
    """
    images = []
    for package, sub, photos in (
        ("skimage", "data", SKIMAGE_PHOTOS),
        ("matplotlib", "mpl-data/sample_data", MATPLOTLIB_PHOTOS),
    ):
        root = _package_dir(package)
        if root is None:
            print(f"corpus: {package} is not installed; its photos are skipped", file=sys.stderr)
            continue
        for name, kind in photos.items():
            path = root / sub / name
            if path.exists():
                images.append(CorpusImage(Path(name).stem, kind, _rgb(path)))
            else:
                print(f"corpus: {path} is missing; skipped", file=sys.stderr)
    h, w = renders_size
    for name, (kind, render) in RENDERS.items():
        images.append(CorpusImage(name, kind, render(h, w)))
    return images


def large(image: CorpusImage, megapixels: float = 12.0) -> CorpusImage:
    """``image`` scaled (Lanczos) to about ``megapixels``, keeping its aspect ratio."""
    h, w = image.pixels.shape[:2]
    scale = (megapixels * 1e6 / (h * w)) ** 0.5
    size = (round(w * scale), round(h * scale))
    pixels = np.asarray(Image.fromarray(image.pixels).resize(size, Image.Resampling.LANCZOS))
    return CorpusImage(f"{image.name}-{megapixels:g}mp", image.kind, pixels)


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python benchmarks/corpus.py DIR")
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for image in corpus():
        Image.fromarray(image.pixels).save(out / f"{image.name}.png")
        h, w = image.pixels.shape[:2]
        print(f"{image.name}.png  {w}x{h}  {image.kind}")


if __name__ == "__main__":
    main(sys.argv[1:])

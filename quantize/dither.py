"""Mapping pixels to a fixed palette with dithering.

Two methods, both returning the palette index of every pixel so that the
output holds exactly the palette's colors:

* **Floyd–Steinberg** error diffusion, done by Pillow's C implementation
  (``Image.quantize(palette=..., dither=FLOYDSTEINBERG)``).  The error is
  diffused in sRGB whatever space the palette was fitted in, and Pillow has
  no strength setting: the full error is always passed on.
* **Ordered** dithering with an 8×8 Bayer matrix, vectorized in numpy.
  Each pixel is offset by ``strength × spread × (threshold - 1/2)`` on all
  three channels, where ``spread`` is the median distance between
  neighboring palette colors, and then mapped to its nearest palette color
  in the working space.  Strength 0 gives the undithered mapping.  The
  nearest-color search runs on the table of distinct offset colors, never
  pixel by pixel.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from quantize import colors as cs
from quantize.histogram import N_KEYS, color_table, lookup, pack_rgb, unpack_keys
from quantize.kmeans import nearest_center
from quantize.reduce import is_huge, nearest_labels
from quantize.vocabulary import DITHER_METHODS, Dither

__all__ = ["DITHER_METHODS", "Dither", "bayer_matrix", "dither_indices", "palette_spread"]

_BAYER_ORDER: Final[int] = 3  # 2**3 = 8 thresholds per side
# Frames over this many pixels are dithered a band of rows at a time.
_BAND_PIXELS: Final[int] = 1 << 20


def bayer_matrix(order: int = _BAYER_ORDER) -> NDArray[np.float64]:
    """Normalized Bayer threshold matrix.

    Parameters
    ----------
    order : int, default 3
        The matrix is ``2**order`` on a side.

    Returns
    -------
    ndarray of float64, shape (2**order, 2**order)
        The values ``(i + 0.5) / 4**order`` for i = 0 .. 4**order - 1, each
        once, in the recursive Bayer arrangement; their mean is 0.5.
    """
    m = np.zeros((1, 1), dtype=np.int64)
    for _ in range(order):
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]])
    return (m + 0.5) / m.size


def palette_spread(palette: NDArray[np.uint8]) -> float:
    """Median distance (sRGB, 0..255) from each palette color to its nearest other one.

    Parameters
    ----------
    palette : ndarray of uint8, shape (k, 3)

    Returns
    -------
    float
        0 for a palette of one color.
    """
    if len(palette) < 2:
        return 0.0
    p = palette.astype(np.float64)
    d = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return float(np.median(d.min(axis=1)))


def dither_indices(
    rgb: NDArray[np.uint8],
    palette: NDArray[np.uint8],
    method: Dither,
    *,
    strength: float = 1.0,
    space: str = "rgb",
) -> NDArray[np.uint8]:
    """Palette index of every pixel of ``rgb`` after dithering.

    Parameters
    ----------
    rgb : ndarray of uint8, shape (h, w, 3)
        The pixels to map; transparent ones should already hold a palette
        color so that they add no error of their own.
    palette : ndarray of uint8, shape (k, 3)
        1 to 256 exact colors.
    method : {"floyd-steinberg", "ordered"}
    strength : float, default 1.0
        0..1, ordered dithering only (Floyd–Steinberg accepts only 1).
    space : {"rgb", "lab", "oklab"}, default "rgb"
        Where ordered dithering looks for the nearest palette color.

    Returns
    -------
    ndarray of uint8, shape (h, w)
        Indices into ``palette``.

    Raises
    ------
    ValueError
        On an unknown method or a strength the method does not allow.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"dither strength must be between 0 and 1, got {strength}")
    if method == "floyd-steinberg":
        if strength != 1.0:
            raise ValueError("Floyd-Steinberg dithering has no strength setting (only 1)")
        return _floyd_steinberg(rgb, palette)
    if method == "ordered":
        return _ordered(rgb, palette, strength, space)
    raise ValueError(f"dither method must be 'floyd-steinberg' or 'ordered', got {method!r}")


def _floyd_steinberg(rgb: NDArray[np.uint8], palette: NDArray[np.uint8]) -> NDArray[np.uint8]:
    target = Image.new("P", (1, 1))
    # Pillow matches against exactly as many entries as the palette holds.
    target.putpalette(palette.ravel().tolist(), "RGB")
    out = Image.fromarray(rgb, "RGB").quantize(palette=target, dither=Image.Dither.FLOYDSTEINBERG)
    return np.asarray(out, dtype=np.uint8)


def _ordered(
    rgb: NDArray[np.uint8], palette: NDArray[np.uint8], strength: float, space: str
) -> NDArray[np.uint8]:
    h, w = rgb.shape[:2]
    if h * w > _BAND_PIXELS:
        return _ordered_bands(rgb, palette, strength, space)
    matrix = bayer_matrix()
    side = matrix.shape[0]
    tiles = np.tile(matrix, (-(-h // side), -(-w // side)))[:h, :w]
    offset = strength * palette_spread(palette) * (tiles - 0.5)
    shifted = np.clip(np.rint(rgb + offset[..., None]), 0, 255).astype(np.uint8)
    keys = pack_rgb(shifted)
    # Nearest palette color of each distinct shifted color, then one gather.
    table = color_table(keys.ravel())
    labels = nearest_center(
        cs.rgb8_to_space(unpack_keys(table.keys), space), cs.rgb8_to_space(palette, space)
    )
    return lookup(table.keys, labels)[keys]


def _ordered_bands(
    rgb: NDArray[np.uint8], palette: NDArray[np.uint8], strength: float, space: str
) -> NDArray[np.uint8]:
    """`_ordered` a band of rows at a time, with the same result.

    The float offsets of a whole frame are 32 bytes a pixel; here only one
    band's are held.  The distinct shifted colors are marked on a 2**24
    table in a first pass and mapped to the palette (in chunks when there
    are millions), and a second pass shifts each band again and gathers.
    """
    h, w = rgb.shape[:2]
    matrix = bayer_matrix()
    side = matrix.shape[0]
    # Bands start on a multiple of the matrix side, so one offset tile fits all.
    rows = side * max(1, _BAND_PIXELS // (side * max(w, 1)))
    tiles = np.tile(matrix, (rows // side, -(-w // side)))[:, :w]
    offset = (strength * palette_spread(palette) * (tiles - 0.5))[..., None]

    def shifted_keys(top: int) -> NDArray[np.uint32]:
        band = rgb[top : top + rows]
        shifted = np.clip(np.rint(band + offset[: band.shape[0]]), 0, 255).astype(np.uint8)
        return pack_rgb(shifted)

    lut = np.zeros(N_KEYS, dtype=np.uint8)
    for top in range(0, h, rows):
        lut[shifted_keys(top)] = 1
    keys = np.flatnonzero(lut).astype(np.uint32)
    if is_huge(keys.size):
        labels, _ = nearest_labels(keys, None, palette, space)
    else:
        labels = nearest_center(
            cs.rgb8_to_space(unpack_keys(keys), space), cs.rgb8_to_space(palette, space)
        ).astype(np.uint8)
    lut[keys] = labels
    out = np.empty((h, w), dtype=np.uint8)
    for top in range(0, h, rows):
        np.take(lut, shifted_keys(top), out=out[top : top + rows])
    return out

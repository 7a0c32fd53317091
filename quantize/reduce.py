"""Bounded memory for huge color tables: a reduced table to cluster, exact work in chunks.

A photo of 12 million pixels holds a few hundred thousand to a couple of
million distinct colors, but noise, film grain or a synthetic image can hold
one per pixel: up to the 2**24 colors of sRGB.  Every step that makes float64
copies of the table (the points in the working space, their weights, bin
numbers, labels, squared distances, ΔE values) then costs several hundred
bytes per distinct color, which made memory grow with the content rather than
the pixel count.

Tables of more than `REDUCE_MIN_COLORS` colors take another path, so memory
is bounded by the pixel count plus a fixed amount:

* **Clustering** runs on a *reduced table*: the colors merged into cubes of
  2 sRGB levels per side (7 bits per channel, so at most 2**21 rows), each
  row the exact weighted mean of its colors in the working space with their
  summed pixel count.  The clustering core works coarse-to-fine on bins of
  5 and 6 bits anyway, and a 7-bit cube sits inside one such bin, so it sees
  the same seeding bins; only its final exact step runs on the cubes instead
  of the individual colors, which moves a center by far less than one sRGB
  level.
* **Assignment** of every distinct color to its nearest palette color and
  the **metrics** stay exact, computed in chunks of rows from the packed
  keys (no float copy of the table): labels are held as uint8.

Tables up to the threshold take the unchanged path, so ordinary photos get
exactly the results they always had.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from quantize import colors as cs
from quantize.histogram import ColorTable, nearest_rgb8, pack_rgb, unpack_keys
from quantize.kmeans import nearest_center
from quantize.metrics import MetricsAccumulator, QualityMetrics, palette_metrics

__all__ = [
    "PAIRS_IN_BANDS_MIN_PIXELS",
    "REDUCE_MIN_COLORS",
    "ReducedTable",
    "add_pixel_pairs",
    "is_huge",
    "nearest_labels",
    "nearest_palette",
    "reduce_table",
    "table_metrics",
    "table_sse",
]

#: Tables with more distinct colors than this are clustered on a reduced
#: table and assigned in chunks.  A 12 MP photo holds about 1.4 million.
REDUCE_MIN_COLORS: Final[int] = 1 << 21
# Bits per channel kept by the reduced table: 2**21 cells at most, the size
# of the largest table clustered directly.
_REDUCE_BITS: Final[int] = 7
# Table rows per chunk: float temporaries under a MB, and (rows, 3) x (3, 3)
# products small enough that OpenBLAS runs them on one thread (threaded,
# they are many times slower on a busy machine).
_CHUNK_ROWS: Final[int] = 1 << 14
# Pixels per band when counting (color, index) pairs of dithered frames.
_BAND_PIXELS: Final[int] = 1 << 20
#: Dithered images with more visible pixels than this are judged a band at a
#: time (`add_pixel_pairs`) even when their table is small: sorting every
#: pixel's (color, index) pair at once takes about 16 bytes a pixel.
PAIRS_IN_BANDS_MIN_PIXELS: Final[int] = 1 << 22


def is_huge(n_colors: int) -> bool:
    """Whether a table of ``n_colors`` distinct colors takes the bounded path."""
    return n_colors > REDUCE_MIN_COLORS


@dataclass(frozen=True)
class ReducedTable:
    """Colors merged into 7-bit sRGB cubes, for clustering.

    Attributes
    ----------
    points : ndarray of float64, shape (r, 3)
        Exact weighted mean of each cube's colors in the working space.
    weights : ndarray of float64, shape (r,)
        Pixels of each cube.
    keys : ndarray of uint32, shape (r,)
        Packed sRGB key of each cube's lowest corner: it shares every
        coarser bin with the cube's colors.
    """

    points: NDArray[np.float64]
    weights: NDArray[np.float64]
    keys: NDArray[np.uint32]


def reduce_table(
    keys: NDArray[np.uint32], counts: NDArray[np.int64], space: str, bits: int = _REDUCE_BITS
) -> ReducedTable:
    """Merge a color table into cubes of ``2**(8 - bits)`` sRGB levels per side.

    Parameters
    ----------
    keys : ndarray of uint32, shape (m,)
        Packed colors (:func:`quantize.histogram.pack_rgb`), increasing.
    counts : ndarray of int64, shape (m,)
    space : {"rgb", "lab", "oklab"}
        Working space the means are taken in.
    bits : int, default 7

    Returns
    -------
    ReducedTable
        Occupied cubes in increasing key order; at most ``2**(3 * bits)`` rows.
    """
    n_cells = 1 << (3 * bits)
    totals = np.zeros(n_cells)
    sums = np.zeros((3, n_cells))
    for start in range(0, keys.shape[0], _CHUNK_ROWS):
        part = keys[start : start + _CHUNK_ROWS]
        cell = _cell_of(part, bits)
        # Increasing keys put a chunk's cubes in a narrow range of cells.
        lo = int(cell.min())
        hi = int(cell.max()) + 1
        cell -= lo
        w = counts[start : start + _CHUNK_ROWS].astype(np.float64)
        totals[lo:hi] += np.bincount(cell, weights=w, minlength=hi - lo)
        points = cs.rgb8_to_space(unpack_keys(part), space)
        for j in range(3):
            sums[j, lo:hi] += np.bincount(cell, weights=w * points[:, j], minlength=hi - lo)
    occupied = np.flatnonzero(totals)
    weights = totals[occupied]
    del totals
    # A channel at a time: (r, 3) temporaries would add 150 MB at the peak.
    means = np.empty((occupied.size, 3))
    for j in range(3):
        np.divide(sums[j, occupied], weights, out=means[:, j])
    del sums
    return ReducedTable(means, weights, _cell_keys(occupied, bits))


def _cell_of(keys: NDArray[np.uint32], bits: int) -> NDArray[np.intp]:
    """Cube number ``r' << 2b | g' << b | b'`` of each key, the top ``bits`` of each channel."""
    shift = 8 - bits
    low = (1 << bits) - 1
    k = keys.astype(np.intp)
    return (
        ((k >> (16 + shift)) & low) << (2 * bits)
        | ((k >> (8 + shift)) & low) << bits
        | ((k >> shift) & low)
    )


def _cell_keys(cells: NDArray[np.intp], bits: int) -> NDArray[np.uint32]:
    """Inverse of `_cell_of`: the key of each cube's lowest corner."""
    shift = 8 - bits
    low = (1 << bits) - 1
    c = cells.astype(np.uint32)
    red = (c >> np.uint32(2 * bits)) & np.uint32(low)
    green = (c >> np.uint32(bits)) & np.uint32(low)
    blue = c & np.uint32(low)
    return (red << np.uint32(16 + shift)) | (green << np.uint32(8 + shift)) | (blue << shift)


def nearest_palette(
    colors: NDArray[np.uint8],
    palette: NDArray[np.uint8],
    space: str,
    *,
    points: NDArray[np.float64] | None = None,
    target: NDArray[np.float64] | None = None,
) -> NDArray[np.intp]:
    """Index of the nearest palette color in ``space`` of every 8-bit color.

    The one nearest-color search of the image path: in sRGB it is exact in
    integers (:func:`quantize.histogram.nearest_rgb8`), in another space
    the nearest-center kernel runs on the converted colors.  For a huge
    table, :func:`nearest_labels` calls it a chunk of rows at a time.

    Parameters
    ----------
    colors : ndarray of uint8, shape (m, 3)
    palette : ndarray of uint8, shape (k, 3), k >= 1
    space : {"rgb", "lab", "oklab"}
    points : ndarray of float64, shape (m, 3), optional
        ``colors`` already converted to ``space`` (unused in sRGB).
    target : ndarray of float64, shape (k, 3), optional
        ``palette`` already converted to ``space``, for many calls with one
        palette (unused in sRGB).

    Returns
    -------
    ndarray of intp, shape (m,)
        Ties go to the lowest palette index.
    """
    if space == "rgb":
        return nearest_rgb8(colors, palette)
    if points is None:
        points = cs.rgb8_to_space(colors, space)
    if target is None:
        target = cs.rgb8_to_space(palette, space)
    return nearest_center(points, target)


def nearest_labels(
    keys: NDArray[np.uint32],
    counts: NDArray[np.int64] | None,
    palette: NDArray[np.uint8],
    space: str,
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Nearest palette color in ``space`` of every color, a chunk of rows at a time.

    Parameters
    ----------
    keys : ndarray of uint32, shape (m,)
    counts : ndarray of int64, shape (m,), or None
        Pixels of each color; None counts one each.
    palette : ndarray of uint8, shape (k, 3), 1 <= k <= 256

    Returns
    -------
    labels : ndarray of uint8, shape (m,)
        Palette index of each color; ties to the lowest index.
    pixels : ndarray of int64, shape (k,)
        Pixels given to each palette color.
    """
    labels = np.empty(keys.shape[0], dtype=np.uint8)
    pixels = np.zeros(palette.shape[0], dtype=np.int64)
    target = None if space == "rgb" else cs.rgb8_to_space(palette, space)
    for start in range(0, keys.shape[0], _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        part = nearest_palette(unpack_keys(keys[rows]), palette, space, target=target)
        labels[rows] = part
        w = None if counts is None else counts[rows].astype(np.float64)
        pixels += np.bincount(part, weights=w, minlength=pixels.size).astype(np.int64)
    return labels, pixels


def table_metrics(
    table: ColorTable,
    palette: NDArray[np.uint8],
    labels: NDArray[np.integer],
    original_lab: NDArray[np.floating] | None = None,
) -> QualityMetrics:
    """`quantize.metrics.palette_metrics` of a table, in chunks when it is huge.

    Parameters
    ----------
    table : ColorTable
        m distinct colors with their pixel counts.
    palette : ndarray of uint8, shape (k, 3)
    labels : ndarray of int, shape (m,)
        Palette index of each table row.
    original_lab : ndarray of float64 or float32, shape (m, 3), optional
        CIELAB of the table's colors, when known (small tables only): see
        `quantize.metrics.palette_metrics`.
    """
    if not is_huge(table.n_colors):
        return palette_metrics(
            table.colors, table.counts, palette, labels, original_lab=original_lab
        )
    acc = MetricsAccumulator(palette)
    for start in range(0, table.n_colors, _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        # A view of the counts: the table outlives the accumulator.
        acc.add(unpack_keys(table.keys[rows]), labels[rows], table.counts[rows])
    return acc.result()


def table_sse(
    keys: NDArray[np.uint32],
    counts: NDArray[np.int64],
    palette: NDArray[np.uint8],
    labels: NDArray[np.integer],
    space: str,
) -> float:
    """Weighted SSE in ``space`` of every color to its palette color, a chunk of rows at a time.

    The exact error over the whole table, without a float copy of it:
    what compares candidate palettes of a huge table.

    Parameters
    ----------
    keys : ndarray of uint32, shape (m,)
    counts : ndarray of int64, shape (m,)
        Pixels of each color: its weight.
    palette : ndarray of uint8, shape (k, 3)
    labels : ndarray of int, shape (m,)
        Palette index of each color.
    space : {"rgb", "lab", "oklab"}

    Returns
    -------
    float
        ``sum(counts[i] * ||p(color_i) - p(palette[labels[i]])||**2)`` with
        ``p`` the conversion to ``space``.
    """
    target = cs.rgb8_to_space(palette, space)
    total = 0.0
    for start in range(0, keys.shape[0], _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        offset = cs.rgb8_to_space(unpack_keys(keys[rows]), space)
        offset -= target[labels[rows]]
        total += float(counts[rows].astype(np.float64) @ np.einsum("ij,ij->i", offset, offset))
    return total


def add_pixel_pairs(
    acc: MetricsAccumulator,
    rgb: NDArray[np.uint8],
    visible: NDArray[np.bool_] | None,
    indices: NDArray[np.uint8],
) -> None:
    """Add the visible pixels of a frame mapped to ``indices`` to ``acc``, a band of rows
    at a time, each band as its table of distinct (color, index) pairs.

    Parameters
    ----------
    acc : MetricsAccumulator
    rgb : ndarray of uint8, shape (h, w, 3)
    visible : ndarray of bool, shape (h, w), or None when every pixel is
    indices : ndarray of uint8, shape (h, w)
    """
    height, width = rgb.shape[:2]
    rows = max(1, _BAND_PIXELS // max(width, 1))
    for top in range(0, height, rows):
        band = slice(top, top + rows)
        # 24-bit color key and 8-bit index fit one uint32 pair code.
        codes = pack_rgb(rgb[band])
        codes |= indices[band].astype(np.uint32) << np.uint32(24)
        if visible is not None:
            codes = codes[visible[band]]
        uniq, counts = np.unique(codes.ravel(), return_counts=True)
        if uniq.size:
            acc.add(
                unpack_keys(uniq & np.uint32(0xFFFFFF)),
                (uniq >> np.uint32(24)).astype(np.uint8),
                # Mostly ones in noise: kept in the narrowest dtype that holds them.
                counts.astype(np.min_scalar_type(int(counts.max()))),
            )

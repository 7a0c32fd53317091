"""Weighted tables of distinct colors: the data the clustering core actually sees.

A photo of 12 million pixels rarely holds more than a few hundred thousand
distinct colors, and clustering those with their pixel counts as weights gives
exactly the same k-means objective as clustering every pixel.  Colors are
packed as ``r << 16 | g << 8 | b`` keys.  :func:`count_pixels` counts whole
frames and :func:`recolor` maps every pixel back through the table: below
2**20 pixels through the inverse permutation of the sort that counted them,
above through the counting histogram reused as a lookup table, packing keys a
chunk at a time so that no per-pixel key array is ever held.
:class:`TableMerger` sums the tables of many images (a shared palette) in
memory bounded by the number of possible colors.

This module is kept apart from :mod:`quantize.colors` (color-space math)
because it is the hot path of every run and has its own memory budget.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from quantize._threads import run_ranges, run_stripes, stripes

_LITTLE_ENDIAN = sys.byteorder == "little"

#: Number of possible packed 24-bit colors.
N_KEYS = 1 << 24

# Below this many pixels sorting beats touching a 2**24-entry histogram.
_SORT_THRESHOLD = 1 << 20
# Rows per chunk of bin_means.
_BIN_CHUNK = 1 << 16
# Coarse bins of up to this many bits per channel are numbered on a dense
# grid (2**18 cells at most) instead of by sorting.
_DENSE_MAX_BITS = 6


@dataclass(frozen=True)
class ColorTable:
    """Distinct colors of a set of pixels with their pixel counts.

    Attributes
    ----------
    keys : ndarray of uint32, shape (m,)
        Packed ``r << 16 | g << 8 | b`` values, strictly increasing.
    counts : ndarray of int64, shape (m,)
        Number of pixels of each color; all positive.
    inverse : ndarray of intp, shape (n,), or None
        Row of each input key, in input order, when counting produced it for
        free (inputs under 2**20 keys, which are sorted); None otherwise.
        Recoloring through it touches n entries instead of a 2**24-entry
        lookup table, whose fresh memory is most of a small image's cost.
    histogram : ndarray, shape (2**24,), or None
        Scratch memory for :func:`recolor` (see there); None when the
        table was not counted by :func:`count_pixels` on a histogram.
    """

    keys: NDArray[np.uint32]
    counts: NDArray[np.int64]
    inverse: NDArray[np.intp] | None = field(default=None, repr=False, compare=False)
    #: The 2**24-entry histogram the counts came from, kept by
    #: :func:`count_pixels` so that :func:`recolor` can reuse its memory
    #: as the lookup table instead of touching 16 MB more.
    histogram: NDArray[np.unsignedinteger] | None = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def colors(self) -> NDArray[np.uint8]:
        """The distinct colors, shape (m, 3), uint8 sRGB (unpacked once)."""
        return unpack_keys(self.keys)

    @property
    def n_colors(self) -> int:
        """Number of distinct colors ``m``."""
        return int(self.keys.shape[0])

    @property
    def n_pixels(self) -> int:
        """Total pixel count (the sum of ``counts``)."""
        return int(self.counts.sum())


def pack_rgb(
    pixels: NDArray[np.uint8], out: NDArray[np.uint32] | None = None
) -> NDArray[np.uint32]:
    """Pack RGB pixels into 24-bit integer keys ``r << 16 | g << 8 | b``.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (..., 3)
    out : ndarray of uint32, shape (...), optional
        Where to write the keys.

    Returns
    -------
    keys : ndarray of uint32, shape (...)
    """
    px = np.asarray(pixels)
    keys = np.empty(px.shape[:-1], dtype=np.uint32) if out is None else out
    if _LITTLE_ENDIAN and keys.ndim > 0 and keys.flags.c_contiguous:
        # A little-endian uint32 is the bytes b, g, r, 0: three byte copies
        # instead of five passes of shifts and ors.
        lanes = keys.view(np.uint8).reshape(*keys.shape, 4)
        lanes[..., 0] = px[..., 2]
        lanes[..., 1] = px[..., 1]
        lanes[..., 2] = px[..., 0]
        lanes[..., 3] = 0
        return keys
    keys[...] = px[..., 0]
    keys <<= 8
    keys |= px[..., 1]
    keys <<= 8
    keys |= px[..., 2]
    return keys


def unpack_keys(keys: NDArray[np.uint32]) -> NDArray[np.uint8]:
    """Inverse of :func:`pack_rgb`: keys of shape (m,) to colors of shape (m, 3)."""
    k = np.asarray(keys, dtype=np.uint32)
    out = np.empty((*k.shape, 3), dtype=np.uint8)
    out[..., 0] = k >> 16
    out[..., 1] = (k >> 8) & 0xFF
    out[..., 2] = k & 0xFF
    return out


def color_table(keys: NDArray[np.uint32]) -> ColorTable:
    """Count the distinct packed colors.

    Parameters
    ----------
    keys : ndarray of uint32, shape (n,)
        Packed pixel keys from :func:`pack_rgb`.

    Returns
    -------
    ColorTable
        Sorted distinct keys and their counts; ``counts.sum() == n``.
    """
    flat = np.ravel(keys)
    if flat.size == 0:
        empty = np.empty(0, dtype=np.intp)
        return ColorTable(np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.int64), empty)
    if flat.size < _SORT_THRESHOLD:
        if int(flat.max()) < N_KEYS:
            return _sorted_table(*_radix_sort_24(flat.astype(np.uint32, copy=False)))
        uniq, counts = np.unique(flat, return_counts=True)
        return ColorTable(uniq.astype(np.uint32), counts.astype(np.int64))
    # One pass of counting is several times faster than sorting megapixels.
    # np.add.at into small counts rather than np.bincount: bincount copies
    # the keys to intp and counts in int64, touching 224 MB on 12 MP instead
    # of 32 MB, and first touches of memory are what a fresh process pays
    # for.  uint16 counts wrap above 65535 pixels of one color, which the
    # total reveals; only then is the count redone in wider integers.
    present, counts = _count(flat, np.uint16)
    if int(counts.sum()) != flat.size:
        wide = np.uint32 if flat.size <= np.iinfo(np.uint32).max else np.int64
        present, counts = _count(flat, wide)
    return ColorTable(present.astype(np.uint32), counts)


def _count(
    keys: NDArray[np.uint32], dtype: type[np.unsignedinteger] | type[np.signedinteger]
) -> tuple[NDArray[np.intp], NDArray[np.int64]]:
    """Present keys and their counts, counted in ``dtype`` (may wrap)."""
    hist = np.zeros(N_KEYS, dtype=dtype)
    np.add.at(hist, keys, hist.dtype.type(1))  # same dtype: no casting loop
    present = np.flatnonzero(hist)
    return present, hist[present].astype(np.int64)


# --------------------------------------------------------------------------
# Whole images: count and recolor without materializing every pixel's key.

#: Pixels packed at a time by count_pixels and recolor above the sorting
#: threshold: a reused 1 MB key buffer instead of 4 bytes per pixel of fresh
#: memory (48 MB on 12 MP), each page of which a fresh process pays to touch.
#: Small, too, because what a worker thread's temporaries took stays with
#: its malloc arena after the thread ends (4 MB chunks added 17 MB to the
#: peak of 12 MP noise).
_CHUNK_PIXELS = 1 << 18
# Fewest pixels per thread when counting or recoloring in stripes.
_STRIPE_PIXELS = 1 << 20
# One pixel in this many is sampled to find the colors that may fill more
# than 65535 pixels (a prime: the sample follows no row or pattern period).
_SAMPLE_STRIDE = 251
# A sampled color is counted exactly once its sample could stand for this
# many pixels: a quarter of what wraps a uint16 count.
_HEAVY_PIXELS = 1 << 14

#: One image frame for counting: its pixels (h, w, 3) and which are visible
#: (h, w), or None when all are.
PixelSource = tuple[NDArray[np.uint8], NDArray[np.bool_] | None]


def count_pixels(sources: Sequence[PixelSource]) -> ColorTable:
    """The table of distinct colors of the visible pixels of several frames.

    Parameters
    ----------
    sources : sequence of (rgb, visible)
        ``rgb`` of uint8, shape (h, w, 3); ``visible`` of bool, shape
        (h, w), or None when every pixel counts.

    Returns
    -------
    ColorTable
        Below 2**20 visible pixels, with ``inverse`` over the visible pixels
        of all frames in turn (row-major); above, counted chunk by chunk on
        a 2**24 histogram that the table keeps for :func:`recolor`.

    Notes
    -----
    Above 2**20 pixels the histogram holds uint16 counts (32 MB rather than
    64), which wrap for a color of more than 65535 pixels.  The colors that
    may have that many are found beforehand on a sample of the pixels and
    counted exactly beside the histogram; a wrapped count of any other
    color shows in the total, and only then is everything counted again
    in wider integers.
    """
    n_visible = sum(_n_visible(rgb, visible) for rgb, visible in sources)
    if n_visible < _SORT_THRESHOLD:
        parts = [
            pack_rgb(rgb).ravel() if visible is None else pack_rgb(rgb[visible])
            for rgb, visible in sources
        ]
        return color_table(parts[0] if len(parts) == 1 else np.concatenate(parts))
    heavy = _frequent_colors(sources)
    hist, heavy_counts = _histogram(sources, np.uint16, heavy)
    # A count that wrapped to 0 must still be found as present.
    hist[heavy] = 1
    keys, counts = _present(hist)
    counts[np.searchsorted(keys, heavy)] = heavy_counts
    if int(counts.sum()) != n_visible:  # the count of a color not sampled wrapped
        del keys, counts, hist
        hist, _ = _histogram(sources, np.uint32 if n_visible < 1 << 32 else np.uint64, _NO_KEYS)
        keys, counts = _present(hist)
    return ColorTable(keys, counts, histogram=hist)


_NO_KEYS: NDArray[np.uint32] = np.empty(0, dtype=np.uint32)


def _frequent_colors(sources: Sequence[PixelSource]) -> NDArray[np.uint32]:
    """Sorted keys of the colors frequent enough in a sample of the visible
    pixels to stand for at least `_HEAVY_PIXELS` pixels."""
    samples = []
    for rgb, visible in sources:
        if rgb.flags.c_contiguous:
            flat = rgb.reshape(-1, 3)[::_SAMPLE_STRIDE]
            seen = None if visible is None else visible.reshape(-1)[::_SAMPLE_STRIDE]
        else:  # a view: sample a grid of about as many pixels instead
            step = (slice(None, None, 13), slice(None, None, 19))
            flat = rgb[step].reshape(-1, 3)
            seen = None if visible is None else visible[step].reshape(-1)
        keys = pack_rgb(flat)
        samples.append(keys if seen is None else keys[seen])
    sample = np.sort(np.concatenate(samples))
    if sample.size == 0:
        return _NO_KEYS
    starts = np.flatnonzero(np.concatenate([[True], sample[1:] != sample[:-1]]))
    runs = np.diff(starts, append=sample.size)
    return sample[starts[runs * _SAMPLE_STRIDE >= _HEAVY_PIXELS]]


def _n_visible(rgb: NDArray[np.uint8], visible: NDArray[np.bool_] | None) -> int:
    return rgb.shape[0] * rgb.shape[1] if visible is None else int(np.count_nonzero(visible))


def _row_chunks(
    rgb: NDArray[np.uint8],
    visible: NDArray[np.bool_] | None,
    top: int,
    bottom: int,
) -> Iterator[tuple[slice, NDArray[np.uint32]]]:
    """(row slice, keys of its visible pixels) for rows ``top:bottom``, a chunk
    of rows at a time, packed into one reused buffer."""
    width = rgb.shape[1]
    rows = max(1, _CHUNK_PIXELS // max(width, 1))
    buffer = np.empty(rows * width, dtype=np.uint32)
    for start in range(top, bottom, rows):
        part = slice(start, min(start + rows, bottom))
        n = (part.stop - part.start) * width
        keys = pack_rgb(rgb[part], out=buffer[:n].reshape(-1, width)).ravel()
        yield part, keys if visible is None else keys[visible[part].ravel()]


def _stripe_rows(rgb: NDArray[np.uint8]) -> int:
    """Fewest rows per thread of a frame: at least `_STRIPE_PIXELS` pixels."""
    return max(1, -(-_STRIPE_PIXELS // max(rgb.shape[1], 1)))


def _histogram(
    sources: Sequence[PixelSource], dtype: type[np.unsignedinteger], heavy: NDArray[np.uint32]
) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Counts of every key in ``dtype`` (may wrap), and exact counts of the ``heavy`` keys.

    Each frame is counted in stripes of rows on threads: packing keys runs
    in parallel, while ``np.add.at`` holds the GIL (and a lock, so the
    counts never depend on it).
    """
    hist = np.zeros(N_KEYS, dtype=dtype)
    one = hist.dtype.type(1)
    lock = threading.Lock()
    count_heavy = _heavy_counter(heavy)

    def stripe(
        rgb: NDArray[np.uint8], visible: NDArray[np.bool_] | None, top: int, bottom: int
    ) -> NDArray[np.int64]:
        exact = np.zeros(heavy.size, dtype=np.int64)
        for _, keys in _row_chunks(rgb, visible, top, bottom):
            exact += count_heavy(keys)
            # Cast here, in parallel: np.add.at, which holds the GIL, is about
            # a fifth faster on intp indices than casting uint32 ones itself.
            index = keys.astype(np.intp)
            with lock:
                np.add.at(hist, index, one)  # same dtype: no casting loop
        return exact

    total = np.zeros(heavy.size, dtype=np.int64)
    for rgb, visible in sources:
        work = functools.partial(stripe, rgb, visible)
        for exact in run_stripes(work, rgb.shape[0], min_rows=_stripe_rows(rgb)):
            total += exact
    return hist, total


# Up to this many heavy keys are counted by comparing each with the keys;
# more through a lookup table of their numbers, which costs as much as
# about 20 comparisons.
_HEAVY_COMPARE = 16


def _heavy_counter(
    heavy: NDArray[np.uint32],
) -> Callable[[NDArray[np.uint32]], NDArray[np.int64]]:
    """A function giving how many of its keys equal each heavy key, shape (len(heavy),)."""
    if heavy.size <= _HEAVY_COMPARE:

        def compare(keys: NDArray[np.uint32]) -> NDArray[np.int64]:
            return np.array([np.count_nonzero(keys == key) for key in heavy], dtype=np.int64)

        return compare
    # Heavy key i is number i + 1; number 0 counts every other key.
    number = np.zeros(N_KEYS, dtype=np.min_scalar_type(heavy.size))
    number[heavy] = np.arange(1, heavy.size + 1)

    def look_up(keys: NDArray[np.uint32]) -> NDArray[np.int64]:
        return np.bincount(np.take(number, keys), minlength=heavy.size + 1)[1:]

    return look_up


def histogram_table(hist: NDArray[np.integer]) -> ColorTable:
    """The table of the colors a 2**24-entry histogram of counts holds.

    Parameters
    ----------
    hist : ndarray of int, shape (2**24,)
        Pixel count of each packed color.

    Returns
    -------
    ColorTable
        The keys with a positive count and their counts (no ``histogram``).
    """
    keys, counts = _present(hist)
    return ColorTable(keys, counts)


def _present(hist: NDArray[Any]) -> tuple[NDArray[np.uint32], NDArray[np.int64]]:
    """Keys with a nonzero count and their counts, a slice of the histogram
    at a time: no intp index array as long as the table (11 MB fresh memory
    on a 12 MP photo's 1.4M colors).  Stripes of slices run on threads."""
    # Filled in place rather than concatenated from parts, which would hold
    # the table twice (264 MB at the peak for the 11M colors of 12 MP noise).
    ranges = stripes(hist.size, min_rows=_CHUNK_PIXELS, align=_CHUNK_PIXELS)
    found = run_ranges(lambda a, b: int(np.count_nonzero(hist[a:b])), ranges)
    keys = np.empty(sum(found), dtype=np.uint32)
    counts = np.empty(keys.size, dtype=np.int64)
    first_row = dict(zip(ranges, np.cumsum([0, *found[:-1]]).tolist(), strict=True))

    def fill(lo: int, hi: int) -> None:
        row = first_row[lo, hi]
        for start in range(lo, hi, _CHUNK_PIXELS):
            where, found_counts = _nonzero(hist[start : min(start + _CHUNK_PIXELS, hi)])
            stop = row + where.size
            counts[row:stop] = found_counts
            where += start
            keys[row:stop] = where
            row = stop

    run_ranges(fill, ranges)
    return keys, counts


def _nonzero(part: NDArray[Any]) -> tuple[NDArray[np.intp], NDArray[Any]]:
    """Increasing positions of the nonzero entries of ``part`` (1-D) and their values.

    Found through a boolean mask: numpy lists the True entries of a bool
    array with vector instructions, about three times faster than the
    nonzero entries of the counts themselves, or of the 64-bit words that
    hold several uint16 counts, on a photo's mostly empty histogram.
    """
    where = np.flatnonzero(part != 0)
    return where, part[where]


def recolor(
    table: ColorTable, row_index: NDArray[np.uint8], sources: Sequence[PixelSource]
) -> list[NDArray[np.uint8]]:
    """The palette index of every pixel, given the palette index of every table row.

    Parameters
    ----------
    table : ColorTable
        Counted by :func:`count_pixels` from the same ``sources``.
    row_index : ndarray of uint8, shape (m,)
    sources : sequence of (rgb, visible)

    Returns
    -------
    list of ndarray of uint8, shape (h, w)
        One per source; invisible pixels get 0.

    Notes
    -----
    A table counted on a histogram lends it as the lookup table: its
    contents are overwritten, which only later ``recolor`` calls read.
    """
    if table.inverse is not None:
        return _recolor_inverse(table.inverse, row_index, sources)
    if table.histogram is None:
        lut: NDArray[Any] = lookup(table.keys, row_index)
    else:
        # The histogram's first 2**24 bytes as a uint8 table: indices come
        # out in the output's type, from half the memory of uint16 counts.
        lut = table.histogram.reshape(-1).view(np.uint8)[:N_KEYS]
        lut[table.keys] = row_index
    out = [np.zeros(rgb.shape[:2], dtype=np.uint8) for rgb, _ in sources]

    def stripe(number: int, top: int, bottom: int) -> None:
        rgb, visible = sources[number]
        for part, keys in _row_chunks(rgb, visible, top, bottom):
            target = out[number][part]
            if visible is None:
                target.reshape(-1)[:] = np.take(lut, keys)
            else:
                target[visible[part]] = np.take(lut, keys)

    for number, (rgb, _) in enumerate(sources):
        run_stripes(functools.partial(stripe, number), rgb.shape[0], min_rows=_stripe_rows(rgb))
    return out


def _recolor_inverse(
    inverse: NDArray[np.intp], row_index: NDArray[np.uint8], sources: Sequence[PixelSource]
) -> list[NDArray[np.uint8]]:
    flat = row_index[inverse]
    out: list[NDArray[np.uint8]] = []
    start = 0
    for rgb, visible in sources:
        shape = rgb.shape[:2]
        if visible is None:
            stop = start + shape[0] * shape[1]
            out.append(flat[start:stop].reshape(shape))
        else:
            stop = start + int(np.count_nonzero(visible))
            indices = np.zeros(shape, dtype=np.uint8)
            indices[visible] = flat[start:stop]
            out.append(indices)
        start = stop
    return out


def _radix_sort_24(keys: NDArray[np.uint32]) -> tuple[NDArray[np.uint32], NDArray[np.intp]]:
    """Sort 24-bit keys as two 12-bit digits, least significant first; return
    the sorted keys and the permutation (input index of each sorted key).

    numpy's stable sort of 16-bit integers is a radix sort, so two stable
    passes are linear in the pixels and cheaper than the comparison sort of
    the uint32 keys that ``np.unique`` does.
    """
    first = np.argsort((keys & np.uint32(0xFFF)).astype(np.uint16), kind="stable")
    low_first = keys[first]
    second = np.argsort((low_first >> np.uint32(12)).astype(np.uint16), kind="stable")
    return low_first[second], first[second]


def _sorted_table(ordered: NDArray[np.uint32], permutation: NDArray[np.intp]) -> ColorTable:
    """Distinct keys, their run lengths and the row of every input key, from
    sorted keys (at least one) and the permutation that sorted them."""
    starts = np.empty(ordered.size, dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    first = np.flatnonzero(starts)
    counts = np.diff(first, append=ordered.size)
    inverse = np.empty(ordered.size, dtype=np.intp)
    inverse[permutation] = np.cumsum(starts) - 1
    return ColorTable(ordered[first], counts.astype(np.int64, copy=False), inverse)


def lookup(table_keys: NDArray[np.uint32], labels: NDArray[np.integer]) -> NDArray[np.uint8]:
    """Build a 2**24-entry lookup table from color keys to palette indices.

    Parameters
    ----------
    table_keys : ndarray of uint32, shape (m,)
    labels : ndarray of int, shape (m,)
        Palette index (0..255) of each key.

    Returns
    -------
    lut : ndarray of uint8, shape (2**24,)
        ``lut[pixel_keys]`` recolors every pixel in one gather.
    """
    lut = np.zeros(N_KEYS, dtype=np.uint8)
    lut[table_keys] = labels
    return lut


def coarse_bins(keys: NDArray[np.uint32], bits: int) -> tuple[NDArray[np.intp], int]:
    """Group colors into cubic bins keeping ``bits`` high bits per channel.

    Parameters
    ----------
    keys : ndarray of uint32, shape (m,)
    bits : int
        1..8; 8 puts every color in its own bin.

    Returns
    -------
    bin_index : ndarray of intp, shape (m,)
        Dense bin number (0..n_bins-1) of each color.
    n_bins : int
        Number of occupied bins.
    """
    shift = 8 - bits
    if bits > _DENSE_MAX_BITS:
        mask = (0xFF >> shift) << shift
        channel_mask = np.uint32((mask << 16) | (mask << 8) | mask)
        # Masking breaks the keys' order, so a sorting pass is needed.
        uniq, inverse = np.unique(keys & channel_mask, return_inverse=True)
        return inverse.astype(np.intp, copy=False), int(uniq.shape[0])
    # Few bits: mark the occupied cells of a dense 2**(3 * bits) grid and
    # number them in order, which is several times faster than sorting the
    # keys and gives the same numbering (cells in increasing key order).
    k = np.asarray(keys, dtype=np.uint32)
    low = np.uint32((1 << bits) - 1)
    cell = (k >> np.uint32(16 + shift)) & low
    cell <<= np.uint32(bits)
    cell |= (k >> np.uint32(8 + shift)) & low
    cell <<= np.uint32(bits)
    cell |= (k >> np.uint32(shift)) & low
    # Bytes and 32-bit numbers: the grid is fresh memory on every call, and
    # its page faults cost more than the counting (2**18 cells at 6 bits).
    occupied = np.zeros(1 << (3 * bits), dtype=np.uint8)
    occupied[cell] = 1
    number = np.cumsum(occupied, dtype=np.int32)
    index = number[cell].astype(np.intp)
    index -= 1
    return index, int(number[-1])


def bin_means(
    points: NDArray[np.floating],
    weights: NDArray[np.floating],
    bin_index: NDArray[np.intp],
    n_bins: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Exact weighted mean of the points in each bin, and each bin's total weight.

    Averaging happens in whatever space ``points`` are in, so bins in CIELAB
    hold CIELAB means; bin centers are never used.

    Parameters
    ----------
    points : ndarray, shape (m, d)
    weights : ndarray, shape (m,)
    bin_index : ndarray of intp, shape (m,)
    n_bins : int

    Returns
    -------
    means : ndarray of float64, shape (n_bins, d)
    totals : ndarray of float64, shape (n_bins,)
    """
    w = np.asarray(weights, dtype=np.float64)
    totals = np.bincount(bin_index, weights=w, minlength=n_bins).astype(np.float64)
    d = points.shape[1]
    sums = np.zeros((d, n_bins), dtype=np.float64)
    # In chunks of rows: full-length weighted columns are fresh memory,
    # which costs more than the arithmetic on the first run of a process.
    for start in range(0, bin_index.shape[0], _BIN_CHUNK):
        rows = slice(start, start + _BIN_CHUNK)
        index, wj = bin_index[rows], w[rows]
        for j in range(d):
            sums[j] += np.bincount(index, weights=wj * points[rows, j], minlength=n_bins)
    means = np.ascontiguousarray(sums.T)
    means /= totals[:, None]
    return means, totals


# Distances per block of nearest_float32: a (block, k) float32 block stays in
# cache, fresh memory (expensive on first touch) stays small, and each
# product (4 multiply-adds per distance) stays under the ~10**6 multiply-adds
# that OpenBLAS runs on its small-matrix path, which larger blocks leave for
# its much slower general one.
_NEAREST_BLOCK_ELEMENTS = 1 << 17
# Fewest points per thread of nearest_float32.
_NEAREST_STRIPE_ROWS = 1 << 15


def nearest_rgb8(colors: NDArray[np.uint8], palette: NDArray[np.uint8]) -> NDArray[np.intp]:
    """Index of the nearest palette color (Euclidean, in 8-bit sRGB) of every color.

    Exact: with integer channels every term of ``|p|^2 - 2 c.p`` is an
    integer below 2**24, which float32 represents exactly whatever order a
    BLAS sums in, so the result never depends on rounding and is cheaper
    than float64.

    Parameters
    ----------
    colors : ndarray of uint8, shape (m, 3)
    palette : ndarray of uint8, shape (k, 3), k >= 1

    Returns
    -------
    ndarray of intp, shape (m,)
        Ties go to the lowest palette index.
    """
    return nearest_float32(colors, palette)


def nearest_float32(points: NDArray[np.number], centers: NDArray[np.number]) -> NDArray[np.intp]:
    """Index of the nearest center of every point, from distances in float32.

    Exact for 8-bit integer coordinates (see :func:`nearest_rgb8`).  For
    other points a row may go to a center farther than the nearest by the
    rounding of float32 distances (a few units in the 7th digit of the
    squared norms): for a Lloyd step on hundreds of thousands of colors,
    which moves no center measurably for it, at about half the cost of
    float64.

    Parameters
    ----------
    points : ndarray, shape (m, d)
    centers : ndarray, shape (k, d), k >= 1

    Returns
    -------
    ndarray of intp, shape (m,)
    """
    p = centers.astype(np.float32)
    d = p.shape[1]
    # [x, 1] . [-2 p; |p|^2]: one product gives every candidate distance
    # up to the |x|^2 that all candidates of a row share.
    weights = np.empty((d + 1, p.shape[0]), dtype=np.float32)
    weights[:d] = -2.0 * p.T
    weights[d] = np.einsum("ij,ij->i", p, p)
    labels = np.empty(points.shape[0], dtype=np.intp)
    rows = min(max(256, _NEAREST_BLOCK_ELEMENTS // p.shape[0]), points.shape[0])

    def stripe(top: int, bottom: int) -> None:
        augmented = np.ones((rows, d + 1), dtype=np.float32)
        dist = np.empty((rows, p.shape[0]), dtype=np.float32)
        for start in range(top, bottom, rows):
            stop = min(start + rows, bottom)
            n = stop - start
            augmented[:n, :d] = points[start:stop]
            np.matmul(augmented[:n], weights, out=dist[:n])
            np.argmin(dist[:n], axis=1, out=labels[start:stop])

    # Stripes of whole blocks: each row is computed as in one serial pass.
    run_stripes(stripe, points.shape[0], min_rows=_NEAREST_STRIPE_ROWS, align=max(rows, 1))
    return labels


# Merge buffered color tables once they hold this many rows in total.
_MERGE_ROWS = 1 << 22


class TableMerger:
    """Sum color tables of many images into one, in bounded memory.

    Tables are buffered and added into one dense 2**24-entry histogram of
    counts (128 MB) whenever the buffer holds more than a few million rows,
    so the memory is bounded by the number of possible colors, not the
    number of images or their content (sorting buffers of noise images
    took several times their size).  The sum does not depend on the order
    the tables arrive in.
    """

    def __init__(self) -> None:
        self._keys: list[NDArray[np.uint32]] = []
        self._counts: list[NDArray[np.int64]] = []
        self._rows = 0
        self._hist: NDArray[np.int64] | None = None

    def add(
        self,
        keys: NDArray[np.uint32],
        counts: NDArray[np.int64],
    ) -> None:
        """Add one table: sorted distinct keys of shape (m,) and their counts (m,)."""
        self._keys.append(keys)
        self._counts.append(counts)
        self._rows += len(keys)
        if self._rows > _MERGE_ROWS and (len(self._keys) > 1 or self._hist is not None):
            self._merge()

    def _merge(self) -> None:
        if self._hist is None:
            self._hist = np.zeros(N_KEYS, dtype=np.int64)
        for keys, counts in zip(self._keys, self._counts, strict=True):
            self._hist[keys] += counts  # the keys of one table are distinct
        self._keys, self._counts, self._rows = [], [], 0

    def table(self) -> ColorTable:
        """The merged table of every color added so far."""
        if self._hist is None and len(self._keys) <= 1:
            if not self._keys:
                return ColorTable(np.empty(0, np.uint32), np.empty(0, np.int64))
            return ColorTable(self._keys[0], self._counts[0])
        self._merge()
        assert self._hist is not None
        table = histogram_table(self._hist)
        # Kept as the one buffered table instead: the histogram's 128 MB are
        # not needed again unless more tables come.
        self._hist = None
        self._keys, self._counts, self._rows = [table.keys], [table.counts], table.n_colors
        return table

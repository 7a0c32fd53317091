"""Image quality metrics computed on weighted color tables.

The pipeline never compares images pixel by pixel: it works on the table of
distinct colors of the original image together with how many pixels have each
color. Every metric here therefore takes per-row weights (pixel counts), and
weighting a row by ``w`` is equivalent to repeating it ``w`` times.  Two
images (an input and a lossy file as written) are compared the same way, on
tables of their distinct (input color, output color) pairs (`image_metrics`).
Tables too large to copy go through the accumulators, whose sums and ΔE
parts merge chunk by chunk; the CIEDE2000 formula and the quantile passes
live in `quantize._ciede2000` and `quantize._quantile`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantize._ciede2000 import ciede2000_in_dtype
from quantize._quantile import narrow_to_quantile_bin, parts_quantile
from quantize._threads import run_stripes
from quantize.colors import rgb8_to_lab
from quantize.histogram import pack_rgb, unpack_keys

__all__ = [
    "MetricsAccumulator",
    "PairMetricsAccumulator",
    "QualityMetrics",
    "ciede2000",
    "image_metrics",
    "mse",
    "palette_metrics",
    "psnr",
    "quality_metrics",
    "table_lab",
    "weighted_quantile",
]

FloatArray = NDArray[np.float64]

# Rows per block when computing ΔE for a whole color table: small enough that
# the ~40 temporaries of CIEDE2000 stay in cache, large enough to amortize
# per-call overhead; a single pass over a large table would stream every
# temporary through memory.
_DELTA_E_BLOCK_ROWS: Final[int] = 16384
# Fewest rows per thread when computing ΔE for a color table.
_DELTA_E_STRIPE_ROWS: Final[int] = 1 << 16
# Pixels per band when `image_metrics` compares two images: its sort and
# unpacking temporaries take some 60 bytes a pixel, and larger bands find
# few more repeated pairs.
_BAND_PIXELS: Final[int] = 1 << 18


def _as_rows(x: ArrayLike, name: str) -> NDArray[Any]:
    """Return ``x`` as an ``(n, 3)`` array of its own dtype, or raise ValueError."""
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (n, 3), got {arr.shape}")
    return arr


def _as_weights(weights: ArrayLike, n: int) -> FloatArray:
    """Validate per-row weights: shape (n,), finite, non-negative, positive total."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative")
    if not w.sum() > 0:
        raise ValueError("weights must have a positive total")
    return w


def mse(a: ArrayLike, b: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Mean squared error between two color tables, optionally weighted by row.

    Parameters
    ----------
    a, b : array_like, shape (n, 3)
        Colors to compare, any numeric dtype (computed in float64, so uint8
        inputs do not wrap around).
    weights : array_like, shape (n,), optional
        Non-negative row weights, e.g. pixel counts. Weighting a row by ``w``
        gives the same result as repeating it ``w`` times.

    Returns
    -------
    float
        Mean over rows (weighted) and channels of the squared difference, in
        the squared units of the inputs.

    Raises
    ------
    ValueError
        On mismatched shapes, empty input, or invalid weights.
    """
    a_arr = _as_rows(a, "a")
    b_arr = _as_rows(b, "b")
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"shape mismatch: {a_arr.shape} vs {b_arr.shape}")
    if a_arr.shape[0] == 0:
        raise ValueError("cannot compute the MSE of empty arrays")
    # Subtracting with a float64 loop converts on the fly: no uint8 wrap-around
    # and no full-size float copies of both inputs.
    diff = np.subtract(a_arr, b_arr, dtype=np.float64)
    per_row = np.einsum("ij,ij->i", diff, diff) / 3.0
    if weights is None:
        return float(per_row.mean())
    w = _as_weights(weights, a_arr.shape[0])
    return float(np.dot(per_row, w) / w.sum())


def psnr(mse_value: float, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in decibels for a given MSE.

    Parameters
    ----------
    mse_value : float
        Mean squared error, in the squared units of ``peak``.
    peak : float, default 255.0
        Largest possible signal value.

    Returns
    -------
    float
        ``10 * log10(peak**2 / mse_value)``, or ``math.inf`` when the MSE is 0.

    Raises
    ------
    ValueError
        If ``mse_value`` is negative or NaN, or ``peak`` is not positive.
    """
    if not mse_value >= 0:
        raise ValueError(f"mse_value must be non-negative, got {mse_value}")
    if not peak > 0:
        raise ValueError(f"peak must be positive, got {peak}")
    if mse_value == 0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse_value)


def ciede2000(
    lab1: ArrayLike,
    lab2: ArrayLike,
    kL: float = 1.0,
    kC: float = 1.0,
    kH: float = 1.0,
) -> FloatArray:
    """CIEDE2000 color difference (Sharma, Wu & Dalal, 2005).

    Parameters
    ----------
    lab1, lab2 : array_like, shape (..., 3)
        CIELAB colors; the leading shapes must broadcast together.
    kL, kC, kH : float, default 1.0
        Parametric weights for lightness, chroma and hue.

    Returns
    -------
    ndarray of float64, shape (...)
        ΔE00 for each pair of colors.

    Notes
    -----
    Angles are handled in radians throughout; the paper's degree constants
    (30°, 275°, 25°, ...) are converted once at import time. As the paper
    points out, the formula is discontinuous for hues exactly 180° apart, so
    there the result depends on which side rounding puts the hue difference.
    """
    c1 = np.asarray(lab1, dtype=np.float64)
    c2 = np.asarray(lab2, dtype=np.float64)
    if c1.shape[-1:] != (3,) or c2.shape[-1:] != (3,):
        raise ValueError(f"expected arrays of shape (..., 3), got {c1.shape} and {c2.shape}")
    return ciede2000_in_dtype(c1, c2, kL, kC, kH)


def _validate_quantile_inputs(
    values: ArrayLike, weights: ArrayLike, q: float
) -> tuple[FloatArray, FloatArray]:
    """Check the arguments of `weighted_quantile`; return float64 values and weights."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values must be finite")
    return v, _as_weights(weights, v.shape[0])


def weighted_quantile(values: ArrayLike, weights: ArrayLike, q: float) -> float:
    """Quantile of ``values`` where each value is repeated ``weights`` times.

    Uses the inverted-CDF definition: the smallest value whose cumulative
    weight is at least ``q`` times the total weight. For integer weights this
    equals ``np.quantile(np.repeat(values, weights), q, method="inverted_cdf")``.

    Parameters
    ----------
    values : array_like, shape (n,)
        Finite sample values.
    weights : array_like, shape (n,)
        Non-negative weights with a positive total.
    q : float
        Quantile in ``0..1``.

    Returns
    -------
    float
        The weighted quantile.

    Raises
    ------
    ValueError
        On mismatched shapes, non-finite values, invalid weights, or ``q``
        outside ``0..1``.

    Notes
    -----
    Runs in linear time on average (see
    `quantize._quantile.narrow_to_quantile_bin`). With non-integer weights,
    cumulative sums are accumulated in a different order than a plain sort
    would use, so exact ties with ``q * total`` may resolve differently by a
    rounding error.
    """
    v, w = _validate_quantile_inputs(values, weights, q)
    # Zero-weight values never appear in the repeated sample, so they must not
    # be picked at q == 0 either.
    keep = w > 0
    v, w = v[keep], w[keep]
    # Same product as NumPy's n * q, so boundary cases round identically.
    target = q * float(w.sum())
    v, w, below = narrow_to_quantile_bin(v, w, target)
    order = np.argsort(v, kind="stable")
    cum = below + np.cumsum(w[order])
    idx = min(int(np.searchsorted(cum, target, side="left")), cum.size - 1)
    return float(v[order[idx]])


@dataclass(frozen=True)
class QualityMetrics:
    """Summary of how closely a quantized image matches its original.

    Attributes
    ----------
    mse : float
        Pixel-weighted MSE in 0-255 sRGB units.
    psnr : float
        PSNR in dB for peak 255; ``math.inf`` for a lossless result.
    delta_e_mean : float
        Pixel-weighted mean CIEDE2000 difference.
    delta_e_p95 : float
        95th percentile (inverted CDF, pixel-weighted) of CIEDE2000.
    colors_used : int
        Number of distinct output colors that cover at least one pixel.
    """

    mse: float
    psnr: float
    delta_e_mean: float
    delta_e_p95: float
    colors_used: int

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready plain values; an infinite PSNR becomes ``None``."""
        return {
            "mse": round(self.mse, 4),
            "psnr": None if math.isinf(self.psnr) else round(self.psnr, 3),
            "delta_e_mean": round(self.delta_e_mean, 4),
            "delta_e_p95": round(self.delta_e_p95, 4),
            "colors_used": int(self.colors_used),
        }


def _count_used_colors(rgb8: NDArray[np.uint8], weights: FloatArray) -> int:
    """Count distinct rows of an ``(n, 3)`` uint8 array that have positive weight."""
    # Packing each color into one 24-bit integer turns row-uniqueness into a
    # cheap 1-D problem (and filtering 1-D keys is cheaper than filtering rows).
    keys = pack_rgb(rgb8)[weights > 0]
    # Sorted and counted by hand: np.unique would import numpy.ma (start-up
    # that a run never otherwise pays) to check for a masked array.
    keys.sort()
    return int(keys.size and 1 + np.count_nonzero(keys[1:] != keys[:-1]))


def _delta_e_rgb8(orig: NDArray[np.uint8], mapped: NDArray[np.uint8]) -> FloatArray:
    """CIEDE2000 between two ``(m, 3)`` uint8 sRGB tables, row by row, shape (m,)."""
    de = np.empty(orig.shape[0], dtype=np.float64)
    # Blocked so the many CIEDE2000 temporaries stay in cache (see _DELTA_E_BLOCK_ROWS).
    for start in range(0, orig.shape[0], _DELTA_E_BLOCK_ROWS):
        rows = slice(start, start + _DELTA_E_BLOCK_ROWS)
        de[rows] = ciede2000_in_dtype(_lab32(orig[rows]), _lab32(mapped[rows]))
    return de


def _delta_e_indexed(
    orig: NDArray[np.uint8],
    orig_lab: NDArray[np.floating[Any]] | None,
    palette_lab: FloatArray,
    labels: NDArray[Any],
) -> FloatArray:
    """CIEDE2000 of each color of ``orig`` (m, 3) to ``palette_lab[labels]``, shape (m,).

    ``orig_lab`` is the Lab of ``orig`` when known, else converted block by block.
    """
    de = np.empty(orig.shape[0], dtype=np.float64)

    def stripe(top: int, bottom: int) -> None:
        for start in range(top, bottom, _DELTA_E_BLOCK_ROWS):
            rows = slice(start, min(start + _DELTA_E_BLOCK_ROWS, bottom))
            lab = _lab32(orig[rows]) if orig_lab is None else orig_lab[rows].astype(np.float32)
            de[rows] = ciede2000_in_dtype(lab, palette_lab[labels[rows]].astype(np.float32))

    # Stripes of whole blocks on threads: every block is computed as serially.
    run_stripes(stripe, orig.shape[0], min_rows=_DELTA_E_STRIPE_ROWS, align=_DELTA_E_BLOCK_ROWS)
    return de


def table_lab(colors: NDArray[np.uint8]) -> NDArray[np.float32]:
    """CIELAB of a color table, exactly as `palette_metrics` converts it for ΔE.

    For converting a table ahead of time (on another thread, while its
    palette is being fitted): passed back as ``original_lab``, it gives the
    same bits as letting `palette_metrics` convert the table.

    Parameters
    ----------
    colors : ndarray of uint8, shape (m, 3)

    Returns
    -------
    ndarray of float32, shape (m, 3)
    """
    lab = np.empty(colors.shape, dtype=np.float32)

    def stripe(top: int, bottom: int) -> None:
        # The blocks of _delta_e_indexed: BLAS may round a block's product by its shape.
        for start in range(top, bottom, _DELTA_E_BLOCK_ROWS):
            rows = slice(start, min(start + _DELTA_E_BLOCK_ROWS, bottom))
            lab[rows] = _lab32(colors[rows])

    run_stripes(stripe, colors.shape[0], min_rows=_DELTA_E_STRIPE_ROWS, align=_DELTA_E_BLOCK_ROWS)
    return lab


def _lab32(rgb8: NDArray[np.uint8]) -> NDArray[np.float32]:
    """CIELAB of 8-bit sRGB rows, converted in float64 and stored in float32.

    A row gets the same bits in a block of any length (see `_palette_lab`).
    """
    return _palette_lab(rgb8).astype(np.float32)


def _palette_lab(palette: NDArray[np.uint8]) -> FloatArray:
    """Lab of each palette row, the same bits as converting the rows within a longer table."""
    # A one-row matrix product takes BLAS's vector path, which rounds
    # differently from the matrix path of every longer table: convert two rows.
    rows = palette if palette.shape[0] > 1 else np.repeat(palette, 2, axis=0)
    return rgb8_to_lab(rows)[: palette.shape[0]]


def _as_rgb8_rows(x: ArrayLike, name: str) -> NDArray[np.uint8]:
    """Return ``x`` as a uint8 ``(m, 3)`` array, rejecting anything not an integer in 0..255."""
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (m, 3), got {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    # A silent cast would wrap 256 to 0 or truncate 10.7 to 10.
    values = arr.astype(np.float64)
    if not np.all((values >= 0) & (values <= 255) & (values == np.rint(values))):
        raise ValueError(f"{name} must hold integers in 0..255")
    return values.astype(np.uint8)


def quality_metrics(
    original_rgb8: ArrayLike,
    mapped_rgb8: ArrayLike,
    counts: ArrayLike,
    palette_size: int,
) -> QualityMetrics:
    """Compute quality metrics from a table of distinct colors and pixel counts.

    Parameters
    ----------
    original_rgb8 : array_like, shape (m, 3)
        Distinct colors of the original image, 8-bit sRGB.
    mapped_rgb8 : array_like, shape (m, 3)
        The color each original color was mapped to, 8-bit sRGB.
    counts : array_like, shape (m,)
        Number of pixels with each original color.
    palette_size : int
        Number of palette entries; an upper bound on ``colors_used``, checked
        as a consistency guard.

    Returns
    -------
    QualityMetrics
        MSE and PSNR in 0-255 sRGB units, pixel-weighted mean and 95th
        percentile of CIEDE2000, and the number of palette colors in use.

    Raises
    ------
    ValueError
        On mismatched shapes, invalid counts, or more distinct mapped colors
        than ``palette_size``.
    """
    orig = _as_rgb8_rows(original_rgb8, "original_rgb8")
    mapped = _as_rgb8_rows(mapped_rgb8, "mapped_rgb8")
    if orig.shape != mapped.shape:
        raise ValueError(f"shape mismatch: {orig.shape} vs {mapped.shape}")
    w = _as_weights(counts, orig.shape[0])

    # Checked first: it is cheap and catches a mismatched palette before the
    # expensive ΔE pass.
    colors_used = _count_used_colors(mapped, w)
    if colors_used > palette_size:
        raise ValueError(f"{colors_used} distinct mapped colors exceed palette_size={palette_size}")
    return _summarize(mse(orig, mapped, w), _delta_e_rgb8(orig, mapped), w, colors_used)


def _summarize(mse_value: float, de: FloatArray, w: FloatArray, colors_used: int) -> QualityMetrics:
    return QualityMetrics(
        mse=mse_value,
        psnr=psnr(mse_value),
        delta_e_mean=float(np.dot(de, w) / w.sum()),
        delta_e_p95=weighted_quantile(de, w, 0.95),
        colors_used=colors_used,
    )


def palette_metrics(
    original_rgb8: ArrayLike,
    counts: ArrayLike,
    palette_rgb8: ArrayLike,
    labels: ArrayLike,
    *,
    original_lab: ArrayLike | None = None,
) -> QualityMetrics:
    """`quality_metrics` of a table mapped onto a palette, given as palette indices.

    The same numbers as ``quality_metrics(original_rgb8, palette_rgb8[labels],
    counts, len(palette_rgb8))``, faster: the palette side of CIEDE2000 is
    converted to Lab once per palette color instead of once per table row,
    and the table's own Lab values may be passed in when already known.

    Parameters
    ----------
    original_rgb8 : array_like, shape (m, 3)
        Distinct colors of the original image, 8-bit sRGB.
    counts : array_like, shape (m,)
        Number of pixels with each original color.
    palette_rgb8 : array_like, shape (k, 3)
        The palette, 8-bit sRGB.
    labels : array_like of int, shape (m,)
        Palette index (0..k-1) each original color was mapped to.
    original_lab : array_like, shape (m, 3), optional
        ``quantize.colors.rgb8_to_lab(original_rgb8)``, when the caller has
        it, or `table_lab` of it (float32).

    Returns
    -------
    QualityMetrics

    Raises
    ------
    ValueError
        On mismatched shapes, invalid counts or labels out of range.
    """
    orig = _as_rgb8_rows(original_rgb8, "original_rgb8")
    palette = _as_rgb8_rows(palette_rgb8, "palette_rgb8")
    idx = np.asarray(labels)
    if idx.shape != (orig.shape[0],) or (idx.size and idx.dtype.kind not in "iu"):
        raise ValueError(f"labels must be {orig.shape[0]} integers, got shape {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= palette.shape[0]):
        raise ValueError(f"labels must be in 0..{palette.shape[0] - 1}")
    w = _as_weights(counts, orig.shape[0])
    lab = None if original_lab is None else np.asarray(original_lab)
    if lab is not None and lab.dtype != np.float32:  # float32: from table_lab
        lab = lab.astype(np.float64, copy=False)
    if lab is not None and lab.shape != orig.shape:
        raise ValueError(f"original_lab must have shape {orig.shape}, got {lab.shape}")
    used = np.bincount(idx, weights=w, minlength=palette.shape[0]) > 0
    colors_used = _count_used_colors(palette[used], np.ones(int(used.sum())))
    mapped = palette[idx]
    de = _delta_e_indexed(orig, lab, _palette_lab(palette), idx)
    return _summarize(mse(orig, mapped, w), de, w, colors_used)


class _ErrorSums:
    """What the bounded-memory metrics keep of the rows fed to them.

    Every block of rows is reduced at once to an exact integer sum of
    squared errors, a ΔE sum, its pixels, and its ΔE values in float32 (the
    precision they are computed in) with their pixel counts, which the 95th
    percentile needs: sums merge across blocks, and `parts_quantile` takes
    the values in parts.
    """

    def __init__(self) -> None:
        self._sse = 0
        self._de_sum = 0.0
        self._total = 0
        self._de: list[NDArray[np.float32]] = []
        self._weights: list[NDArray[np.integer]] = []

    def _add_block(
        self,
        colors: NDArray[np.uint8],
        mapped_i32: NDArray[np.int32],
        mapped_lab: NDArray[np.float32],
        counts: NDArray[np.integer],
        de: NDArray[np.float32],
    ) -> FloatArray:
        """Add one block of rows (colors, what they became, pixel counts); fill ``de``.

        Returns the counts as float64 weights.
        """
        diff = colors.astype(np.int32)
        diff -= mapped_i32
        squares = np.einsum("ij,ij->i", diff, diff).astype(np.int64)
        self._sse += int(squares @ counts.astype(np.int64))
        self._total += int(counts.sum())
        w = counts.astype(np.float64)
        de[:] = ciede2000_in_dtype(_lab32(colors), mapped_lab)
        # Not a BLAS dot: threaded, it is many times slower on a busy machine.
        self._de_sum += float(np.einsum("i,i->", de.astype(np.float64), w))
        return w

    def _keep(self, de: NDArray[np.float32], counts: NDArray[np.integer]) -> None:
        self._de.append(de)
        self._weights.append(counts)

    def _metrics(self, colors_used: int) -> QualityMetrics:
        if self._total <= 0:
            raise ValueError("weights must have a positive total")
        mse_value = self._sse / (3.0 * self._total)
        return QualityMetrics(
            mse=mse_value,
            psnr=psnr(mse_value),
            delta_e_mean=self._de_sum / self._total,
            delta_e_p95=parts_quantile(self._de, self._weights, 0.95, float(self._total)),
            colors_used=colors_used,
        )


class MetricsAccumulator(_ErrorSums):
    """`palette_metrics` of a color table fed in chunks, in bounded memory.

    For tables too large to hold float64 copies of (the MSE, ΔE and quantile
    passes of `palette_metrics` each make some); it also counts the pixels
    given to each palette index.

    Parameters
    ----------
    palette_rgb8 : ndarray of uint8, shape (k, 3)
    """

    def __init__(self, palette_rgb8: NDArray[np.uint8]) -> None:
        super().__init__()
        self._palette = palette_rgb8
        self._palette_i32 = palette_rgb8.astype(np.int32)
        self._palette_lab = _palette_lab(palette_rgb8).astype(np.float32)
        self._counts = np.zeros(palette_rgb8.shape[0], dtype=np.int64)

    def add(
        self, colors: NDArray[np.uint8], labels: NDArray[np.integer], counts: NDArray[np.integer]
    ) -> None:
        """Add rows: colors (c, 3) uint8, their palette indices (c,) and pixel counts (c,).

        ``counts`` is kept for the percentile: pass a view of a table that
        lives on anyway, or a copy in the narrowest dtype that holds it.
        """
        de = np.empty(colors.shape[0], dtype=np.float32)
        # In blocks, like _delta_e_indexed: the temporaries stay small.
        for start in range(0, colors.shape[0], _DELTA_E_BLOCK_ROWS):
            rows = slice(start, start + _DELTA_E_BLOCK_ROWS)
            lab = labels[rows]
            w = self._add_block(
                colors[rows], self._palette_i32[lab], self._palette_lab[lab], counts[rows], de[rows]
            )
            self._counts += np.bincount(lab, weights=w, minlength=self._counts.size).astype(
                np.int64
            )
        self._keep(de, counts)

    @property
    def counts(self) -> NDArray[np.int64]:
        """Pixels given to each palette index so far, shape (k,)."""
        return self._counts

    def result(self) -> QualityMetrics:
        """The metrics of every row added (at least one pixel)."""
        used = self._counts > 0
        colors_used = _count_used_colors(self._palette[used], np.ones(int(used.sum())))
        return self._metrics(colors_used)


class PairMetricsAccumulator(_ErrorSums):
    """`quality_metrics` of (color, output color) pairs fed in chunks, in bounded memory.

    The bounded form of `quality_metrics`, for comparing two images whose
    table of distinct pairs is too large to hold float64 copies of.  The
    output colors in use are marked in a table of all 2**24 colors (16 MB),
    so a color seen in several chunks counts once.
    """

    def __init__(self) -> None:
        super().__init__()
        self._seen = np.zeros(1 << 24, dtype=np.bool_)

    def add(
        self, colors: NDArray[np.uint8], mapped: NDArray[np.uint8], counts: NDArray[np.integer]
    ) -> None:
        """Add rows: colors (c, 3) uint8, the colors they became (c, 3) and pixel counts (c,).

        ``counts`` is kept for the percentile, as in `MetricsAccumulator.add`.
        """
        self._seen[pack_rgb(mapped)[counts > 0]] = True
        de = np.empty(colors.shape[0], dtype=np.float32)
        for start in range(0, colors.shape[0], _DELTA_E_BLOCK_ROWS):
            rows = slice(start, start + _DELTA_E_BLOCK_ROWS)
            out = mapped[rows]
            self._add_block(colors[rows], out.astype(np.int32), _lab32(out), counts[rows], de[rows])
        self._keep(de, counts)

    def result(self) -> QualityMetrics:
        """The metrics of every pair added (at least one pixel)."""
        return self._metrics(int(np.count_nonzero(self._seen)))


def image_metrics(original: NDArray[np.uint8], output: NDArray[np.uint8]) -> QualityMetrics:
    """Quality of an image against its original, pixel by pixel, in bounded memory.

    A band of rows at a time, each band reduced to its table of distinct
    (input color, output color) pairs: the numbers of `quality_metrics` on
    the table of the whole image's pairs, without holding that table.  The
    squared error is summed exactly; each pair's ΔE is the same float32
    value in any band, so the 95th percentile is the same; only the ΔE
    mean is summed in another order (a difference in its last bits).

    Parameters
    ----------
    original, output : ndarray of uint8, shape (h, w, 3)

    Returns
    -------
    QualityMetrics
        ``colors_used`` is the number of distinct colors in ``output``.

    Raises
    ------
    ValueError
        The images differ in shape or have no pixels.
    """
    if original.shape != output.shape or original.ndim != 3 or original.shape[2] != 3:
        raise ValueError(f"shape mismatch: {original.shape} vs {output.shape}")
    acc = PairMetricsAccumulator()
    height, width = original.shape[:2]
    rows = max(1, _BAND_PIXELS // max(width, 1))
    for top in range(0, height, rows):
        band = slice(top, top + rows)
        # Two 24-bit colors fit one uint64 pair code, input color first.
        codes = pack_rgb(original[band]).astype(np.uint64) << np.uint64(24)
        codes |= pack_rgb(output[band])
        pairs, counts = _count_codes(codes.ravel())
        if pairs.size:
            acc.add(
                unpack_keys((pairs >> np.uint64(24)).astype(np.uint32)),
                unpack_keys((pairs & np.uint64(0xFFFFFF)).astype(np.uint32)),
                # Mostly ones in noise: kept in the narrowest dtype that holds them.
                counts.astype(np.min_scalar_type(int(counts.max()))),
            )
    return acc.result()


def _count_codes(codes: NDArray[np.uint64]) -> tuple[NDArray[np.uint64], NDArray[np.intp]]:
    """The distinct values of ``codes`` in increasing order and how often each occurs.

    Sorts ``codes`` in place.
    """
    # By hand: np.unique would import numpy.ma (start-up a run otherwise
    # never pays); it makes the same sorted table.
    codes.sort()
    new = np.empty(codes.size, dtype=np.bool_)
    new[:1] = True
    np.not_equal(codes[1:], codes[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    return codes[starts], np.diff(starts, append=codes.size)

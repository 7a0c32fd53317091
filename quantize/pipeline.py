"""One image through load -> distinct-color table -> cluster -> recolor.

The pipeline never clusters raw pixels: it counts the distinct visible colors,
fits the palette to that weighted table, and recolors every pixel through the
table (:func:`quantize.histogram.recolor`).  Nothing here prints; files are written only by
`process_file` / `write_outputs`, through the atomic writers of `quantize.imageio`.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PIL import Image

from quantize import colors as cs
from quantize import reduce
from quantize.autok import DEFAULT_PSNR, AutoK, Target, smallest_k
from quantize.cluster import cluster_centers, resolve_n_init
from quantize.dither import DITHER_METHODS, Dither, dither_indices
from quantize.errors import InputError
from quantize.histogram import (
    ColorTable,
    PixelSource,
    count_pixels,
    pack_rgb,
    recolor,
    unpack_keys,
)
from quantize.imageio import (
    ANIMATION_FORMATS,
    FORMATS,
    INDEXED_FORMATS,
    LOSSY_FORMATS,
    Frame,
    LoadedImage,
    Writer,
    bytes_writer,
    check_outputs,
    decode_rgb,
    encode_image,
    fit_to_format,
    image_writer,
    load_image,
    output_format,
    write_files,
)
from quantize.kmeans import check_random_state
from quantize.limits import DEFAULT_MAX_FRAMES, MAX_COLORS, MAX_N_INIT, MIN_COLORS
from quantize.metrics import MetricsAccumulator, QualityMetrics, palette_metrics, quality_metrics
from quantize.palette import SUFFIXES, Palette, export, render_swatch, to_json_colors
from quantize.plots import render_pixel_plot, sample_pixels
from quantize.reduce import (
    ReducedTable,
    add_pixel_pairs,
    is_huge,
    nearest_labels,
    nearest_palette,
    reduce_table,
    table_metrics,
)
from quantize.text import json_safe, valid_unicode
from quantize.vocabulary import ALGORITHMS, SORT_KEYS, Algorithm, SortKey

#: Pixels drawn in the ``--plot`` scatter plot.
PLOT_SAMPLE_SIZE = 10_000


@dataclass(frozen=True)
class PaletteFit:
    """A palette fitted to a color table, and where each table row went.

    Attributes
    ----------
    palette : Palette
        Exact sRGB colors sorted by pixel count, with counts.
    labels : ndarray of int, shape (m,)
        Palette index of each table row: intp, or uint8 for a table too
        large for 8 bytes a row (see :mod:`quantize.reduce`).
    n_iter : int
        Iterations the clustering ran (0 when the palette was given).
    n_init : int
        Seeding runs the clustering made (0 when the palette was given or
        the table had no more colors than asked for).
    """

    palette: Palette
    labels: NDArray[np.intp] | NDArray[np.uint8]
    n_iter: int
    n_init: int = 0


@dataclass
class QuantizeResult:
    """The outcome of :func:`quantize_image`.

    Attributes
    ----------
    image : PIL.Image.Image
        The recolored image (the first frame of an animation): mode "P"
        whose palette is exactly ``palette``, plus one fully transparent
        entry when the input had transparent pixels and one entry per
        (color, alpha) pair of semi-transparent pixels (PNG tRNS); "RGBA"
        when those pairs do not fit in 256 entries.
    palette : Palette
        The colors found, in the ``sort`` order asked of `quantize_image`
        (by pixel count, descending, by default).  Index ``i`` of an
        indexed ``image`` is ``palette.colors[i]``.
    metrics : QualityMetrics
        Error between the visible input pixels and their new colors.
    settings : dict
        The options that produced the result, for the report.
    frames : list of PIL.Image.Image
        Every recolored frame, all with the same palette; ``frames[0] is image``.
    durations : list of int or None
        Display time of each frame in milliseconds.
    loop : int or None
        Animation loop count (0 = forever); None plays once.
    profile : str or None
        Name of the ICC profile the input colors were converted from.
    """

    image: Image.Image
    palette: Palette
    metrics: QualityMetrics
    settings: dict[str, Any]
    width: int
    height: int
    n_iter: int
    distinct_colors: int
    transparent_pixels: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    frames: list[Image.Image] = field(default_factory=list)
    durations: list[int | None] = field(default_factory=list)
    loop: int | None = None
    profile: str | None = None
    k_auto: AutoK | None = None
    #: Distinct colors in the image file as written, when a lossy format
    #: (JPEG) made more of them than the palette has; 0 otherwise.
    image_colors: int = 0
    #: Colors that had to stay in the palette (``keep``), shape (n, 3); None when none.
    kept: NDArray[np.uint8] | None = None

    def image_for_format(self, fmt: str) -> Image.Image:
        """The image to save in ``fmt``: indexed where the format can hold a palette."""
        return _for_format(self.image, fmt)

    def frames_for_format(self, fmt: str) -> list[Image.Image]:
        """Every frame as :meth:`image_for_format` gives it, or only the first
        when ``fmt`` cannot hold an animation."""
        frames = self.frames or [self.image]
        keep = frames if fmt in ANIMATION_FORMATS else frames[:1]
        return [_for_format(frame, fmt) for frame in keep]

    def report(self, source: str | None, image_path: str | None) -> dict[str, Any]:
        """The palette report as a JSON-ready dict (schema in the README)."""
        return {
            "source": source,
            "image": image_path,
            "width": self.width,
            "height": self.height,
            "pixels": int(self.palette.counts.sum()),
            "transparent_pixels": self.transparent_pixels,
            "distinct_colors": self.distinct_colors,
            "color_profile": "sRGB",
            "input_profile": self.profile,
            "frames": len(self.frames) or 1,
            **self.settings,
            "n_iter": self.n_iter,
            "k_auto": None if self.k_auto is None else self.k_auto.to_dict(),
            "metrics": self.metrics.to_dict(),
            "colors": mark_kept(to_json_colors(self.palette), self.kept),
            "warnings": list(self.warnings),
        }


def _for_format(image: Image.Image, fmt: str) -> Image.Image:
    if image.mode != "P":
        return image
    # PNG stores per-entry alpha, GIF one transparent index, TIFF and BMP none.
    alpha = image.info.get("transparency")
    stored = alpha is None or fmt == "png" or (fmt == "gif" and isinstance(alpha, int))
    if fmt in INDEXED_FORMATS and stored:
        return image
    return image.convert("RGB" if alpha is None else "RGBA")


def quantize_image(
    image: str | os.PathLike[str] | Image.Image | LoadedImage,
    colors: int | Literal["auto"] = 16,
    *,
    algorithm: Algorithm = "kmeans",
    n_init: int | Literal["auto"] = "auto",
    max_iter: int = 300,
    seed: int = 0,
    space: str = "rgb",
    sort: SortKey = "count",
    dither: Dither = "none",
    dither_strength: float = 1.0,
    target: Target | None = None,
    palette: Palette | None = None,
    keep: ArrayLike | None = None,
) -> QuantizeResult:
    """Reduce an image to at most ``colors`` colors with k-means.

    Parameters
    ----------
    image : path, PIL.Image.Image or LoadedImage
        The input; a path is decoded with :func:`quantize.imageio.load_image`.
    colors : int or "auto", default 16
        Palette size k, 2 to 256.  An image with fewer distinct colors gets
        only the colors it has, with a warning.  "auto": the smallest k that
        meets ``target``, or 256 when none does (see :mod:`quantize.autok`).
    algorithm : {"kmeans", "minibatch"}, default "kmeans"
    n_init : int or "auto", default "auto"
        Number of k-means restarts, 1 to `quantize.limits.MAX_N_INIT`; the
        best by inertia is kept.
    max_iter : int, default 300
    seed : int, default 0
        The same seed and input always give the same result.
    space : {"rgb", "lab", "oklab"}, default "rgb"
        Color space the clustering happens in.
    sort : {"count", "hue", "lightness"}, default "count"
        Order of the palette (see `Palette.order`), which is also the order
        of the indexed image's palette.
    dither : {"none", "floyd-steinberg", "ordered"}, default "none"
        How pixels are mapped to the palette (see :mod:`quantize.dither`);
        the metrics and palette counts describe the dithered pixels.
    dither_strength : float, default 1.0
        0..1 for "ordered"; "floyd-steinberg" allows only 1.
    target : Target, optional
        Quality goal of ``colors="auto"``; PSNR >= 32 dB when not given.
        Only allowed with "auto".
    palette : Palette, optional
        Recolor with these colors instead of clustering: every color goes to
        its nearest palette color in ``space``; ``colors`` is then ignored and
        palette colors no pixel uses are left out of the result.
    keep : array_like of int, shape (n, 3), optional
        sRGB colors that must be in the palette exactly, distinct, at most
        ``colors`` of them (they count toward it; with "auto" toward every k
        tried).  The other colors are learned around them (k-means with
        fixed centers, :mod:`quantize.fixed`); every pixel goes to its
        nearest color, kept or learned.  A kept color no pixel uses stays in
        the palette with count 0, with a warning.  With ``palette`` the kept
        colors are added to it.

    Returns
    -------
    QuantizeResult

    Examples
    --------
    >>> from PIL import Image
    >>> from quantize import quantize_image
    >>> result = quantize_image(Image.radial_gradient("L").convert("RGB"), colors=4)
    >>> result.image.mode, result.palette.size
    ('P', 4)
    """
    # With a palette, colors is ignored (the palette may even have a single color).
    _validate(colors if palette is None else MIN_COLORS, algorithm, n_init, max_iter, space)
    if sort not in SORT_KEYS:
        raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)}, got {sort!r}")
    _validate_perceptual(colors, dither, dither_strength, target)
    kept = check_keep(keep, colors if palette is None else "auto")
    start = time.perf_counter()
    loaded = image if isinstance(image, LoadedImage) else load_image(image)
    table = count_pixels(_sources(loaded.frames))
    if table.n_colors == 0:
        path = image if isinstance(image, str | os.PathLike) else None
        raise InputError("every pixel is fully transparent: nothing to quantize", path)
    warnings = list(loaded.notes)
    transparent = _transparent_count(loaded.frames)
    k_max = MAX_COLORS - 1 if transparent else MAX_COLORS
    huge = is_huge(table.n_colors)
    fit_options: dict[str, Any] = {
        "algorithm": algorithm,
        "n_init": n_init,
        "max_iter": max_iter,
        "seed": seed,
        "space": space,
        # Converted once: every palette size tried reuses it.
        "points": None if huge else cs.rgb8_to_space(table.colors, space),
    }
    if kept is not None:
        fit_options["keep"] = kept
    if huge and colors == "auto" and palette is None:
        # Kept for every size tried; for one k, fit_palette makes and drops it.
        fit_options["reduced"] = reduce_table(table.keys, table.counts, space)

    # Clustering in Lab has converted the table already: ΔE reuses it.
    table_lab = fit_options["points"] if space == "lab" else None

    # Packed keys of every frame, for dithered attempts only: made by the
    # first one and reused by the others (-k auto tries several).
    keys: list[NDArray[np.uint32]] = []

    def judge(fit: PaletteFit) -> _Attempt:
        if dither == "none":
            return _Attempt(fit, fit.palette, _metrics(table, fit, table_lab), None)
        if huge or table.n_pixels > reduce.PAIRS_IN_BANDS_MIN_PIXELS:
            return _dithered_bounded(loaded.frames, fit, dither, dither_strength, space)
        if not keys:
            keys.extend(pack_rgb(frame.rgb) for frame in loaded.frames)
        return _dithered(loaded.frames, keys, fit, dither, dither_strength, space)

    def attempt(k: int) -> _Attempt:
        return judge(fit_palette(table, k, **fit_options))

    auto: AutoK | None = None
    if palette is not None:
        given = palette if kept is None else _union(kept, palette)
        best = judge(_fit_given(table, given, space, transparent > 0))
    elif colors == "auto":
        goal = target or Target("psnr", DEFAULT_PSNR)
        seen: dict[int, QualityMetrics] = {}

        def judged(k: int) -> _Attempt:
            seen[k] = (result := attempt(k)).metrics
            return result

        # More colors than the image has cannot improve on its exact copy.
        n_kept = 0 if kept is None else len(kept)
        lo = max(MIN_COLORS, n_kept)
        hi = max(lo, min(k_max, table.n_colors + n_kept))
        search = smallest_k(judged, lambda a: goal.met_by(a.metrics), lo, hi)
        best = search.result
        tried = [(k, met, seen[k]) for k, met in search.tried]
        auto = AutoK(goal, search.chosen, search.met, tried)
    else:
        k = min(colors, k_max)
        if kept is not None and len(kept) > k:
            raise ValueError(f"{len(kept)} kept colors do not fit in {k} palette colors")
        if table.n_colors < k:
            warnings.append(f"requested {colors} colors, image has {table.n_colors}")
        best = attempt(k)
    if kept is not None:
        best = _with_kept(best, kept)
        warnings.extend(_unused_kept(best.palette, kept))
    ordered, indices = _in_order(best, sort, table, loaded.frames)
    out = render_frames(loaded.frames, indices, ordered)
    settings: dict[str, Any] = {
        "colors_requested": colors,
        "algorithm": algorithm,
        "space": space,
        "dither": dither,
        "dither_strength": None if dither == "none" else dither_strength,
        "seed": seed,
        "n_init": best.fit.n_init,
        "max_iter": max_iter,
        "sort": sort,
    }
    if kept is not None:
        settings["keep"] = Palette.from_colors(kept).hex
    return QuantizeResult(
        image=out[0],
        palette=ordered,
        metrics=best.metrics,
        settings=settings,
        width=loaded.width,
        height=loaded.height,
        n_iter=best.fit.n_iter,
        distinct_colors=table.n_colors,
        transparent_pixels=transparent,
        seconds=time.perf_counter() - start,
        warnings=warnings,
        frames=out,
        durations=[frame.duration for frame in loaded.frames],
        loop=loaded.loop,
        profile=loaded.profile,
        k_auto=auto,
        kept=kept,
    )


@dataclass(frozen=True)
class _Attempt:
    """One palette size tried: the fit, and the palette and metrics of its output.

    ``indices`` holds the dithered palette indices of every frame (into
    ``palette``); None when the output is the plain nearest-color mapping.
    """

    fit: PaletteFit
    palette: Palette
    metrics: QualityMetrics
    indices: list[NDArray[np.uint8]] | None


def _validate_perceptual(
    colors: int | str, dither: str, dither_strength: float, target: Target | None
) -> None:
    if dither not in DITHER_METHODS:
        raise ValueError(f"dither must be one of {', '.join(DITHER_METHODS)}, got {dither!r}")
    if not 0.0 <= dither_strength <= 1.0:
        raise ValueError(f"dither_strength must be between 0 and 1, got {dither_strength}")
    if dither == "floyd-steinberg" and dither_strength != 1.0:
        raise ValueError("Floyd-Steinberg dithering has no strength setting (only 1)")
    if target is not None and colors != "auto":
        raise ValueError("a quality target needs colors='auto'")


def _fit_given(table: ColorTable, palette: Palette, space: str, transparent: bool) -> PaletteFit:
    fit = apply_palette(table, palette, space)
    if transparent and fit.palette.size >= MAX_COLORS:
        # The transparent pixels need a palette entry of their own.
        raise ValueError(
            f"the image has transparent pixels and uses all {MAX_COLORS} palette colors; "
            f"use a palette of at most {MAX_COLORS - 1} colors"
        )
    return fit


def visible_table(loaded: LoadedImage) -> tuple[ColorTable, int]:
    """The distinct visible colors of an image, and its number of fully transparent pixels.

    Returns
    -------
    table : ColorTable
        Distinct colors (m of them) of the pixels that are not fully
        transparent, over all frames, with their pixel counts.
    transparent : int
    """
    return count_pixels(_sources(loaded.frames)), _transparent_count(loaded.frames)


def _validate(
    colors: int | str, algorithm: str, n_init: int | str, max_iter: int, space: str
) -> None:
    if colors != "auto" and not (isinstance(colors, int) and MIN_COLORS <= colors <= MAX_COLORS):
        raise ValueError(f"colors must be between {MIN_COLORS} and {MAX_COLORS}, got {colors}")
    if algorithm not in ALGORITHMS:
        known = " or ".join(repr(a) for a in ALGORITHMS)
        raise ValueError(f"algorithm must be {known}, got {algorithm!r}")
    if n_init != "auto" and (not isinstance(n_init, int) or not 1 <= n_init <= MAX_N_INIT):
        raise ValueError(
            f"n_init must be an integer from 1 to {MAX_N_INIT} or 'auto', got {n_init!r}"
        )
    if max_iter < 1:
        raise ValueError(f"max_iter must be positive, got {max_iter}")
    if space not in cs.SPACES:
        raise ValueError(f"space must be one of {', '.join(cs.SPACES)}, got {space!r}")


def _sources(frames: list[Frame]) -> list[PixelSource]:
    """Each frame's pixels and which of them are visible (alpha > 0)."""
    return [(f.rgb, None if f.alpha is None else f.alpha > 0) for f in frames]


def _transparent_count(frames: list[Frame]) -> int:
    return sum(int(np.count_nonzero(f.alpha == 0)) for f in frames if f.alpha is not None)


def fit_palette(
    table: ColorTable,
    n_colors: int,
    *,
    algorithm: Algorithm = "kmeans",
    n_init: int | Literal["auto"] = "auto",
    max_iter: int = 300,
    seed: int = 0,
    space: str = "rgb",
    points: NDArray[np.float64] | None = None,
    keep: NDArray[np.uint8] | None = None,
    reduced: ReducedTable | None = None,
) -> PaletteFit:
    """Cluster a color table and turn the centers into an exact sRGB palette.

    Centers are rounded to 8-bit sRGB, duplicates after rounding are merged,
    and every table row is then assigned to its nearest *rounded* color, so
    the labels agree with the palette the image is written with.

    Parameters
    ----------
    table : ColorTable
        Distinct colors (m of them) with pixel counts.
    n_colors : int
        Upper bound on the palette size.
    points : ndarray of float64, shape (m, 3), optional
        ``table.colors`` already converted to ``space``, to save converting
        them again when several palettes are fitted to one table.
    keep : ndarray of uint8, shape (n, 3), optional
        Colors the palette must hold exactly (see `check_keep`): fixed
        centers of the clustering, never rounded, kept with count 0 when no
        row is nearest to them.  They count toward ``n_colors``.
    reduced : ReducedTable, optional
        The reduced table of a huge ``table`` (over
        :data:`quantize.reduce.REDUCE_MIN_COLORS` colors), which is what
        gets clustered; made here when not given.

    Returns
    -------
    PaletteFit
    """
    if keep is not None:
        if is_huge(table.n_colors):
            # Fixed centers on the reduced table too; no float copy of every color.
            if reduced is None:
                reduced = reduce_table(table.keys, table.counts, space)
            points = None
        elif points is None:
            points = cs.rgb8_to_space(table.colors, space)
        return _fit_keeping(
            table, n_colors, keep, algorithm, n_init, max_iter, seed, space, points, reduced
        )
    if is_huge(table.n_colors):
        # Clustered on the reduced table, assigned exactly in chunks.
        if reduced is None:
            reduced = reduce_table(table.keys, table.counts, space)
        x, w, keys = reduced.points, reduced.weights, reduced.keys
        points = None
    else:
        if points is None:
            points = cs.rgb8_to_space(table.colors, space)
        x, w, keys = points, table.counts.astype(np.float64), table.keys
    centers, n_iter = cluster_centers(
        x,
        w,
        keys,
        n_colors,
        algorithm=algorithm,
        n_init=n_init,
        max_iter=max_iter,
        random_state=seed,
    )
    del x, w, keys, reduced
    rounded = _unique_rows(cs.space_to_rgb8(centers, space))
    palette = Palette(rounded, np.zeros(len(rounded), np.int64))
    palette_fit = apply_palette(table, palette, space, points=points)
    # cluster_centers returns every color as its own center, with no run,
    # when there are no more colors than asked for.
    runs = resolve_n_init(n_init, n_colors, algorithm) if table.n_colors > n_colors else 0
    return PaletteFit(palette_fit.palette, palette_fit.labels, n_iter, runs)


def apply_palette(
    table: ColorTable,
    palette: Palette,
    space: str = "rgb",
    *,
    points: NDArray[np.float64] | None = None,
) -> PaletteFit:
    """Assign every table color to its nearest palette color in ``space``.

    Palette entries that no pixel uses are dropped; the result is sorted by
    pixel count with deterministic ties.  ``points`` may hold the table
    colors already converted to ``space``.

    Returns
    -------
    PaletteFit
        With ``n_iter`` 0.
    """
    if is_huge(table.n_colors):
        small, pixels = nearest_labels(table.keys, table.counts, palette.colors, space)
        ordered, remap = _trim_and_sort(palette.colors, pixels)
        # Only dropped colors map to -1, and no row has one.
        return PaletteFit(ordered, np.maximum(remap, 0).astype(np.uint8)[small], 0)
    labels = nearest_palette(table.colors, palette.colors, space, points=points)
    counts = np.bincount(labels, weights=table.counts, minlength=palette.size).astype(np.int64)
    ordered, remap = _trim_and_sort(palette.colors, counts)
    return PaletteFit(ordered, remap[labels], 0)


def _trim_and_sort(
    colors: NDArray[np.uint8], counts: NDArray[np.int64]
) -> tuple[Palette, NDArray[np.intp]]:
    """Drop colors with no pixel, sort by count, and map old indices to new ones (-1: dropped)."""
    used = np.flatnonzero(counts)
    trimmed = Palette(colors[used], counts[used])
    order = trimmed.order("count")
    remap = np.full(len(colors), -1, dtype=np.intp)
    remap[used[order]] = np.arange(order.size)
    return Palette(trimmed.colors[order], trimmed.counts[order]), remap


def _unique_rows(colors: NDArray[np.uint8]) -> NDArray[np.uint8]:
    keys = pack_rgb(colors)
    _, first = np.unique(keys, return_index=True)
    return colors[np.sort(first)]


def render_frames(
    frames: list[Frame], indices: list[NDArray[np.uint8]], palette: Palette
) -> list[Image.Image]:
    """Build the output frames from the palette index of every pixel.

    All frames share one indexed palette: the ``palette`` colors (index i is
    ``palette.colors[i]``), then one entry per (color, alpha) pair of the
    semi-transparent pixels, then one fully transparent entry (RGB 0, 0, 0)
    that every alpha-0 pixel uses, whatever color was hidden under it.  When
    that needs more than 256 entries the frames come back as RGBA instead.

    Parameters
    ----------
    frames : list of Frame
        The input frames, for their alpha.
    indices : list of ndarray of uint8, shape (h, w)
        Palette index of every pixel of each frame (the value under alpha 0
        does not matter).
    palette : Palette

    Returns
    -------
    list of PIL.Image.Image
        Mode "P" (with ``info["transparency"]`` an index, or per-entry
        alpha bytes when some pixel is semi-transparent), or "RGBA".
    """
    alphas = [f.alpha for f in frames]
    if all(a is None for a in alphas):
        return [_indexed(idx, palette.colors.ravel().tolist(), None) for idx in indices]
    # Code each pixel as index * 256 + alpha; every alpha-0 pixel shares one code.
    clear = 256 * 256
    codes = [_pair_codes(idx, a, clear) for idx, a in zip(indices, alphas, strict=True)]
    opaque = np.arange(palette.size, dtype=np.int32) * 256 + 255
    extra = np.unique(np.concatenate([c[(c & 255) != 255] for c in codes]))
    if extra.size == 0:
        return [_indexed(idx, palette.colors.ravel().tolist(), None) for idx in indices]
    if palette.size + extra.size > 256:
        return [_rgba(idx, a, palette) for idx, a in zip(indices, alphas, strict=True)]
    entries = np.concatenate([opaque, extra])  # sorted: opaque codes, then extra ascending
    order = np.argsort(entries, kind="stable")
    entry_index = [order[np.searchsorted(entries[order], c)].astype(np.uint8) for c in codes]
    colors = palette.colors[np.minimum(entries >> 8, palette.size - 1)]
    colors[entries == clear] = 0
    alpha = np.where(entries == clear, 0, entries & 255).astype(np.uint8)
    only_clear = extra.size == 1 and extra[0] == clear
    transparency: int | bytes = palette.size if only_clear else alpha.tobytes()
    return [_indexed(idx, colors.ravel().tolist(), transparency) for idx in entry_index]


def _pair_codes(
    indices: NDArray[np.uint8], alpha: NDArray[np.uint8] | None, clear: int
) -> NDArray[np.int32]:
    codes = indices.astype(np.int32) * 256
    codes += 255 if alpha is None else alpha
    if alpha is not None:
        codes[alpha == 0] = clear
    return codes


def _indexed(
    indices: NDArray[np.uint8], flat_palette: list[int], transparency: int | bytes | None
) -> Image.Image:
    img = Image.frombytes("P", (indices.shape[1], indices.shape[0]), indices.tobytes())
    img.putpalette(flat_palette, "RGB")
    if transparency is not None:
        img.info["transparency"] = transparency
    return img


def _rgba(
    indices: NDArray[np.uint8], alpha: NDArray[np.uint8] | None, palette: Palette
) -> Image.Image:
    rgba = np.empty((*indices.shape, 4), dtype=np.uint8)
    rgba[..., :3] = palette.colors[indices]
    rgba[..., 3] = 255 if alpha is None else alpha
    rgba[rgba[..., 3] == 0, :3] = 0
    return Image.fromarray(rgba, "RGBA")


def _dithered(
    frames: list[Frame],
    keys: list[NDArray[np.uint32]],
    fit: PaletteFit,
    method: Dither,
    strength: float,
    space: str,
) -> _Attempt:
    """Dither every frame to ``fit.palette``; palette counts and metrics of the actual output.

    The metrics run on the weighted table of distinct (input color, output
    index) pairs of the visible pixels, which equals a pixel-by-pixel
    comparison at a fraction of the cost.
    """
    indices: list[NDArray[np.uint8]] = []
    pairs: list[NDArray[np.uint32]] = []
    for frame, frame_keys in zip(frames, keys, strict=True):
        visible, idx = _dither_frame(frame, fit.palette.colors, method, strength, space)
        vis_keys = frame_keys if visible is None else frame_keys[visible]
        vis_idx = idx if visible is None else idx[visible]
        # 24-bit color key and 8-bit index fit one uint32 pair code.
        pairs.append(vis_keys.ravel() | (vis_idx.ravel().astype(np.uint32) << np.uint32(24)))
        indices.append(idx)
    uniq, pair_counts = np.unique(np.concatenate(pairs), return_counts=True)
    source = unpack_keys(uniq & np.uint32(0xFFFFFF))
    out_index = (uniq >> 24).astype(np.intp)
    counts = np.bincount(out_index, weights=pair_counts, minlength=fit.palette.size)
    palette, remap = _trim_and_sort(fit.palette.colors, counts.astype(np.int64))
    metrics = palette_metrics(source, pair_counts, palette.colors, remap[out_index])
    # Transparent pixels may map to a dropped color (-1); render_frames overwrites them.
    remap8 = np.maximum(remap, 0).astype(np.uint8)
    return _Attempt(fit, palette, metrics, [remap8[idx] for idx in indices])


def _dithered_bounded(
    frames: list[Frame], fit: PaletteFit, method: Dither, strength: float, space: str
) -> _Attempt:
    """`_dithered` for a huge color table: the same palette counts and metrics,
    from (input color, output index) pairs counted a band of rows at a time
    instead of over every pixel at once."""
    acc = MetricsAccumulator(fit.palette.colors)
    indices: list[NDArray[np.uint8]] = []
    for frame in frames:
        visible, idx = _dither_frame(frame, fit.palette.colors, method, strength, space)
        add_pixel_pairs(acc, frame.rgb, visible, idx)
        indices.append(idx)
    palette, remap = _trim_and_sort(fit.palette.colors, acc.counts)
    remap8 = np.maximum(remap, 0).astype(np.uint8)
    return _Attempt(fit, palette, acc.result(), [remap8[idx] for idx in indices])


def _dither_frame(
    frame: Frame, colors: NDArray[np.uint8], method: Dither, strength: float, space: str
) -> tuple[NDArray[np.bool_] | None, NDArray[np.uint8]]:
    """The visible-pixel mask of ``frame`` (None: all visible) and its dithered indices."""
    visible = None if frame.alpha is None else frame.alpha > 0
    rgb = frame.rgb
    if visible is not None:
        # A transparent pixel holding a palette color adds no error of its own
        # to diffuse into its visible neighbors.
        rgb = rgb.copy()
        rgb[~visible] = colors[0]
    return visible, dither_indices(rgb, colors, method, strength=strength, space=space)


def _in_order(
    best: _Attempt, sort: SortKey, table: ColorTable, frames: list[Frame]
) -> tuple[Palette, list[NDArray[np.uint8]]]:
    """The output palette in ``sort`` order and the palette index of every pixel of every frame.

    The value under a fully transparent pixel is left 0 (render_frames
    overwrites it).
    """
    order = best.palette.order(sort)
    new_index = np.empty_like(order)
    new_index[order] = np.arange(order.size)
    palette = Palette(best.palette.colors[order], best.palette.counts[order])
    # Gathers from a uint8 table: no intp array as long as the table or frame.
    new_index8 = new_index.astype(np.uint8)
    if best.indices is None:
        return palette, recolor(table, new_index8[best.fit.labels], _sources(frames))
    return palette, [new_index8[idx] for idx in best.indices]


def _metrics(
    table: ColorTable, fit: PaletteFit, table_lab: NDArray[np.float64] | None = None
) -> QualityMetrics:
    return table_metrics(table, fit.palette.colors, fit.labels, original_lab=table_lab)


@dataclass(frozen=True)
class RunOptions:
    """Everything that decides how one file is quantized and written."""

    colors: int | Literal["auto"] = 16
    algorithm: Algorithm = "kmeans"
    n_init: int | Literal["auto"] = "auto"
    max_iter: int = 300
    seed: int = 0
    space: str = "rgb"
    dither: Dither = "none"
    dither_strength: float = 1.0
    target: Target | None = None
    fmt: str = "png"
    report: bool = True
    force: bool = False
    #: Palette files besides the JSON report: keys of `quantize.palette.SUFFIXES`.
    palette_formats: tuple[str, ...] = ()
    sort: SortKey = "count"
    swatch: bool = False
    plot: bool = False
    #: False for palette-only runs (``--no-image``).
    image: bool = True
    max_pixels: int | None = None
    max_frames: int = DEFAULT_MAX_FRAMES
    background: tuple[int, int, int] = (255, 255, 255)
    #: Recolor with this palette instead of clustering (``--palette``, ``--shared-palette``).
    palette: Palette | None = None
    #: Where that palette came from, for the report's ``palette_file``.
    palette_file: str | None = None
    #: Colors that must stay in the palette (``--keep``), shape (n, 3).
    keep: NDArray[np.uint8] | None = None
    #: Folder of the ``--html`` page: each image also gets thumbnails under it.
    page_dir: Path | None = None


@dataclass(frozen=True)
class OutputPlan:
    """Where the outputs of one input go, and in which image format.

    ``image`` is also the base every other name derives from, so it is set
    even when ``write_image`` is False (``--no-image``).
    """

    image: Path
    report: Path | None
    fmt: str
    palettes: dict[str, Path] = field(default_factory=dict)
    swatch: Path | None = None
    plot: Path | None = None
    write_image: bool = True
    #: Thumbnails of the input and the output for the ``--html`` page.
    thumbs: tuple[Path, Path] | None = None

    @property
    def paths(self) -> list[Path]:
        """Every file this plan writes."""
        image = self.image if self.write_image else None
        extra = [*self.palettes.values(), self.swatch, self.plot, *(self.thumbs or ())]
        return [p for p in (image, self.report, *extra) if p is not None]


def default_stem(source: Path, colors: int | str) -> str:
    """The output file stem for an input: ``photo.jpg`` -> ``photo-k16`` (``photo-kauto``)."""
    return f"{source.stem}-k{colors}"


def is_folder_spec(output: str) -> bool:
    """True when ``output`` names a folder: an existing one, or spelled with a trailing slash."""
    # os.path.isdir: a name the file system refuses (too long, a loop) is no folder.
    return output.endswith(("/", os.sep)) or os.path.isdir(output)


def plan_outputs(source: Path, output: str | None, opts: RunOptions) -> OutputPlan:
    """Decide the output paths for ``source``.

    ``output`` may be None (next to the input), a folder (existing, or spelled
    with a trailing slash) or an image file name whose suffix picks the format.

    Raises
    ------
    OutputError
        ``output`` names a file with an unknown suffix.
    """
    if output is None or is_folder_spec(output):
        folder = source.parent if output is None else Path(output)
        image = folder / (default_stem(source, opts.colors) + FORMATS[opts.fmt][1])
        fmt = opts.fmt
    else:
        image = Path(output)
        fmt = output_format(image)
    report = image.with_suffix(".json") if opts.report else None
    unknown = [f for f in opts.palette_formats if f not in SUFFIXES]
    if unknown:
        raise ValueError(f"unknown palette formats {unknown}; use {', '.join(SUFFIXES)}")
    palettes = {f: image.with_suffix(SUFFIXES[f]) for f in opts.palette_formats}
    swatch = image.with_suffix(".swatch.png") if opts.swatch else None
    plot = image.with_suffix(".pixels.png") if opts.plot else None
    thumbs = None
    if opts.page_dir is not None:
        from quantize.report_html import thumbnail_paths

        thumbs = thumbnail_paths(image, opts.page_dir)
    return OutputPlan(
        image, report, fmt, palettes, swatch, plot, write_image=opts.image, thumbs=thumbs
    )


def process_file(
    source: Path, plan: OutputPlan, opts: RunOptions, inputs: Sequence[Path] = ()
) -> QuantizeResult:
    """Quantize one file and write its outputs atomically.

    Outputs are checked before any work is done: an input (``source`` or any
    of ``inputs``) is never overwritten, and an existing output only with
    ``opts.force``.  What the output format cannot store (animation,
    transparency) is removed before clustering, with a warning.  The image
    and its report are written together: both or neither.

    Raises
    ------
    QuantizeError
        The input cannot be read or an output cannot be written.
    """
    check_outputs(plan.paths, [source, *inputs], force=opts.force)
    start = time.perf_counter()
    # An output that cannot animate needs only the first frame decoded.
    animation = plan.fmt in ANIMATION_FORMATS
    loaded = fit_to_format(
        load_image(
            source, max_pixels=opts.max_pixels, max_frames=opts.max_frames, animation=animation
        ),
        plan.fmt,
        opts.background,
    )
    load_seconds = time.perf_counter() - start
    result = quantize_image(
        loaded,
        opts.colors,
        algorithm=opts.algorithm,
        n_init=opts.n_init,
        max_iter=opts.max_iter,
        seed=opts.seed,
        space=opts.space,
        sort=opts.sort,
        dither=opts.dither,
        dither_strength=opts.dither_strength,
        target=opts.target,
        palette=opts.palette,
        keep=opts.keep,
    )
    result.seconds += load_seconds  # the summary times decode + quantize
    encoded = None
    if plan.write_image and plan.fmt in LOSSY_FORMATS:
        encoded = _measure_as_written(result, loaded.frames[0], plan.fmt)
    write_outputs(
        source,
        plan,
        result,
        loaded.frames[0],
        seed=opts.seed,
        palette_file=opts.palette_file,
        force=opts.force,
        encoded=encoded,
    )
    return result


def _measure_as_written(result: QuantizeResult, frame: Frame, fmt: str) -> bytes:
    """Encode the image for a lossy ``fmt``; set the result's metrics to what the file holds.

    The palette stays what was clustered (and ``colors_used`` counts its
    colors); MSE, PSNR and ΔE compare the input with the decoded file, and
    ``result.image_colors`` becomes the number of distinct colors in it.

    Returns
    -------
    bytes
        The encoded image, to be written as it was measured.
    """
    data = encode_image(result.frames_for_format(fmt), fmt)
    written = decode_rgb(data)
    metrics, distinct = written_metrics(frame.rgb, written)
    result.metrics = replace(metrics, colors_used=result.metrics.colors_used)
    result.image_colors = distinct
    return data


def written_metrics(
    original: NDArray[np.uint8], written: NDArray[np.uint8]
) -> tuple[QualityMetrics, int]:
    """Quality of an image as written against its input, pixel by pixel.

    Computed on the table of distinct (input color, written color) pairs,
    which gives the same numbers as comparing every pixel.

    Parameters
    ----------
    original, written : ndarray of uint8, shape (h, w, 3)

    Returns
    -------
    metrics : QualityMetrics
        ``colors_used`` is the number of distinct written colors.
    distinct : int
        The same number: colors in the written image.
    """
    pairs = pack_rgb(original).ravel().astype(np.uint64) << np.uint64(24)
    pairs |= pack_rgb(written).ravel()
    pairs, counts = np.unique(pairs, return_counts=True)
    source = unpack_keys((pairs >> np.uint64(24)).astype(np.uint32))
    out_keys = (pairs & np.uint64(0xFFFFFF)).astype(np.uint32)
    distinct = int(np.unique(out_keys).size)
    return quality_metrics(source, unpack_keys(out_keys), counts, distinct), distinct


def write_outputs(
    source: Path,
    plan: OutputPlan,
    result: QuantizeResult,
    frame: Frame,
    *,
    seed: int = 0,
    palette_file: str | None = None,
    force: bool = False,
    encoded: bytes | None = None,
) -> None:
    """Write every output of ``plan``: all of them are in place, or none is.

    Parameters
    ----------
    source : Path
        The input, named in the report and the plot title.
    plan : OutputPlan
    result : QuantizeResult
    frame : Frame
        The decoded input (its first frame), for the pixel plot.
    seed : int
        Seed of the plot's pixel sample.
    palette_file : str, optional
        The palette file the colors came from, for the report.
    force : bool
        Replace existing outputs; without it an output that exists when the
        files are moved into place fails the image (another run wrote it).
    encoded : bytes, optional
        The image already encoded for ``plan.fmt`` (a lossy format, measured
        as written): written as it is.
    """
    files: list[tuple[Path, Writer]] = []
    # Drawn first: its warnings belong in the report.
    plot = (
        None
        if plan.plot is None
        else pixel_plot_png(valid_unicode(source.name), frame, result, seed=seed)
    )
    indexed = None
    if plan.write_image:
        frames = result.frames_for_format(plan.fmt)
        indexed = frames[0].mode == "P"
        durations = result.durations[: len(frames)]
        writer = (
            image_writer(frames, plan.fmt, durations=durations, loop=result.loop)
            if encoded is None
            else bytes_writer(encoded)
        )
        files.append((plan.image, writer))
    if plan.report is not None:
        report = result.report(str(source), str(plan.image) if plan.write_image else None)
        report["palette_file"] = palette_file
        report["image_indexed"] = indexed
        report["image_colors"] = (
            None if indexed is None else result.image_colors or report["metrics"]["colors_used"]
        )
        text = json.dumps(json_safe(report), indent=2) + "\n"  # valid UTF-8 for any file name
        files.append((plan.report, bytes_writer(text.encode())))
    for fmt, path in plan.palettes.items():
        data = export(result.palette, fmt, valid_unicode(plan.image.stem))
        files.append((path, bytes_writer(data if isinstance(data, bytes) else data.encode())))
    if plan.swatch is not None:
        files.append((plan.swatch, image_writer([render_swatch(result.palette)], "png")))
    if plan.plot is not None and plot is not None:
        files.append((plan.plot, bytes_writer(plot)))
    if plan.thumbs is not None:
        from quantize.report_html import thumbnail_writers

        files.extend(thumbnail_writers(plan.thumbs, frame, result.image))
    write_files(files, force=force)


def pixel_plot_png(name: str, frame: Frame, result: QuantizeResult, *, seed: int = 0) -> bytes:
    """The ``--plot`` figure of a result as PNG bytes (see `quantize.plots`).

    Warnings matplotlib gives while drawing (a glyph the font lacks ...) are
    added to ``result.warnings``, one line each, for the report and the command.

    Parameters
    ----------
    name : str
        Image name for the title.
    frame : Frame
        The decoded input the result was computed from.
    result : QuantizeResult
    seed : int
        Seed of the sample of `PLOT_SAMPLE_SIZE` visible pixels.
    """
    original, mapped = sample_visible_pixels(frame, result.image, PLOT_SAMPLE_SIZE, seed)
    title = f"{name} — {result.distinct_colors:,} distinct colors → k={result.palette.size}"
    buffer = io.BytesIO()
    caught = render_pixel_plot(
        original, mapped, result.palette.colors, title=title, path_or_buffer=buffer
    )
    result.warnings.extend(f"--plot: {line}" for line in dict.fromkeys(caught))
    return buffer.getvalue()


def sample_visible_pixels(
    frame: Frame, image: Image.Image, n: int, seed: int
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """A seeded sample of visible pixels with their input and output colors.

    Parameters
    ----------
    frame : Frame
        The input; pixels with alpha 0 are not visible and never sampled.
    image : PIL.Image.Image
        The recolored image of the same size (mode "P", "RGB" or "RGBA").
    n : int
        Sample size; every visible pixel when there are fewer.
    seed : int

    Returns
    -------
    original, mapped : ndarray of uint8, shape (min(n, visible), 3)
        Input colors, and the colors the same pixels have in ``image``.
    """
    visible = None if frame.alpha is None else np.flatnonzero(frame.alpha.ravel() > 0)
    n_visible = frame.rgb.shape[0] * frame.rgb.shape[1] if visible is None else visible.size
    where = sample_pixels(n_visible, n, seed)
    if visible is not None:
        where = visible[where]
    original = frame.rgb.reshape(-1, 3)[where]
    if image.mode == "P":
        # Read the indices the image holds, so the colors are the written ones.
        lut = np.asarray(image.getpalette("RGB"), dtype=np.uint8).reshape(-1, 3)
        mapped = lut[np.asarray(image).ravel()[where]]
    else:
        mapped = np.asarray(image.convert("RGB")).reshape(-1, 3)[where]
    return original, mapped


# --------------------------------------------------------------------------
# Kept colors (``keep``): fixed centers of the clustering.


def check_keep(keep: ArrayLike | None, colors: int | str) -> NDArray[np.uint8] | None:
    """Validate colors that must stay in the palette.

    Parameters
    ----------
    keep : array_like of int, shape (n, 3), or None
        sRGB colors, 0..255.
    colors : int or "auto"
        The palette size they must fit in (every size is checked later for "auto").

    Returns
    -------
    ndarray of uint8, shape (n, 3), or None
        None when nothing is kept.

    Raises
    ------
    ValueError
        Not (n, 3) integers in 0..255, a color given twice, or more colors than ``colors``.
    """
    if keep is None:
        return None
    arr = np.asarray(keep)
    if arr.size == 0:
        return None
    if arr.ndim != 2 or arr.shape[1] != 3 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"keep must be integer sRGB colors of shape (n, 3), got {arr.shape}")
    if arr.min() < 0 or arr.max() > 255:
        raise ValueError("kept colors must be in 0..255")
    kept = arr.astype(np.uint8)
    if np.unique(pack_rgb(kept)).size != len(kept):
        raise ValueError("a kept color is given twice")
    limit = MAX_COLORS if colors == "auto" else int(colors)
    if len(kept) > limit:
        raise ValueError(f"{len(kept)} kept colors but only {limit} palette colors")
    return kept


def mark_kept(
    entries: list[dict[str, Any]], kept: NDArray[np.uint8] | None
) -> list[dict[str, Any]]:
    """Add ``"kept": true/false`` to the report's color entries; unchanged when nothing is kept."""
    if kept is None:
        return entries
    hexes = set(Palette.from_colors(kept).hex)
    return [{**entry, "kept": entry["hex"] in hexes} for entry in entries]


def _fit_keeping(
    table: ColorTable,
    n_colors: int,
    keep: NDArray[np.uint8],
    algorithm: Algorithm,
    n_init: int | Literal["auto"],
    max_iter: int,
    seed: int,
    space: str,
    points: NDArray[np.float64] | None,
    reduced: ReducedTable | None = None,
) -> PaletteFit:
    """`fit_palette` with kept colors as fixed centers: they go into the
    palette as given (a round trip through ``space`` could move them by a
    level), the learned centers rounded after them.

    The fixed-center fit starts once from the kept colors plus an
    unconstrained fit of the rest (the baseline); after rounding to 8 bits,
    that baseline palette competes again, so the palette's error in
    ``space`` is never above the baseline's even by a rounding.

    ``points`` holds every table color in ``space``; for a huge table it is
    None and ``reduced`` is clustered instead (both fits, as `fit_palette`
    does without kept colors), while the candidates are still compared by
    their exact error over every color, computed in chunks.
    """
    from quantize.fixed import baseline_centers, fit_table

    rng = check_random_state(seed)
    if reduced is None:
        assert points is not None
        x, w, keys = points, table.counts.astype(np.float64), table.keys
    else:
        x, w, keys = reduced.points, reduced.weights, reduced.keys
    runs = None if n_init == "auto" else n_init
    n_free = n_colors - len(keep)
    clustered = 0 < n_free < x.shape[0]
    baseline = None
    if clustered:
        baseline = baseline_centers(x, w, keys, n_free, algorithm, runs, max_iter, rng)
    fixed = cs.rgb8_to_space(keep, space)
    fit = fit_table(
        x, w, keys, n_colors, fixed,
        algorithm=algorithm, n_init=runs, max_iter=max_iter, rng=rng, baseline=baseline,
        chunked=reduced is not None,
    )  # fmt: skip
    del x, keys
    best: tuple[float, PaletteFit] | None = None
    for learned in (fit.centers[len(keep) :], baseline):
        if learned is None:
            continue
        rounded = _unique_rows(np.concatenate([keep, cs.space_to_rgb8(learned, space)]))
        palette = Palette(rounded, np.zeros(len(rounded), np.int64))
        candidate = apply_palette(table, palette, space, points=points)
        if points is None:
            sse = reduce.table_sse(
                table.keys, table.counts, candidate.palette.colors, candidate.labels, space
            )
        else:
            offset = points - cs.rgb8_to_space(candidate.palette.colors, space)[candidate.labels]
            sse = float(w @ np.einsum("ij,ij->i", offset, offset))
        if best is None or sse < best[0]:
            best = (sse, candidate)
    assert best is not None
    chosen = best[1]
    made = resolve_n_init(n_init, n_colors, swaps=False) if clustered else 0
    return PaletteFit(_restore_kept(chosen.palette, keep), chosen.labels, fit.n_iter, made)


def _union(keep: NDArray[np.uint8], palette: Palette) -> Palette:
    """A given palette with the kept colors added (first, where missing)."""
    colors = _unique_rows(np.concatenate([keep, palette.colors]))
    return Palette(colors, np.zeros(len(colors), np.int64))


def _restore_kept(palette: Palette, keep: NDArray[np.uint8]) -> Palette:
    """``palette`` with the kept colors no pixel uses appended, count 0.

    Appending leaves every existing index valid.
    """
    missing = keep[~np.isin(pack_rgb(keep), pack_rgb(palette.colors))]
    if missing.size == 0:
        return palette
    colors = np.concatenate([palette.colors, missing])
    counts = np.concatenate([palette.counts, np.zeros(len(missing), np.int64)])
    return Palette(colors, counts)


def _with_kept(best: _Attempt, keep: NDArray[np.uint8]) -> _Attempt:
    """The attempt with unused kept colors back in its palette (dithering and
    given palettes drop colors no pixel uses)."""
    palette = _restore_kept(best.palette, keep)
    if palette.size == best.palette.size:
        return best
    fit = best.fit
    if best.indices is None:
        # The plain mapping's labels index fit.palette, which is best.palette.
        fit = PaletteFit(palette, fit.labels, fit.n_iter)
    return _Attempt(fit, palette, best.metrics, best.indices)


def _unused_kept(palette: Palette, keep: NDArray[np.uint8]) -> list[str]:
    unused = np.isin(pack_rgb(palette.colors), pack_rgb(keep)) & (palette.counts == 0)
    return [f"kept color {h} is used by no pixel" for h in np.asarray(palette.hex)[unused]]

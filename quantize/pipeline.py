"""One image through load -> distinct-color table -> cluster -> recolor.

The pipeline never clusters raw pixels: it counts the distinct visible colors,
fits the palette to that weighted table, and recolors every pixel through the
table (:func:`quantize.histogram.recolor`).  Arrays and `Palette` go in and
out: `fit_palette` and `apply_palette` (from `quantize.fitting`) work on a
color table, and `ImageQuantizer` is the one-image algorithm (one method per
mode: fixed k, ``-k auto``, a given palette; each with kept colors).
`quantize_image` decodes the input, runs it and has `quantize.render`
assemble the result's images; `learn_shared_palette` fits a batch's shared
palette and describes it.  Nothing here prints or writes a file: naming,
planning and writing outputs is `quantize.outputs`.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PIL import Image

from quantize import colors as cs
from quantize import reduce
from quantize._threads import Deferred
from quantize.autok import DEFAULT_PSNR, AutoK, Target, smallest_k
from quantize.dither import Dither, dither_indices
from quantize.encode import ANIMATION_FORMATS
from quantize.errors import InputError
from quantize.fitting import (
    PaletteFit,
    apply_palette,
    fit_palette,
    restore_kept,
    trim_and_sort,
    union_kept,
    unused_kept,
)
from quantize.histogram import (
    ColorTable,
    PixelSource,
    count_pixels,
    pack_rgb,
    recolor,
    unpack_keys,
)
from quantize.imageio import Frame, LoadedImage, load_image
from quantize.limits import DEFAULT_MAX_FRAMES, MAX_COLORS, MIN_COLORS
from quantize.metrics import MetricsAccumulator, QualityMetrics, palette_metrics, table_lab
from quantize.options import QuantizeOptions
from quantize.palette import Palette
from quantize.reduce import (
    ReducedTable,
    add_pixel_pairs,
    is_huge,
    reduce_table,
    table_metrics,
)
from quantize.render import for_format, render_frames
from quantize.report import ImageFacts, WrittenFacts, palette_report
from quantize.vocabulary import Algorithm, SortKey, Space


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
        Error between the visible input pixels and their new colors.  It may
        still be being computed on another thread when the result is
        returned (`quality`); reading it waits for it.
    quality : Deferred of QualityMetrics
        Where ``metrics`` comes from.
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
    quality: Deferred[QualityMetrics]
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

    @property
    def metrics(self) -> QualityMetrics:
        """The quality metrics (see the class docstring)."""
        return self.quality.result()

    @metrics.setter
    def metrics(self, value: QualityMetrics) -> None:
        self.quality = Deferred.ready(value)

    def image_for_format(self, fmt: str) -> Image.Image:
        """The image to save in ``fmt``: indexed where the format can hold a palette."""
        return for_format(self.image, fmt)

    def frames_for_format(self, fmt: str) -> list[Image.Image]:
        """Every frame as :meth:`image_for_format` gives it, or only the first
        when ``fmt`` cannot hold an animation."""
        frames = self.frames or [self.image]
        keep = frames if fmt in ANIMATION_FORMATS else frames[:1]
        return [for_format(frame, fmt) for frame in keep]

    def report(
        self, source: str | None, image_path: str | None, written: WrittenFacts | None = None
    ) -> dict[str, Any]:
        """The palette report as a JSON-ready dict (schema in the README).

        The keys about the files written (`WrittenFacts`) are there only when
        ``written`` is given.
        """
        facts = ImageFacts(
            source=source,
            image=image_path,
            width=self.width,
            height=self.height,
            transparent_pixels=self.transparent_pixels,
            input_profile=self.profile,
            frames=len(self.frames) or 1,
            k_auto=None if self.k_auto is None else self.k_auto.to_dict(),
            warnings=self.warnings,
            written=written,
        )
        return palette_report(
            self.settings,
            palette=self.palette,
            metrics=self.metrics,
            n_iter=self.n_iter,
            pixels=int(self.palette.counts.sum()),
            distinct_colors=self.distinct_colors,
            image=facts,
        )


def quantize_image(
    image: str | os.PathLike[str] | Image.Image | LoadedImage,
    colors: int | Literal["auto"] = 16,
    *,
    algorithm: Algorithm = "kmeans",
    n_init: int | Literal["auto"] = "auto",
    max_iter: int = 300,
    seed: int = 0,
    space: Space = "rgb",
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
    options = QuantizeOptions(
        colors=colors,
        algorithm=algorithm,
        n_init=n_init,
        max_iter=max_iter,
        seed=seed,
        space=space,
        sort=sort,
        dither=dither,
        dither_strength=dither_strength,
        target=target,
        palette=palette,
        keep=keep,
    )
    options.validate()
    start = time.perf_counter()
    loaded = image if isinstance(image, LoadedImage) else load_image(image)
    one = ImageQuantizer(loaded, options)
    if one.table.n_colors == 0:
        path = image if isinstance(image, str | os.PathLike) else None
        raise InputError("every pixel is fully transparent: nothing to quantize", path)
    auto: AutoK | None = None
    if palette is not None:
        best = one.given_palette(palette)
    elif colors == "auto":
        best, auto = one.auto_k(target)
    else:
        best = one.fixed_k(colors)
    ordered, indices = one.in_order(best, sort)
    out = render_frames(loaded.frames, indices, ordered)
    return QuantizeResult(
        image=out[0],
        palette=ordered,
        quality=best.quality,
        settings=options.report_fields(best.fit.n_init),
        width=loaded.width,
        height=loaded.height,
        n_iter=best.fit.n_iter,
        distinct_colors=one.table.n_colors,
        transparent_pixels=one.transparent,
        seconds=time.perf_counter() - start,
        warnings=[*loaded.notes, *one.warnings],
        frames=out,
        durations=[frame.duration for frame in loaded.frames],
        loop=loaded.loop,
        profile=loaded.profile,
        k_auto=auto,
        kept=one.keep,
    )


class ImageQuantizer:
    """The one-image algorithm, one method per mode.

    Made once per decoded image: it counts the distinct visible colors of
    every frame (the weighted table everything is fitted to).  Then
    `fixed_k`, `auto_k` or `given_palette` picks the palette and maps the
    pixels to it (plainly, or dithered), each honouring the kept colors;
    `in_order` gives the palette in the order asked and the palette index
    of every pixel, which `quantize.render.render_frames` turns into images.

    The options are assumed valid (`quantize_image` validates them).

    Parameters
    ----------
    loaded : LoadedImage
    options : QuantizeOptions, optional
        The clustering and mapping settings (its ``colors``, ``sort``,
        ``target`` and ``palette`` are what the mode methods take).

    Attributes
    ----------
    keep : ndarray of uint8, shape (n, 3), or None
        The kept colors, checked (`QuantizeOptions.kept_colors`).
    table : ColorTable
        Distinct visible colors (m of them) with their pixel counts.
    transparent : int
        Fully transparent pixels over all frames.
    warnings : list of str
        What the mode run found worth saying (fewer colors than asked,
        unused kept colors).
    """

    def __init__(self, loaded: LoadedImage, options: QuantizeOptions | None = None) -> None:
        o = QuantizeOptions() if options is None else options
        self.frames = loaded.frames
        self.algorithm, self.n_init, self.max_iter, self.seed = (
            o.algorithm,
            o.n_init,
            o.max_iter,
            o.seed,
        )
        self.space, self.dither, self.dither_strength = o.space, o.dither, o.dither_strength
        self.keep = o.kept_colors()
        self.table = count_pixels(_sources(self.frames))
        self.transparent = _transparent_count(self.frames)
        self.warnings: list[str] = []
        # An index must stay free for the transparent pixels.
        self._k_max = MAX_COLORS - 1 if self.transparent else MAX_COLORS
        self._huge = is_huge(self.table.n_colors)
        self._reduced: ReducedTable | None = None
        # The table's side of ΔE does not depend on the palette: converted on
        # another thread while the palette is fitted (in Lab, the clustering
        # converts the table itself; dithered output is judged pixel by pixel).
        self._table_lab: Deferred[NDArray[np.float32]] | None = None
        if not self._huge and self.space != "lab" and self.dither == "none":
            colors = self.table.colors
            self._table_lab = Deferred(lambda: table_lab(colors))
        # Packed keys of every frame, for dithered attempts only: made by the
        # first one and reused by the others (-k auto tries several).
        self._keys: list[NDArray[np.uint32]] = []

    @functools.cached_property
    def _points(self) -> NDArray[np.float64] | None:
        """The table's colors in ``space``, converted once for every palette
        size tried; None for a huge table (clustered reduced instead)."""
        return None if self._huge else cs.rgb8_to_space(self.table.colors, self.space)

    def fixed_k(self, colors: int) -> _Attempt:
        """A palette of at most ``colors`` colors (fewer when the image has fewer)."""
        k = min(colors, self._k_max)
        if self.keep is not None and len(self.keep) > k:
            raise ValueError(f"{len(self.keep)} kept colors do not fit in {k} palette colors")
        if self.table.n_colors < k:
            self.warnings.append(f"requested {colors} colors, image has {self.table.n_colors}")
        return self._with_kept(self._attempt(k, defer=True))

    def auto_k(self, target: Target | None = None) -> tuple[_Attempt, AutoK]:
        """The smallest palette that meets ``target`` (PSNR >= 32 dB when None)."""
        if self._huge:
            # Kept for every size tried; for one k, fit_palette makes and drops it.
            self._reduced = reduce_table(self.table.keys, self.table.counts, self.space)
        goal = target or Target("psnr", DEFAULT_PSNR)
        seen: dict[int, QualityMetrics] = {}

        def judged(k: int) -> _Attempt:
            seen[k] = (result := self._attempt(k)).metrics
            return result

        # More colors than the image has cannot improve on its exact copy.
        n_kept = 0 if self.keep is None else len(self.keep)
        lo = max(MIN_COLORS, n_kept)
        hi = max(lo, min(self._k_max, self.table.n_colors + n_kept))
        search = smallest_k(judged, lambda a: goal.met_by(a.metrics), lo, hi)
        tried = [(k, met, seen[k]) for k, met in search.tried]
        auto = AutoK(goal, search.chosen, search.met, tried)
        return self._with_kept(search.result), auto

    def given_palette(self, palette: Palette) -> _Attempt:
        """Every color mapped to its nearest color of ``palette`` (plus the kept ones)."""
        given = palette if self.keep is None else union_kept(self.keep, palette)
        fit = _fit_given(self.table, given, self.space, self.transparent > 0)
        return self._with_kept(self._judge(fit, defer=True))

    def in_order(self, best: _Attempt, sort: SortKey) -> tuple[Palette, list[NDArray[np.uint8]]]:
        """The palette of ``best`` in ``sort`` order and the palette index of every pixel."""
        return _in_order(best, sort, self.table, self.frames)

    def _attempt(self, k: int, defer: bool = False) -> _Attempt:
        fit = fit_palette(
            self.table,
            k,
            algorithm=self.algorithm,
            n_init=self.n_init,
            max_iter=self.max_iter,
            seed=self.seed,
            space=self.space,
            points=self._points,
            keep=self.keep,
            reduced=self._reduced,
        )
        return self._judge(fit, defer)

    def _judge(self, fit: PaletteFit, defer: bool = False) -> _Attempt:
        """The fit mapped to the pixels as the output will be, with its metrics.

        With ``defer``, the metrics of a plain mapping are computed on another
        thread while the pixels are recolored and written (not for a huge
        table, whose chunked metrics would add to its memory peak).
        """
        frames, dither, strength, space = self.frames, self.dither, self.dither_strength, self.space
        if dither == "none":
            # Clustering in Lab has converted the table already: ΔE reuses it.
            points = self._points if space == "lab" else None
            table, converted = self.table, self._table_lab

            def judge() -> QualityMetrics:
                lab = points if converted is None else converted.result()
                return _metrics(table, fit, lab)

            quality = Deferred(judge) if defer and not self._huge else Deferred.ready(judge())
            return _Attempt(fit, fit.palette, quality, None)
        if self._huge or self.table.n_pixels > reduce.PAIRS_IN_BANDS_MIN_PIXELS:
            return _dithered_bounded(frames, fit, dither, strength, space)
        if not self._keys:
            self._keys.extend(pack_rgb(frame.rgb) for frame in frames)
        return _dithered(frames, self._keys, fit, dither, strength, space)

    def _with_kept(self, best: _Attempt) -> _Attempt:
        """``best`` with its unused kept colors back in the palette, with a warning each."""
        if self.keep is None:
            return best
        best = _with_kept(best, self.keep)
        self.warnings.extend(unused_kept(best.palette, self.keep))
        return best


@dataclass(frozen=True)
class _Attempt:
    """One palette size tried: the fit, and the palette and metrics of its output.

    ``indices`` holds the dithered palette indices of every frame (into
    ``palette``); None when the output is the plain nearest-color mapping.
    """

    fit: PaletteFit
    palette: Palette
    quality: Deferred[QualityMetrics]
    indices: list[NDArray[np.uint8]] | None

    @property
    def metrics(self) -> QualityMetrics:
        """The metrics of the output (waits for them when deferred)."""
        return self.quality.result()


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


def _sources(frames: list[Frame]) -> list[PixelSource]:
    """Each frame's pixels and which of them are visible (alpha > 0)."""
    return [(f.rgb, None if f.alpha is None else f.alpha > 0) for f in frames]


def _transparent_count(frames: list[Frame]) -> int:
    return sum(int(np.count_nonzero(f.alpha == 0)) for f in frames if f.alpha is not None)


def learn_shared_palette(
    table: ColorTable, opts: RunOptions, transparent: bool
) -> tuple[Palette, dict[str, Any]]:
    """Fit one palette to the merged color table of all images.

    Returns
    -------
    palette : Palette
        In ``opts.sort`` order, with pixel counts over all images.
    report : dict
        The content of ``palette.json`` (the palette report schema without
        the per-image fields, plus ``images``).
    """
    if opts.colors == "auto":
        raise ValueError("a shared palette needs a fixed number of colors, not 'auto'")
    k = min(opts.colors, MAX_COLORS - 1) if transparent else opts.colors
    fit = fit_palette(
        table,
        k,
        algorithm=opts.algorithm,
        n_init=opts.n_init,
        max_iter=opts.max_iter,
        seed=opts.seed,
        space=opts.space,
        keep=opts.kept_colors(),
    )
    ordered = fit.palette.sorted(opts.sort)
    report = palette_report(
        opts.report_fields(fit.n_init),
        palette=ordered,
        metrics=table_metrics(table, fit.palette.colors, fit.labels),
        n_iter=fit.n_iter,
        pixels=table.n_pixels,
        distinct_colors=table.n_colors,
    )
    return ordered, report


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
    palette, remap = trim_and_sort(fit.palette.colors, counts.astype(np.int64))
    metrics = palette_metrics(source, pair_counts, palette.colors, remap[out_index])
    # Transparent pixels may map to a dropped color (-1); render_frames overwrites them.
    remap8 = np.maximum(remap, 0).astype(np.uint8)
    return _Attempt(fit, palette, Deferred.ready(metrics), [remap8[idx] for idx in indices])


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
    palette, remap = trim_and_sort(fit.palette.colors, acc.counts)
    remap8 = np.maximum(remap, 0).astype(np.uint8)
    return _Attempt(fit, palette, Deferred.ready(acc.result()), [remap8[idx] for idx in indices])


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
    table: ColorTable, fit: PaletteFit, table_lab: NDArray[np.floating] | None = None
) -> QualityMetrics:
    return table_metrics(table, fit.palette.colors, fit.labels, original_lab=table_lab)


@dataclass(frozen=True)
class RunOptions(QuantizeOptions):
    """Everything that decides how one file is quantized and written.

    The quantization settings are those of `QuantizeOptions`; the fields
    added here say what is written, where, and how the input is read.
    """

    fmt: str = "png"
    report: bool = True
    force: bool = False
    #: Palette files besides the JSON report: keys of `quantize.palette_formats.SUFFIXES`.
    palette_formats: tuple[str, ...] = ()
    swatch: bool = False
    plot: bool = False
    #: False for palette-only runs (``--no-image``).
    image: bool = True
    max_pixels: int | None = None
    max_frames: int = DEFAULT_MAX_FRAMES
    background: tuple[int, int, int] = (255, 255, 255)
    #: Where ``palette`` came from, for the report's ``palette_file``.
    palette_file: str | None = None
    #: Folder of the ``--html`` page: each image also gets thumbnails under it.
    page_dir: Path | None = None


# --------------------------------------------------------------------------
# Kept colors (``keep``): fixed centers of the clustering.


def _with_kept(best: _Attempt, keep: NDArray[np.uint8]) -> _Attempt:
    """The attempt with unused kept colors back in its palette (dithering and
    given palettes drop colors no pixel uses)."""
    palette = restore_kept(best.palette, keep)
    if palette.size == best.palette.size:
        return best
    fit = best.fit
    if best.indices is None:
        # The plain mapping's labels index fit.palette, which is best.palette.
        fit = PaletteFit(palette, fit.labels, fit.n_iter)
    return _Attempt(fit, palette, best.quality, best.indices)

"""One image through load -> distinct-color table -> cluster -> recolor.

The pipeline never clusters raw pixels: it counts the distinct visible colors,
fits the palette to that weighted table, and recolors every pixel through one
lookup-table gather.  Nothing here prints or writes files; the CLI does that.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from quantize import colors as cs
from quantize.autok import DEFAULT_PSNR, AutoK, Target, smallest_k
from quantize.cluster import cluster_table
from quantize.dither import DITHER_METHODS, Dither, dither_indices
from quantize.histogram import ColorTable, color_table, lookup, pack_rgb, unpack_keys
from quantize.imageio import (
    FORMATS,
    PALETTE_FORMATS,
    Frame,
    LoadedImage,
    check_outputs,
    load_image,
    output_format,
    save_image,
    write_text,
)
from quantize.kmeans import nearest_center
from quantize.metrics import QualityMetrics, quality_metrics
from quantize.palette import Palette, to_json_colors

Algorithm = Literal["kmeans", "minibatch"]
MIN_COLORS = 2
MAX_COLORS = 256


@dataclass(frozen=True)
class PaletteFit:
    """A palette fitted to a color table, and where each table row went.

    Attributes
    ----------
    palette : Palette
        Exact sRGB colors sorted by pixel count, with counts.
    labels : ndarray of intp, shape (m,)
        Palette index of each table row.
    n_iter : int
        Iterations the clustering ran (0 when the palette was given).
    """

    palette: Palette
    labels: NDArray[np.intp]
    n_iter: int


@dataclass
class QuantizeResult:
    """The outcome of :func:`quantize_image`.

    Attributes
    ----------
    image : PIL.Image.Image
        The recolored image: mode "P" whose palette is exactly ``palette``
        (plus one fully transparent entry when the input had transparent
        pixels), or "RGBA" when the input had partial transparency.
    palette : Palette
        The colors found, sorted by pixel count (descending).
    metrics : QualityMetrics
        Error between the visible input pixels and their new colors.
    settings : dict
        The options that produced the result, for the report.
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
    k_auto: AutoK | None = None

    def image_for_format(self, fmt: str) -> Image.Image:
        """The image to save in ``fmt``: indexed where the format can hold a palette."""
        if fmt in PALETTE_FORMATS or self.image.mode != "P":
            return self.image
        has_alpha = "transparency" in self.image.info
        return self.image.convert("RGBA" if has_alpha else "RGB")

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
            **self.settings,
            "n_iter": self.n_iter,
            "k_auto": None if self.k_auto is None else self.k_auto.to_dict(),
            "metrics": self.metrics.to_dict(),
            "colors": to_json_colors(self.palette),
        }


def quantize_image(
    image: str | os.PathLike[str] | Image.Image | LoadedImage,
    colors: int | Literal["auto"] = 16,
    *,
    algorithm: Algorithm = "kmeans",
    n_init: int | Literal["auto"] = "auto",
    max_iter: int = 300,
    seed: int = 0,
    space: str = "rgb",
    dither: Dither = "none",
    dither_strength: float = 1.0,
    target: Target | None = None,
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
        Number of k-means restarts; the best by inertia is kept.
    max_iter : int, default 300
    seed : int, default 0
        The same seed and input always give the same result.
    space : {"rgb", "lab", "oklab"}, default "rgb"
        Color space the clustering happens in.
    dither : {"none", "floyd-steinberg", "ordered"}, default "none"
        How pixels are mapped to the palette (see :mod:`quantize.dither`);
        the metrics and palette counts describe the dithered pixels.
    dither_strength : float, default 1.0
        0..1 for "ordered"; "floyd-steinberg" allows only 1.
    target : Target, optional
        Quality goal of ``colors="auto"``; PSNR >= 32 dB when not given.
        Only allowed with "auto".

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
    _validate(colors, algorithm, n_init, max_iter, space)
    _validate_perceptual(colors, dither, dither_strength, target)
    start = time.perf_counter()
    loaded = image if isinstance(image, LoadedImage) else load_image(image)
    keys = [pack_rgb(frame.rgb) for frame in loaded.frames]
    table = color_table(_visible(keys, loaded.frames))
    if table.n_colors == 0:
        raise ValueError("the image has no visible pixels")
    warnings = list(loaded.notes)
    transparent = _transparent_count(loaded.frames)
    k_max = MAX_COLORS - 1 if transparent else MAX_COLORS
    fit_options: dict[str, Any] = {
        "algorithm": algorithm,
        "n_init": n_init,
        "max_iter": max_iter,
        "seed": seed,
        "space": space,
        # Converted once: every palette size tried reuses it.
        "points": cs.rgb8_to_space(table.colors, space),
    }

    def attempt(k: int) -> _Attempt:
        fit = fit_palette(table, k, **fit_options)
        if dither == "none":
            return _Attempt(fit, fit.palette, _metrics(table, fit), None)
        return _dithered(loaded.frames[0], keys[0], fit, dither, dither_strength, space)

    auto: AutoK | None = None
    if colors == "auto":
        goal = target or Target("psnr", DEFAULT_PSNR)
        seen: dict[int, QualityMetrics] = {}

        def judged(k: int) -> _Attempt:
            seen[k] = (result := attempt(k)).metrics
            return result

        # More colors than the image has cannot improve on its exact copy.
        hi = max(MIN_COLORS, min(k_max, table.n_colors))
        search = smallest_k(judged, lambda a: goal.met_by(a.metrics), MIN_COLORS, hi)
        best = search.result
        tried = [(k, met, seen[k]) for k, met in search.tried]
        auto = AutoK(goal, search.chosen, search.met, tried)
    else:
        k = min(colors, k_max)
        if table.n_colors < k:
            warnings.append(f"requested {colors} colors, image has {table.n_colors}")
        best = attempt(k)
    indices = best.indices
    if indices is None:
        indices = lookup(table.keys, best.fit.labels)[keys[0]]
    out = render_indices(loaded.frames[0], indices, best.palette)
    settings = {
        "colors_requested": colors,
        "algorithm": algorithm,
        "space": space,
        "dither": dither,
        "dither_strength": None if dither == "none" else dither_strength,
        "seed": seed,
        "n_init": n_init,
        "max_iter": max_iter,
    }
    return QuantizeResult(
        image=out,
        palette=best.palette,
        metrics=best.metrics,
        settings=settings,
        width=loaded.width,
        height=loaded.height,
        n_iter=best.fit.n_iter,
        distinct_colors=table.n_colors,
        transparent_pixels=transparent,
        seconds=time.perf_counter() - start,
        warnings=warnings,
        k_auto=auto,
    )


@dataclass(frozen=True)
class _Attempt:
    """One palette size tried: the fit, and the palette and metrics of its output.

    ``indices`` holds the dithered palette indices of the first frame (into
    ``palette``); None when the output is the plain nearest-color mapping.
    """

    fit: PaletteFit
    palette: Palette
    metrics: QualityMetrics
    indices: NDArray[np.uint8] | None


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


def _validate(
    colors: int | str, algorithm: str, n_init: int | str, max_iter: int, space: str
) -> None:
    if colors != "auto" and not (isinstance(colors, int) and MIN_COLORS <= colors <= MAX_COLORS):
        raise ValueError(f"colors must be between {MIN_COLORS} and {MAX_COLORS}, got {colors}")
    if algorithm not in ("kmeans", "minibatch"):
        raise ValueError(f"algorithm must be 'kmeans' or 'minibatch', got {algorithm!r}")
    if n_init != "auto" and (not isinstance(n_init, int) or n_init < 1):
        raise ValueError(f"n_init must be a positive integer or 'auto', got {n_init!r}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be positive, got {max_iter}")
    if space not in cs.SPACES:
        raise ValueError(f"space must be one of {', '.join(cs.SPACES)}, got {space!r}")


def _visible(keys: list[NDArray[np.uint32]], frames: list[Frame]) -> NDArray[np.uint32]:
    parts = [
        k.ravel() if f.alpha is None else k[f.alpha > 0] for k, f in zip(keys, frames, strict=True)
    ]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


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

    Returns
    -------
    PaletteFit
    """
    if points is None:
        points = cs.rgb8_to_space(table.colors, space)
    fit = cluster_table(
        points,
        table.counts.astype(np.float64),
        table.keys,
        n_colors,
        algorithm=algorithm,
        n_init=n_init,
        max_iter=max_iter,
        random_state=seed,
    )
    rounded = _unique_rows(cs.space_to_rgb8(fit.centers, space))
    palette = Palette(rounded, np.zeros(len(rounded), np.int64))
    palette_fit = apply_palette(table, palette, space, points=points)
    return PaletteFit(palette_fit.palette, palette_fit.labels, fit.n_iter)


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
    if points is None:
        points = cs.rgb8_to_space(table.colors, space)
    targets = cs.rgb8_to_space(palette.colors, space)
    labels = nearest_center(points, targets)
    counts = np.bincount(labels, weights=table.counts, minlength=palette.size).astype(np.int64)
    ordered, remap = _trim_and_sort(palette.colors, counts)
    return PaletteFit(ordered, remap[labels], 0)


def _trim_and_sort(
    colors: NDArray[np.uint8], counts: NDArray[np.int64]
) -> tuple[Palette, NDArray[np.intp]]:
    """Drop colors with no pixel, sort by count, and map old indices to new ones (-1: dropped)."""
    used = np.flatnonzero(counts)
    ordered = Palette(colors[used], counts[used]).sorted("count")
    # Map old palette indices to positions in the sorted, trimmed palette.
    remap = np.full(len(colors), -1, dtype=np.intp)
    order_keys = pack_rgb(ordered.colors)
    position = {int(key): i for i, key in enumerate(order_keys)}
    for old in used:
        remap[old] = position[int(pack_rgb(colors[old]))]
    return ordered, remap


def _unique_rows(colors: NDArray[np.uint8]) -> NDArray[np.uint8]:
    keys = pack_rgb(colors)
    _, first = np.unique(keys, return_index=True)
    return colors[np.sort(first)]


def render(
    frame: Frame, keys: NDArray[np.uint32], lut: NDArray[np.uint8], palette: Palette
) -> Image.Image:
    """Recolor one frame through a key -> palette-index lookup table.

    Fully transparent pixels get an extra palette entry marked transparent;
    partially transparent images come back as RGBA with their alpha kept.
    """
    return render_indices(frame, lut[keys], palette)


def render_indices(frame: Frame, indices: NDArray[np.uint8], palette: Palette) -> Image.Image:
    """Build the output image of one frame from the palette index of each pixel.

    Parameters
    ----------
    frame : Frame
        The input frame, for its alpha.
    indices : ndarray of uint8, shape (h, w)
        Palette index of every pixel; entries of transparent pixels are
        overwritten with the transparent index.
    palette : Palette
    """
    if frame.alpha is not None and np.any((frame.alpha > 0) & (frame.alpha < 255)):
        rgba = np.empty((*indices.shape, 4), dtype=np.uint8)
        rgba[..., :3] = palette.colors[indices]
        rgba[..., 3] = frame.alpha
        rgba[frame.alpha == 0, :3] = 0
        return Image.fromarray(rgba, "RGBA")
    flat = palette.colors.ravel().tolist()
    if frame.alpha is not None:
        clear = palette.size
        indices[frame.alpha == 0] = clear
        flat += [0, 0, 0]
    img = Image.frombytes("P", (indices.shape[1], indices.shape[0]), indices.tobytes())
    img.putpalette(flat, "RGB")
    if frame.alpha is not None:
        img.info["transparency"] = palette.size
    return img


def _dithered(
    frame: Frame,
    keys: NDArray[np.uint32],
    fit: PaletteFit,
    method: Dither,
    strength: float,
    space: str,
) -> _Attempt:
    """Dither one frame to ``fit.palette``; palette counts and metrics of the actual output.

    The metrics run on the weighted table of distinct (input color, output
    index) pairs of the visible pixels, which equals a pixel-by-pixel
    comparison at a fraction of the cost.
    """
    visible = None if frame.alpha is None else frame.alpha > 0
    rgb = frame.rgb
    if visible is not None:
        # A transparent pixel holding a palette color adds no error of its own
        # to diffuse into its visible neighbors.
        rgb = rgb.copy()
        rgb[~visible] = fit.palette.colors[0]
    indices = dither_indices(rgb, fit.palette.colors, method, strength=strength, space=space)
    vis_keys = keys if visible is None else keys[visible]
    vis_idx = indices if visible is None else indices[visible]
    pairs = vis_keys.ravel().astype(np.uint64) | (vis_idx.ravel().astype(np.uint64) << 24)
    uniq, pair_counts = np.unique(pairs, return_counts=True)
    source = unpack_keys((uniq & 0xFFFFFF).astype(np.uint32))
    out_index = (uniq >> 24).astype(np.intp)
    counts = np.bincount(out_index, weights=pair_counts, minlength=fit.palette.size)
    palette, remap = _trim_and_sort(fit.palette.colors, counts.astype(np.int64))
    mapped = palette.colors[remap[out_index]]
    metrics = quality_metrics(source, mapped, pair_counts, palette.size)
    # Transparent pixels may map to a dropped color (-1); render overwrites them.
    new_indices = np.maximum(remap[indices], 0).astype(np.uint8)
    return _Attempt(fit, palette, metrics, new_indices)


def _metrics(table: ColorTable, fit: PaletteFit) -> QualityMetrics:
    mapped = fit.palette.colors[fit.labels]
    return quality_metrics(table.colors, mapped, table.counts, fit.palette.size)


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


@dataclass(frozen=True)
class OutputPlan:
    """Where the outputs of one input go, and in which image format."""

    image: Path
    report: Path | None
    fmt: str

    @property
    def paths(self) -> list[Path]:
        """Every file this plan writes."""
        return [p for p in (self.image, self.report) if p is not None]


def default_stem(source: Path, colors: int | str) -> str:
    """The output file stem for an input: ``photo.jpg`` -> ``photo-k16`` (``photo-kauto``)."""
    return f"{source.stem}-k{colors}"


def is_folder_spec(output: str) -> bool:
    """True when ``output`` names a folder: an existing one, or spelled with a trailing slash."""
    return output.endswith(("/", os.sep)) or Path(output).is_dir()


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
    return OutputPlan(image, report, fmt)


def process_file(source: Path, plan: OutputPlan, opts: RunOptions) -> QuantizeResult:
    """Quantize one file and write its outputs atomically.

    Outputs are checked before any work is done: an input is never
    overwritten, and an existing output only with ``opts.force``.

    Raises
    ------
    QuantizeError
        The input cannot be read or an output cannot be written.
    """
    check_outputs(plan.paths, [source], force=opts.force)
    result = quantize_image(
        source,
        opts.colors,
        algorithm=opts.algorithm,
        n_init=opts.n_init,
        max_iter=opts.max_iter,
        seed=opts.seed,
        space=opts.space,
        dither=opts.dither,
        dither_strength=opts.dither_strength,
        target=opts.target,
    )
    plan.image.parent.mkdir(parents=True, exist_ok=True)
    save_image(result.image_for_format(plan.fmt), plan.image, plan.fmt)
    if plan.report is not None:
        report = result.report(str(source), str(plan.image))
        write_text(plan.report, json.dumps(report, indent=2) + "\n")
    return result

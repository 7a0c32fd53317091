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
from quantize.cluster import cluster_table
from quantize.histogram import ColorTable, color_table, lookup, pack_rgb
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
            "metrics": self.metrics.to_dict(),
            "colors": to_json_colors(self.palette),
        }


def quantize_image(
    image: str | os.PathLike[str] | Image.Image | LoadedImage,
    colors: int = 16,
    *,
    algorithm: Algorithm = "kmeans",
    n_init: int | Literal["auto"] = "auto",
    max_iter: int = 300,
    seed: int = 0,
    space: str = "rgb",
    palette: Palette | None = None,
) -> QuantizeResult:
    """Reduce an image to at most ``colors`` colors with k-means.

    Parameters
    ----------
    image : path, PIL.Image.Image or LoadedImage
        The input; a path is decoded with :func:`quantize.imageio.load_image`.
    colors : int, default 16
        Palette size k, 2 to 256.  An image with fewer distinct colors gets
        only the colors it has, with a warning.
    algorithm : {"kmeans", "minibatch"}, default "kmeans"
    n_init : int or "auto", default "auto"
        Number of k-means restarts; the best by inertia is kept.
    max_iter : int, default 300
    seed : int, default 0
        The same seed and input always give the same result.
    space : {"rgb", "lab", "oklab"}, default "rgb"
        Color space the clustering happens in.
    palette : Palette, optional
        Recolor with these colors instead of clustering: every color goes to
        its nearest palette color in ``space``; ``colors`` is then ignored and
        palette colors no pixel uses are left out of the result.

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
    start = time.perf_counter()
    loaded = image if isinstance(image, LoadedImage) else load_image(image)
    keys = [pack_rgb(frame.rgb) for frame in loaded.frames]
    table = color_table(_visible(keys, loaded.frames))
    if table.n_colors == 0:
        raise ValueError("the image has no visible pixels")
    warnings = list(loaded.notes)
    transparent = _transparent_count(loaded.frames)
    k = min(colors, MAX_COLORS - 1) if transparent else colors
    if palette is not None:
        fit = _fit_given(table, palette, space, transparent > 0)
    else:
        if table.n_colors < k:
            warnings.append(f"requested {colors} colors, image has {table.n_colors}")
        fit = fit_palette(
            table, k, algorithm=algorithm, n_init=n_init, max_iter=max_iter, seed=seed, space=space
        )
    out = render(loaded.frames[0], keys[0], lookup(table.keys, fit.labels), fit.palette)
    metrics = _metrics(table, fit)
    settings = {
        "colors_requested": colors,
        "algorithm": algorithm,
        "space": space,
        "seed": seed,
        "n_init": n_init,
        "max_iter": max_iter,
    }
    return QuantizeResult(
        image=out,
        palette=fit.palette,
        metrics=metrics,
        settings=settings,
        width=loaded.width,
        height=loaded.height,
        n_iter=fit.n_iter,
        distinct_colors=table.n_colors,
        transparent_pixels=transparent,
        seconds=time.perf_counter() - start,
        warnings=warnings,
    )


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
    keys = [pack_rgb(frame.rgb) for frame in loaded.frames]
    return color_table(_visible(keys, loaded.frames)), _transparent_count(loaded.frames)


def _validate(colors: int, algorithm: str, n_init: int | str, max_iter: int, space: str) -> None:
    if not MIN_COLORS <= colors <= MAX_COLORS:
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

    Returns
    -------
    PaletteFit
    """
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
    palette_fit = apply_palette(table, Palette(rounded, np.zeros(len(rounded), np.int64)), space)
    return PaletteFit(palette_fit.palette, palette_fit.labels, fit.n_iter)


def apply_palette(table: ColorTable, palette: Palette, space: str = "rgb") -> PaletteFit:
    """Assign every table color to its nearest palette color in ``space``.

    Palette entries that no pixel uses are dropped; the result is sorted by
    pixel count with deterministic ties.

    Returns
    -------
    PaletteFit
        With ``n_iter`` 0.
    """
    points = cs.rgb8_to_space(table.colors, space)
    targets = cs.rgb8_to_space(palette.colors, space)
    labels = nearest_center(points, targets)
    counts = np.bincount(labels, weights=table.counts, minlength=palette.size).astype(np.int64)
    used = np.flatnonzero(counts)
    ordered = Palette(palette.colors[used], counts[used]).sorted("count")
    # Map old palette indices to positions in the sorted, trimmed palette.
    remap = np.full(palette.size, -1, dtype=np.intp)
    order_keys = pack_rgb(ordered.colors)
    position = {int(key): i for i, key in enumerate(order_keys)}
    for old in used:
        remap[old] = position[int(pack_rgb(palette.colors[old]))]
    return PaletteFit(ordered, remap[labels], 0)


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
    indices = lut[keys]
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


def _metrics(table: ColorTable, fit: PaletteFit) -> QualityMetrics:
    mapped = fit.palette.colors[fit.labels]
    return quality_metrics(table.colors, mapped, table.counts, fit.palette.size)


@dataclass(frozen=True)
class RunOptions:
    """Everything that decides how one file is quantized and written."""

    colors: int = 16
    algorithm: Algorithm = "kmeans"
    n_init: int | Literal["auto"] = "auto"
    max_iter: int = 300
    seed: int = 0
    space: str = "rgb"
    fmt: str = "png"
    report: bool = True
    force: bool = False
    #: Recolor with this palette instead of clustering (``--palette``, ``--shared-palette``).
    palette: Palette | None = None
    #: Where that palette came from, for the report's ``palette_file``.
    palette_file: str | None = None


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


def default_stem(source: Path, colors: int) -> str:
    """The output file stem for an input: ``photo.jpg`` -> ``photo-k16``."""
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
        palette=opts.palette,
    )
    plan.image.parent.mkdir(parents=True, exist_ok=True)
    save_image(result.image_for_format(plan.fmt), plan.image, plan.fmt)
    if plan.report is not None:
        report = result.report(str(source), str(plan.image))
        report["palette_file"] = opts.palette_file
        write_text(plan.report, json.dumps(report, indent=2) + "\n")
    return result

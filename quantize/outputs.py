"""Outputs: their names, their plan, and writing them (all or nothing).

One module owns the output-name rule (`default_stem`) and its inverse
(`is_own_output`, which the folder scan uses to leave earlier outputs out),
so the two cannot drift apart.  `plan_outputs` decides every path of one
input before any work; `process_file` runs the one-image algorithm
(`quantize.pipeline.quantize_image`) and `write_outputs` writes the image,
its JSON report, palette files, swatch, plot and thumbnails through the
atomic writers of `quantize.encode`.  The shared palette of a batch
(`write_shared_palette`) and the ``--html`` page (`write_page`) are written
here too, so `quantize.batch` only plans, runs and collects.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from quantize.encode import (
    ANIMATION_FORMATS,
    FORMATS,
    LOSSY_FORMATS,
    Writer,
    bytes_writer,
    check_outputs,
    decode_rgb,
    encode_image,
    fit_to_format,
    image_writer,
    output_format,
    write_files,
)
from quantize.imageio import Frame, load_image
from quantize.metrics import QualityMetrics, image_metrics
from quantize.palette import Palette
from quantize.palette_formats import SUFFIXES, export
from quantize.pipeline import QuantizeResult, RunOptions, quantize_image
from quantize.render import pixel_plot_png, render_swatch
from quantize.report import WrittenFacts
from quantize.text import json_safe, valid_unicode

if TYPE_CHECKING:
    from quantize.batch import BatchResult


# --------------------------------------------------------------------------- #
# Names
# --------------------------------------------------------------------------- #


def default_stem(source: Path, colors: int | str) -> str:
    """The output file stem for an input: ``photo.jpg`` -> ``photo-k16`` (``photo-kauto``)."""
    return f"{source.stem}-k{colors}"


# The inverse of `default_stem`: quantize's own output names are STEM-kK
# followed by one or more suffixes (photo-k16.png, photo-k16.json,
# photo-k16.swatch.png ...).  tests/test_outputs.py checks that the two agree.
_OUTPUT_NAME = re.compile(r"(?P<stem>.+)-k(?:[0-9]+|auto)(?:\.[^.]+)+")


def is_own_output(name: str, sibling_stems: set[str]) -> bool:
    """True when file ``name`` looks like a quantize output of a sibling image.

    The inverse of the naming rule: every name `plan_outputs` gives an
    input ``STEM.*`` by default is recognised with ``STEM`` among the stems.

    Parameters
    ----------
    name : str
        A file name such as ``photo-k16.png``.
    sibling_stems : set of str
        Stems of the image files in the same folder.

    Examples
    --------
    >>> is_own_output("photo-k16.png", {"photo", "photo-k16"})
    True
    >>> is_own_output("photo-k16.png", {"photo-k16"})
    False
    """
    match = _OUTPUT_NAME.fullmatch(name)
    return match is not None and match.group("stem") in sibling_stems


def is_folder_spec(output: str) -> bool:
    """True when ``output`` names a folder: an existing one, or spelled with a trailing slash."""
    # os.path.isdir: a name the file system refuses (too long, a loop) is no folder.
    return output.endswith(("/", os.sep)) or os.path.isdir(output)


# --------------------------------------------------------------------------- #
# Planning
# --------------------------------------------------------------------------- #


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


# --------------------------------------------------------------------------- #
# One image: quantize and write
# --------------------------------------------------------------------------- #


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
    result = quantize_image(loaded, **opts.as_kwargs())
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

    `quantize.metrics.image_metrics`: computed on tables of distinct (input
    color, written color) pairs a band of rows at a time, which gives the
    numbers of comparing every pixel in memory bounded by the band.

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
    metrics = image_metrics(original, written)
    return metrics, metrics.colors_used


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
    plot = None
    if plan.plot is not None:
        plot, caught = pixel_plot_png(
            valid_unicode(source.name),
            frame,
            result.image,
            result.palette,
            result.distinct_colors,
            seed=seed,
        )
        result.warnings.extend(caught)
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
        used = int(result.metrics.colors_used)
        colors = None if indexed is None else result.image_colors or used
        written = WrittenFacts(palette_file, indexed, colors)
        image = str(plan.image) if plan.write_image else None
        report = result.report(str(source), image, written)
        text = json.dumps(json_safe(report), indent=2) + "\n"  # valid UTF-8 for any file name
        files.append((plan.report, bytes_writer(text.encode())))
    for fmt, path in plan.palettes.items():
        files.append((path, _palette_writer(result.palette, fmt, valid_unicode(plan.image.stem))))
    if plan.swatch is not None:
        files.append((plan.swatch, image_writer([render_swatch(result.palette)], "png")))
    if plan.plot is not None and plot is not None:
        files.append((plan.plot, bytes_writer(plot)))
    if plan.thumbs is not None:
        from quantize.report_html import thumbnail_writers

        files.extend(thumbnail_writers(plan.thumbs, frame, result.image))
    write_files(files, force=force)


def _palette_writer(palette: Palette, fmt: str, name: str) -> Writer:
    data = export(palette, fmt, name)
    return bytes_writer(data if isinstance(data, bytes) else data.encode())


# --------------------------------------------------------------------------- #
# A batch's own files: the shared palette and the --html page
# --------------------------------------------------------------------------- #


def shared_palette_files(path: Path, formats: Sequence[str]) -> list[Path]:
    """``palette.json`` at ``path`` and the other palette files written beside it.

    Parameters
    ----------
    path : Path
        Where ``palette.json`` goes.
    formats : sequence of str
        Palette formats besides the report (``RunOptions.palette_formats``).
    """
    return [path, *(path.with_suffix(SUFFIXES[fmt]) for fmt in formats)]


def write_shared_palette(
    path: Path,
    palette: Palette,
    report: dict[str, Any],
    images: int,
    formats: Sequence[str],
    *,
    force: bool = False,
) -> None:
    """Write a batch's shared palette: its report and palette files, all or none.

    Parameters
    ----------
    path : Path
        Where ``palette.json`` goes; the files of ``formats`` go beside it.
    palette : Palette
        The shared palette, in the order the files list it.
    report : dict
        Its report (`quantize.pipeline.learn_shared_palette`).
    images : int
        Number of images it was learned from, the report's ``images``.
    formats : sequence of str
        Palette formats besides the report.
    force : bool
        Replace existing files.
    """
    text = json.dumps({"images": images, **report}, indent=2) + "\n"
    files = [(path, bytes_writer(text.encode()))]
    for fmt in dict.fromkeys(formats):
        files.append((path.with_suffix(SUFFIXES[fmt]), _palette_writer(palette, fmt, path.stem)))
    write_files(files, force=force)


def write_page(result: BatchResult, path: Path, *, force: bool = False) -> None:
    """Write the ``--html`` page of a finished batch (atomically) and note it in ``result``."""
    from quantize.report_html import batch_summary, build_page

    page = build_page(
        result.results, path.parent, palette=result.palette, summary=batch_summary(result)
    )
    write_files([(path, bytes_writer(page.encode()))], force=force)
    result.page_path = path

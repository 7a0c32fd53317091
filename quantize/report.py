"""The JSON palette report (schema in the README's "Palette report"), built in one place.

An image's report (``photo-k16.json``) and a shared palette's
``palette.json`` are two views of one document: what was asked
(`quantize.options.QuantizeOptions.report_fields`), the color table the
palette was fitted to, the clustering, the quality and the colors.  An
image's report adds the image's own facts (`ImageFacts`); ``palette.json``
has none and keeps the keys of `SHARED_REPORT_KEYS`, in that order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from quantize.metrics import QualityMetrics
from quantize.palette import Palette, to_json_colors

__all__ = ["SHARED_REPORT_KEYS", "ImageFacts", "WrittenFacts", "palette_report"]

#: The keys of a shared palette's ``palette.json``, in the order it has always had.
SHARED_REPORT_KEYS = (
    "pixels",
    "distinct_colors",
    "color_profile",
    "colors_requested",
    "algorithm",
    "space",
    "seed",
    "n_init",
    "max_iter",
    "n_iter",
    "metrics",
    "sort",
    "colors",
    "keep",
)


@dataclass(frozen=True)
class WrittenFacts:
    """What an image's report says about the files written with it.

    Attributes
    ----------
    palette_file : str or None
        The palette file the colors came from (``--palette``, ``palette.json``).
    image_indexed : bool or None
        Whether the image file holds the palette; None without an image file.
    image_colors : int or None
        Distinct colors in the image file as written; None without one.
    """

    palette_file: str | None
    image_indexed: bool | None
    image_colors: int | None


@dataclass(frozen=True)
class ImageFacts:
    """What an image's report says about the image itself.

    Attributes
    ----------
    source : str or None
        The input file.
    image : str or None
        The image file written; None without one (``--no-image``).
    width, height : int
    transparent_pixels : int
    input_profile : str or None
        Name of the ICC profile the input colors were converted from.
    frames : int
    k_auto : dict or None
        The ``-k auto`` search (`quantize.autok.AutoK.to_dict`).
    warnings : list of str
    written : WrittenFacts or None
        The facts of the written files; None for a report of the result
        alone (`quantize.pipeline.QuantizeResult.report`), which leaves them out.
    """

    source: str | None
    image: str | None
    width: int
    height: int
    transparent_pixels: int
    input_profile: str | None
    frames: int
    k_auto: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    written: WrittenFacts | None = None


#: Stands in for the facts of a shared palette, whose report leaves them out.
_NO_IMAGE = ImageFacts(None, None, 0, 0, 0, None, 1)


def palette_report(
    settings: Mapping[str, Any],
    *,
    palette: Palette,
    metrics: QualityMetrics,
    n_iter: int,
    pixels: int,
    distinct_colors: int,
    image: ImageFacts | None = None,
) -> dict[str, Any]:
    """The palette report as a JSON-ready dict.

    Parameters
    ----------
    settings : mapping
        `QuantizeOptions.report_fields` of the options that made the palette.
    palette : Palette
        The colors in report order, with pixel counts.
    metrics : QualityMetrics
    n_iter : int
        Iterations the clustering ran.
    pixels, distinct_colors : int
        Pixels and distinct colors of the table the palette was fitted to.
    image : ImageFacts, optional
        The image's facts; None for a shared palette (``palette.json``).

    Returns
    -------
    dict
        With ``image``: every key of an image's report (those of
        `WrittenFacts` only when ``image.written`` is given); without: the
        keys of `SHARED_REPORT_KEYS`.
    """
    facts = image or _NO_IMAGE
    colors = to_json_colors(palette)
    if "keep" in settings:
        kept = set(settings["keep"])
        colors = [{**entry, "kept": entry["hex"] in kept} for entry in colors]
    report = {
        "source": facts.source,
        "image": facts.image,
        "width": facts.width,
        "height": facts.height,
        "pixels": pixels,
        "transparent_pixels": facts.transparent_pixels,
        "distinct_colors": distinct_colors,
        "color_profile": "sRGB",
        "input_profile": facts.input_profile,
        "frames": facts.frames,
        **settings,
        "n_iter": n_iter,
        "k_auto": facts.k_auto,
        "metrics": metrics.to_dict(),
        "colors": colors,
        "warnings": list(facts.warnings),
    }
    if image is None:
        return {key: report[key] for key in SHARED_REPORT_KEYS if key in report}
    if image.written is not None:
        report["palette_file"] = image.written.palette_file
        report["image_indexed"] = image.written.image_indexed
        report["image_colors"] = image.written.image_colors
    return report

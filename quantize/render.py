"""Pictures made with Pillow: output frames, the swatch and the pixel plot.

This is the image-assembly part of the I/O layer: it turns arrays the
pipeline computed (palette indices of every pixel, a `Palette`) into PIL
images and PNG bytes, and never touches the file system (`quantize.outputs`
writes what it makes).  It imports nothing above the core but
`quantize.imageio`'s frame type, `quantize.palette` and `quantize.plots`, so
`quantize.pipeline` can assemble its result with it.

- :func:`render_frames` builds the indexed (or RGBA) frames of a result;
  :func:`for_format` converts one for a format that cannot store it as is.
- :func:`render_swatch` draws a palette as bands of color.
- :func:`pixel_plot_png` draws the ``--plot`` figure (matplotlib, imported
  lazily by `quantize.plots`).
"""

from __future__ import annotations

import functools
import io
import math
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from quantize.colors import srgb_to_lab
from quantize.encode import INDEXED_FORMATS
from quantize.imageio import Frame
from quantize.palette import Palette, percent_labels
from quantize.plots import render_pixel_plot, sample_pixels

if TYPE_CHECKING:
    # Imported by the swatch code only: the font machinery costs start-up
    # time that runs without --swatch never need.
    from PIL import ImageFont

#: Pixels drawn in the ``--plot`` scatter plot.
PLOT_SAMPLE_SIZE: Final[int] = 10_000


def for_format(image: Image.Image, fmt: str) -> Image.Image:
    """``image`` as ``fmt`` can store it: indexed where the format holds its palette
    and transparency, otherwise converted to RGB (or RGBA when it has transparency)."""
    if image.mode != "P":
        return image
    # PNG stores per-entry alpha, GIF one transparent index, TIFF and BMP none.
    alpha = image.info.get("transparency")
    stored = alpha is None or fmt == "png" or (fmt == "gif" and isinstance(alpha, int))
    if fmt in INDEXED_FORMATS and stored:
        return image
    return image.convert("RGB" if alpha is None else "RGBA")


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
    # Pillow maps the array's memory (read-only) instead of copying it twice
    # (tobytes, then frombytes): 24 MB less fresh memory on 12 MP.
    rows = np.ascontiguousarray(indices)
    img = Image.frombuffer("P", (rows.shape[1], rows.shape[0]), rows, "raw", "P", 0, 1)
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


#: Pixels drawn in the ``--plot`` scatter plot.


def pixel_plot_png(
    name: str,
    frame: Frame,
    image: Image.Image,
    palette: Palette,
    distinct_colors: int,
    *,
    seed: int = 0,
) -> tuple[bytes, list[str]]:
    """The ``--plot`` figure of a recolored image as PNG bytes (see `quantize.plots`).

    Parameters
    ----------
    name : str
        Image name for the title.
    frame : Frame
        The decoded input the image was computed from.
    image : PIL.Image.Image
        The recolored image (its first frame).
    palette : Palette
        Its palette: the centers drawn.
    distinct_colors : int
        Distinct colors of the input, for the title.
    seed : int
        Seed of the sample of `PLOT_SAMPLE_SIZE` visible pixels.

    Returns
    -------
    png : bytes
    warnings : list of str
        Warnings matplotlib gave while drawing (a glyph the font lacks ...),
        one line each, prefixed ``--plot:``, for the report and the command.
    """
    original, mapped = sample_visible_pixels(frame, image, PLOT_SAMPLE_SIZE, seed)
    title = f"{name} — {distinct_colors:,} distinct colors → k={palette.size}"
    buffer = io.BytesIO()
    caught = render_pixel_plot(original, mapped, palette.colors, title=title, path_or_buffer=buffer)
    return buffer.getvalue(), [f"--plot: {line}" for line in dict.fromkeys(caught)]


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


# --------------------------------------------------------------------------- #
# Swatch image
# --------------------------------------------------------------------------- #

# L* of the gray whose WCAG contrast against black equals that against white
# (relative luminance ~0.179): lighter bands get black text, darker get white.
_TEXT_LIGHTNESS_SPLIT: Final[float] = 49.5


_LABEL_PAD: Final[int] = 4


def _band_edges(palette: Palette, width: int) -> NDArray[np.int64]:
    """Right edge (exclusive) of each band, shape (n,); last edge == ``width``.

    Edges are the rounded cumulative fractions (so a 75/25 split of 400 px
    ends the first band at exactly 300), then nudged so that every band is at
    least 1 px wide.
    """
    n = palette.size
    weights = palette.counts if palette.total > 0 else np.ones(n, dtype=np.int64)
    cum = np.cumsum(weights)
    total = int(cum[-1])
    # Integer round-half-up of cum * width / total: no float drift.
    edges = (cum * width + total // 2) // total
    floor = np.arange(1, n + 1, dtype=np.int64)  # band i needs at least i + 1 px before its end
    edges = np.maximum.accumulate(np.maximum(edges - floor, 0)) + floor
    ceiling = width - np.arange(n - 1, -1, -1, dtype=np.int64)
    return np.asarray(np.minimum(edges, ceiling), dtype=np.int64)


def render_swatch(palette: Palette, *, width: int = 1200, height: int = 200) -> Image.Image:
    """Draw the palette as vertical bands, left to right in palette order.

    Band widths are proportional to the colors' fractions (equal when the
    palette has no counts), each at least 1 px, together exactly ``width``.
    Bands wide enough for it get a ``#rrggbb`` / ``12.3%`` label near the top
    in black or white, whichever contrasts more; the lower part of every band
    stays pure palette color. Bands too narrow for that get a one-line
    label reading bottom to top, in a smaller font if need be; only the
    narrowest (under about 14 px at the default size) stay unlabeled.

    Parameters
    ----------
    palette : Palette
    width, height : int
        Image size in pixels; ``width`` must be at least ``palette.size``.

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"``, size ``(width, height)``.

    Raises
    ------
    ValueError
        If the image is too small to give every color a band.
    """
    if height < 1 or width < palette.size:
        raise ValueError(
            f"swatch of {width}x{height} px cannot hold {palette.size} bands of at least 1 px"
        )
    edges = _band_edges(palette, width)
    starts = np.concatenate(([0], edges[:-1]))
    column_color = np.repeat(palette.colors, edges - starts, axis=0)  # (width, 3)
    pixels = np.broadcast_to(column_color, (height, width, 3))
    image = Image.fromarray(np.ascontiguousarray(pixels))  # uint8 (h, w, 3) -> RGB
    _draw_labels(image, palette, starts, edges)
    return image


def _draw_labels(
    image: Image.Image, palette: Palette, starts: NDArray[np.int64], edges: NDArray[np.int64]
) -> None:
    """Write each band's hex code (and share) in the top half, across or, if narrow, upright."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    size = max(_MIN_FONT_SIZE, min(20, image.height // 12))
    font = _font(size)
    percents = percent_labels(palette, 1)
    # CIELAB L*, the lightness `Palette.order` sorts by.
    lightness = srgb_to_lab(palette.colors.astype(np.float64) / 255.0)[:, 0]
    text_black = lightness > _TEXT_LIGHTNESS_SPLIT
    for i, hex_code in enumerate(palette.hex):
        text = f"{hex_code}\n{percents[i]}" if percents[i] else hex_code
        left, _top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font, align="center")
        band = int(edges[i] - starts[i])
        fill = (0, 0, 0) if text_black[i] else (255, 255, 255)
        # Keeping labels in the top half leaves a solid strip of the pure color.
        if right - left + 2 * _LABEL_PAD > band or bottom + _LABEL_PAD > image.height // 2:
            # One space reads as part of the hex code at small sizes ("#c0a9a45.3%").
            line = f"{hex_code}{_UPRIGHT_GAP}{percents[i]}".rstrip()
            _draw_upright_label(image, line, int(starts[i]), band, fill, size)
            continue
        x = int(starts[i]) + (band - (right - left)) // 2 - left
        draw.multiline_text((x, _LABEL_PAD), text, fill=fill, font=font, align="center")


_MIN_FONT_SIZE: Final[int] = 10


#: Between the hex code and the share of an upright label: wide enough to see.
_UPRIGHT_GAP: Final[str] = "   "


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` px (cached: labels try several sizes)."""
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _draw_upright_label(
    image: Image.Image, text: str, start: int, band: int, fill: tuple[int, int, int], size: int
) -> None:
    """Write one line reading bottom to top in a band too narrow for a level label.

    The font shrinks (down to `_MIN_FONT_SIZE`) until the line fits in the top
    half and across the band; a band still too narrow stays unlabeled.
    """
    room = image.height // 2 - 2 * _LABEL_PAD
    for font_size in range(size, _MIN_FONT_SIZE - 1, -1):
        font = _font(font_size)
        left, top, right, bottom = (math.ceil(v) for v in font.getbbox(text))
        # Half the usual margin at the sides: narrow bands need every pixel.
        if right - left <= room and bottom - top + _LABEL_PAD <= band:
            break
    else:
        return
    from PIL import ImageDraw

    mask = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, fill=255, font=font)
    mask = mask.rotate(90, expand=True)
    x = start + (band - mask.width) // 2
    image.paste(fill, (x, _LABEL_PAD, x + mask.width, _LABEL_PAD + mask.height), mask)

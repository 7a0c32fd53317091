"""Palettes: the `Palette` value type, its exporters and readers.

A palette is an ordered list of 1..256 sRGB colors, each with the number of
pixels that were mapped to it (all zeros for a palette read from a file that
carries no counts).

Exporters return ``str`` (or ``bytes`` for ASE) and never write files:
`quantize.outputs` writes them atomically. Readers take text or bytes (``parse_*``) or a
path (`read_palette`) and raise `PaletteError` with a one-line message that
says where the file is wrong.  Nothing here imports Pillow: the swatch image
is drawn by :func:`quantize.render.render_swatch`.

Each file format is one `PaletteFormat` entry (name, suffix, exporter, parser,
content sniffer) of `PALETTE_REGISTRY`, in the style of Pillow's format
plugins: `quantize.outputs` writes through it, `read_palette` recognises files
through it, and `EXPORTERS` / `SUFFIXES` are views of it.  Its names are
`quantize.vocabulary.PALETTE_FORMATS`, which the CLI offers.
"""

from __future__ import annotations

import functools
import json
import math
import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantize.colors import srgb_to_lab
from quantize.errors import InputError, QuantizeError
from quantize.histogram import pack_rgb
from quantize.limits import EXCERPT_CHARS, MAX_COLORS, MAX_PALETTE_FILE_BYTES
from quantize.vocabulary import PALETTE_FORMATS, SORT_KEYS, SortKey, registry

__all__ = [
    "EXPORTERS",
    "MAX_COLORS",
    "PALETTE_REGISTRY",
    "SUFFIXES",
    "Palette",
    "PaletteError",
    "PaletteFormat",
    "export",
    "parse_ase",
    "parse_gpl",
    "parse_hex",
    "parse_hex_lines",
    "parse_json_report",
    "read_palette",
    "to_ase",
    "to_css",
    "to_gpl",
    "to_json_colors",
    "to_txt",
]

#: Colors whose HSV saturation is below this count as grays when sorting by hue.
#: uint8 colors cannot have a saturation between 0 and 1/255, so this also
#: catches near-grays such as (100, 101, 99) whose hue is mere noise.
GRAY_SATURATION: Final[float] = 0.02


class PaletteError(QuantizeError, ValueError):
    """A palette file could not be parsed; the message says where and why.

    It derives from `ValueError` (bad content) and from `QuantizeError` so the
    CLI reports it as one line like every other domain error.
    """


# --------------------------------------------------------------------------- #
# The value type
# --------------------------------------------------------------------------- #


def _as_int_array(values: ArrayLike, what: str) -> NDArray[np.int64]:
    """Return ``values`` as a fresh int64 array, refusing non-integral numbers."""
    try:
        arr = np.array(values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a numeric array: {exc}") from None
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise ValueError(f"{what} must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise ValueError(f"{what} must hold whole numbers")
    return arr.astype(np.int64)


@dataclass(frozen=True, eq=False)
class Palette:
    """An ordered sRGB palette with per-color pixel counts.

    Parameters
    ----------
    colors : ndarray of uint8, shape (n, 3)
        sRGB colors, ``1 <= n <= 256``. Any integer-valued numeric array is
        accepted and stored as a read-only uint8 copy.
    counts : ndarray of int64, shape (n,)
        Pixels mapped to each color, non-negative; all zeros when unknown.
        Stored as a read-only int64 copy.

    Raises
    ------
    ValueError
        If shapes, sizes or value ranges are wrong.

    Notes
    -----
    Equality compares colors and counts element-wise (the generated dataclass
    ``__eq__`` would try to take the truth value of an array).

    Examples
    --------
    >>> palette = Palette([[255, 0, 0], [0, 0, 255]], [10, 30])
    >>> palette.size, palette.hex, palette.fractions.tolist()
    (2, ['#ff0000', '#0000ff'], [0.25, 0.75])
    >>> palette.sorted("count").hex
    ['#0000ff', '#ff0000']
    """

    colors: NDArray[np.uint8]
    counts: NDArray[np.int64]

    def __post_init__(self) -> None:
        colors = _as_int_array(self.colors, "colors")
        if colors.ndim != 2 or colors.shape[1] != 3:
            raise ValueError(f"colors must have shape (n, 3), got {colors.shape}")
        if not 1 <= len(colors) <= MAX_COLORS:
            raise ValueError(f"a palette needs 1 to {MAX_COLORS} colors, got {len(colors)}")
        if colors.min() < 0 or colors.max() > 255:
            raise ValueError("colors must be in 0..255")
        counts = _as_int_array(self.counts, "counts")
        if counts.shape != (len(colors),):
            raise ValueError(f"counts must have shape ({len(colors)},), got {counts.shape}")
        if len(counts) and counts.min() < 0:
            raise ValueError("counts must be non-negative")
        colors8 = colors.astype(np.uint8)
        # Read-only copies make the frozen dataclass really immutable.
        colors8.flags.writeable = False
        counts.flags.writeable = False
        object.__setattr__(self, "colors", colors8)
        object.__setattr__(self, "counts", counts)

    @classmethod
    def from_colors(cls, colors: ArrayLike, counts: ArrayLike | None = None) -> Palette:
        """Build a palette, with zero counts when ``counts`` is None.

        Parameters
        ----------
        colors : array_like, shape (n, 3)
            Integer sRGB colors in ``0..255``.
        counts : array_like, shape (n,), optional
            Pixel counts; zeros if omitted.

        Returns
        -------
        Palette
        """
        arr = np.asarray(colors)
        n = len(arr) if arr.ndim >= 1 else 0
        cnt = np.zeros(n, dtype=np.int64) if counts is None else np.asarray(counts)
        return cls(arr, cnt)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Palette):
            return NotImplemented
        return bool(
            np.array_equal(self.colors, other.colors) and np.array_equal(self.counts, other.counts)
        )

    def __hash__(self) -> int:
        return hash((self.colors.tobytes(), self.counts.tobytes()))

    def __repr__(self) -> str:
        return f"Palette(size={self.size}, hex={self.hex!r}, counts={self.counts.tolist()!r})"

    @property
    def size(self) -> int:
        """Number of colors ``n``."""
        return int(self.colors.shape[0])

    @property
    def hex(self) -> list[str]:
        """Colors as lowercase ``'#rrggbb'`` strings, in palette order."""
        return [_hex(c) for c in self.colors]

    @property
    def total(self) -> int:
        """Sum of the counts (0 for a palette without counts)."""
        return int(self.counts.sum())

    @property
    def fractions(self) -> NDArray[np.float64]:
        """Counts divided by their total, float64 shape (n,); zeros if the total is 0."""
        total = self.total
        if total == 0:
            return np.zeros(self.size, dtype=np.float64)
        return self.counts.astype(np.float64) / total

    def sorted(self, by: SortKey = "count") -> Palette:
        """Return a copy with the colors (and their counts) reordered.

        Parameters
        ----------
        by : {"count", "hue", "lightness"}
            See `order` for the exact orders.

        Returns
        -------
        Palette

        Raises
        ------
        ValueError
            For an unknown ``by``.
        """
        order = self.order(by)
        return Palette(self.colors[order], self.counts[order])

    def order(self, by: SortKey = "count") -> NDArray[np.intp]:
        """The permutation that `sorted` applies: ``sorted(by).colors == colors[order(by)]``.

        Parameters
        ----------
        by : {"count", "hue", "lightness"}
            ``"count"``: most pixels first; ties dark to light, then by the
            packed ``0xRRGGBB`` value. ``"hue"``: HSV hue ascending (red,
            yellow, green, cyan, blue, magenta); grays (saturation below
            `GRAY_SATURATION`) come last; ties and grays ordered dark to
            light. ``"lightness"``: CIELAB L* ascending, i.e. dark to light.
            Every order is total, so the result is deterministic.

        Returns
        -------
        ndarray of intp, shape (n,)
            Old index of the color at each new position.

        Raises
        ------
        ValueError
            For an unknown ``by``.
        """
        lightness = _lightness(self.colors)
        packed = _packed(self.colors)
        if by == "count":
            # np.lexsort sorts by the last key first.
            order = np.lexsort((packed, lightness, -self.counts))
        elif by == "hue":
            hue, saturation = _hue_saturation(self.colors)
            is_gray = saturation < GRAY_SATURATION
            order = np.lexsort((packed, lightness, np.where(is_gray, 0.0, hue), is_gray))
        elif by == "lightness":
            order = np.lexsort((packed, lightness))
        else:
            known = ", ".join(repr(k) for k in SORT_KEYS[:-1]) + f" or {SORT_KEYS[-1]!r}"
            raise ValueError(f"unknown sort key {by!r}; use {known}")
        return np.asarray(order, dtype=np.intp)


def _hex(rgb: Sequence[int] | NDArray[np.uint8]) -> str:
    """Format one color as ``'#rrggbb'``."""
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def _packed(colors: NDArray[np.uint8]) -> NDArray[np.int64]:
    """Colors as ``0xRRGGBB`` integers, shape (n,): a cheap total-order tie-breaker."""
    return pack_rgb(colors).astype(np.int64)


def _lightness(colors: NDArray[np.uint8]) -> NDArray[np.float64]:
    """CIELAB L* (0..100) of uint8 sRGB colors, shape (n,)."""
    return np.asarray(srgb_to_lab(colors.astype(np.float64) / 255.0)[:, 0], dtype=np.float64)


def _hue_saturation(
    colors: NDArray[np.uint8],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """HSV hue in ``[0, 1)`` and saturation in ``[0, 1]`` of uint8 colors, each (n,)."""
    rgb = colors.astype(np.float64) / 255.0
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    hi, lo = rgb.max(axis=1), rgb.min(axis=1)
    chroma = hi - lo
    safe_chroma = np.where(chroma == 0, 1.0, chroma)  # grays: hue is 0 by convention
    sector = np.select(
        [chroma == 0, hi == r, hi == g],
        [np.zeros_like(r), ((g - b) / safe_chroma) % 6.0, (b - r) / safe_chroma + 2.0],
        default=(r - g) / safe_chroma + 4.0,
    )
    saturation = np.where(hi > 0, chroma / np.where(hi > 0, hi, 1.0), 0.0)
    return sector / 6.0, saturation


# --------------------------------------------------------------------------- #
# Exporters
# --------------------------------------------------------------------------- #

# GIMP shows the palette in this many columns at most.
_GPL_MAX_COLUMNS: Final[int] = 16


def _one_line(text: str) -> str:
    """Collapse control characters (newlines above all) so a name cannot break a format."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", text).strip()


def percent_labels(palette: Palette, decimals: int) -> list[str]:
    """Per-color ``'12.34%'`` strings, or empty strings when the palette has no counts."""
    if palette.total == 0:
        return [""] * palette.size
    return [f"{100.0 * f:.{decimals}f}%" for f in palette.fractions]


def to_gpl(palette: Palette, name: str) -> str:
    """Render a GIMP palette (``.gpl``).

    Parameters
    ----------
    palette : Palette
    name : str
        Palette name for the ``Name:`` header (control characters removed).

    Returns
    -------
    str
        ``GIMP Palette`` header, ``Name:``, ``Columns:`` (palette size, at most
        16), a comment, then one ``  r   g   b<TAB>#rrggbb 12.34%`` line per
        color. GIMP reads three integers and takes the rest as the color name.
        The percentage is left out when the palette has no counts.
    """
    lines = [
        "GIMP Palette",
        f"Name: {_one_line(name)}",
        f"Columns: {min(palette.size, _GPL_MAX_COLUMNS)}",
        f"# {palette.size} colors, generated by quantize",
    ]
    for (r, g, b), hex_code, pct in zip(
        palette.colors.tolist(), palette.hex, percent_labels(palette, 2), strict=True
    ):
        lines.append(f"{r:3d} {g:3d} {b:3d}\t{hex_code} {pct}".rstrip())
    return "\n".join(lines) + "\n"


def to_css(palette: Palette, name: str) -> str:
    """Render CSS custom properties in a ``:root`` block.

    Parameters
    ----------
    palette : Palette
    name : str
        Shown in the header comment.

    Returns
    -------
    str
        ``--color-1: #rrggbb; /* 12.34% */`` per color, in palette order
        (the comment is omitted when the palette has no counts).
    """
    # "*/" inside the name would end the comment early.
    safe_name = _one_line(name).replace("*/", "* /")
    lines = [f"/* quantize palette: {safe_name} ({palette.size} colors) */", ":root {"]
    for i, (hex_code, pct) in enumerate(zip(palette.hex, percent_labels(palette, 2), strict=True)):
        comment = f" /* {pct} */" if pct else ""
        lines.append(f"  --color-{i + 1}: {hex_code};{comment}")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ASE block types and the "normal" (a.k.a. process) color type.
_ASE_GROUP_START: Final[int] = 0xC001
_ASE_GROUP_END: Final[int] = 0xC002
_ASE_COLOR: Final[int] = 0x0001
_ASE_TYPE_NORMAL: Final[int] = 2


def _ase_string(text: str) -> bytes:
    """UTF-16BE string with a uint16 length in code units that counts the terminating NUL."""
    encoded = (text + "\0").encode("utf-16-be")
    units = len(encoded) // 2
    if units > 0xFFFF:
        raise ValueError(f"ASE names are limited to {0xFFFF - 1} UTF-16 code units")
    return struct.pack(">H", units) + encoded


def _ase_block(block_type: int, body: bytes) -> bytes:
    """One ASE block: uint16 type, uint32 body length, body."""
    return struct.pack(">HI", block_type, len(body)) + body


def to_ase(palette: Palette, name: str) -> bytes:
    """Render an Adobe Swatch Exchange 1.0 file.

    Parameters
    ----------
    palette : Palette
    name : str
        Name of the single color group holding the swatches.

    Returns
    -------
    bytes
        ``ASEF``, version 1.0, block count (n + 2), a group-start block, one
        RGB color block per color named ``#rrggbb`` (three big-endian float32
        in ``0..1``, color type 2 = normal) and a group-end block.
    """
    blocks = [_ase_block(_ASE_GROUP_START, _ase_string(_one_line(name)))]
    for rgb, hex_code in zip(palette.colors.tolist(), palette.hex, strict=True):
        body = (
            _ase_string(hex_code)
            + b"RGB "
            + struct.pack(">fff", *(v / 255.0 for v in rgb))
            + struct.pack(">H", _ASE_TYPE_NORMAL)
        )
        blocks.append(_ase_block(_ASE_COLOR, body))
    blocks.append(_ase_block(_ASE_GROUP_END, b""))
    return b"ASEF" + struct.pack(">HHI", 1, 0, len(blocks)) + b"".join(blocks)


def to_txt(palette: Palette) -> str:
    """Render one ``#rrggbb`` per line, in palette order.

    Parameters
    ----------
    palette : Palette

    Returns
    -------
    str
    """
    return "".join(f"{h}\n" for h in palette.hex)


def to_json_colors(palette: Palette) -> list[dict[str, Any]]:
    """Describe the colors for the JSON report.

    Parameters
    ----------
    palette : Palette

    Returns
    -------
    list of dict
        ``{"hex": "#rrggbb", "rgb": [r, g, b], "count": N, "fraction": f}`` per
        color, with plain Python ints/floats and ``fraction`` rounded to 6
        decimals.
    """
    return [
        {"hex": h, "rgb": rgb, "count": int(count), "fraction": round(float(frac), 6)}
        for h, rgb, count, frac in zip(
            palette.hex,
            palette.colors.tolist(),
            palette.counts.tolist(),
            palette.fractions.tolist(),
            strict=True,
        )
    ]


def _txt_exporter(palette: Palette, name: str) -> str:
    """`to_txt` with the common exporter signature (plain text has no name)."""
    return to_txt(palette)


def export(palette: Palette, fmt: str, name: str = "palette") -> str | bytes:
    """Render ``palette`` in format ``fmt`` (a key of `EXPORTERS`, see `PALETTE_REGISTRY`).

    Parameters
    ----------
    palette : Palette
    fmt : {"gpl", "css", "ase", "txt"}
    name : str
        Palette name, where the format has one.

    Returns
    -------
    str or bytes
        ``bytes`` for ``"ase"``, ``str`` otherwise.

    Raises
    ------
    ValueError
        For an unknown format.
    """
    try:
        exporter = EXPORTERS[fmt]
    except KeyError:
        known = ", ".join(EXPORTERS)
        raise ValueError(f"unknown palette format {fmt!r}; use one of {known}") from None
    return exporter(palette, name)


# --------------------------------------------------------------------------- #
# Readers
# --------------------------------------------------------------------------- #


def _excerpt(value: object) -> str:
    """``repr(value)`` cut to a short excerpt, so a huge line is never echoed back whole."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        # repr of an int over Python's digit limit would itself raise.
        return f"an integer of {value.bit_length()} bits"
    text = repr(value[: EXCERPT_CHARS + 1] if isinstance(value, str) else value)
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."


_Data = TypeVar("_Data", str, bytes)


def _guarded(parse: Callable[[_Data], Palette]) -> Callable[[_Data], Palette]:
    """Make every failure of a parser a one-line `PaletteError`, whatever the input."""

    @functools.wraps(parse)
    def guarded(data: _Data) -> Palette:
        try:
            return parse(data)
        except PaletteError:
            raise
        except RecursionError:
            raise PaletteError("nested too deeply") from None
        except (ValueError, TypeError, OverflowError, MemoryError, struct.error) as exc:
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise PaletteError(f"cannot parse: {reason}") from None

    return guarded


#: Largest count (the sum of all counts too): palettes store counts as int64.
_MAX_COUNT: Final[int] = int(np.iinfo(np.int64).max)


def _build_palette(
    colors: Iterable[tuple[int, int, int]], counts: Iterable[int] | None = None
) -> Palette:
    """Make a palette from parsed rows: drop repeated colors (first wins), check the size."""
    rows = list(colors)
    cnts = [0] * len(rows) if counts is None else list(counts)
    seen: set[tuple[int, int, int]] = set()
    keep_colors: list[tuple[int, int, int]] = []
    keep_counts: list[int] = []
    for rgb, count in zip(rows, cnts, strict=True):
        if rgb not in seen:
            seen.add(rgb)
            keep_colors.append(rgb)
            keep_counts.append(count)
    if not keep_colors:
        raise PaletteError("no colors found")
    if len(keep_colors) > MAX_COLORS:
        raise PaletteError(f"{len(keep_colors)} distinct colors; at most {MAX_COLORS} allowed")
    if sum(keep_counts) > _MAX_COUNT:
        raise PaletteError(f"the counts add up to more than {_MAX_COUNT}")
    return Palette.from_colors(np.array(keep_colors), np.array(keep_counts))


_HEX6 = re.compile(r"#?([0-9a-fA-F]{6})")
_HEX3 = re.compile(r"#([0-9a-fA-F]{3})")


def parse_hex(token: str) -> tuple[int, int, int] | None:
    """Parse ``#rrggbb``, ``rrggbb`` or ``#rgb``; None if ``token`` is none of them.

    The one reading of a hex color, shared by the palette files and ``--keep``.

    Parameters
    ----------
    token : str
        One color, without surrounding spaces.

    Returns
    -------
    tuple of 3 int or None
        The color's 8-bit red, green and blue.

    Examples
    --------
    >>> parse_hex("#ff8000"), parse_hex("0a0b0c"), parse_hex("#f80"), parse_hex("red")
    ((255, 128, 0), (10, 11, 12), (255, 136, 0), None)
    """
    if m := _HEX6.fullmatch(token):
        digits = m.group(1)
    elif m := _HEX3.fullmatch(token):
        digits = "".join(ch * 2 for ch in m.group(1))
    else:
        return None
    value = int(digits, 16)
    return (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF


def _strip_comment(line: str) -> str:
    """Drop a ``//`` or ``;`` comment (``#`` cannot mark comments: it starts colors)."""
    return re.split(r"//|;", line, maxsplit=1)[0].strip()


@_guarded
def parse_hex_lines(text: str) -> Palette:
    """Parse one hex color per line.

    Parameters
    ----------
    text : str
        Lines of ``#rrggbb``, ``rrggbb`` or ``#rgb`` (any case). Blank lines
        and comments starting with ``//`` or ``;`` (whole-line or trailing)
        are ignored.

    Returns
    -------
    Palette
        Colors in file order, repeated colors dropped, zero counts.

    Raises
    ------
    PaletteError
        ``line N: ...`` for a line that is not a hex color, or if there are no
        colors or more than 256.
    """
    colors = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw)
        if not line:
            continue
        rgb = parse_hex(line)
        if rgb is None:
            raise PaletteError(
                f"line {lineno}: expected a hex color like #1a2b3c, rrggbb or #abc, "
                f"got {_excerpt(line)}"
            )
        colors.append(rgb)
    return _build_palette(colors)


_GPL_HEADER_KEYS = ("name:", "columns:")


@_guarded
def parse_gpl(text: str) -> Palette:
    """Parse a GIMP palette (``.gpl``).

    Parameters
    ----------
    text : str
        Must start with a ``GIMP Palette`` line. ``Name:``/``Columns:``
        headers, ``#`` comments and blank lines are skipped; every other line
        must start with three integers ``0..255`` (the rest is the color name).

    Returns
    -------
    Palette
        Colors in file order, repeated colors dropped, zero counts.

    Raises
    ------
    PaletteError
        ``line N: ...`` for the first malformed line.
    """
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "GIMP Palette":
        raise PaletteError("line 1: expected the header 'GIMP Palette'")
    colors = []
    for lineno, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line or line.startswith("#") or line.lower().startswith(_GPL_HEADER_KEYS):
            continue
        colors.append(_parse_gpl_rgb(line, lineno))
    return _build_palette(colors)


def _parse_gpl_rgb(line: str, lineno: int) -> tuple[int, int, int]:
    """The leading ``r g b`` of a GPL color line."""
    fields = line.split(maxsplit=3)[:3]
    try:
        r, g, b = (int(f) for f in fields)
    except ValueError:
        r = g = b = -1  # reported below, like any out-of-range value
    if not all(0 <= v <= 255 for v in (r, g, b)):
        raise PaletteError(f"line {lineno}: expected three integers 0-255, got {_excerpt(line)}")
    return r, g, b


@_guarded
def parse_ase(data: bytes) -> Palette:
    """Parse an Adobe Swatch Exchange (``.ase``) file.

    Parameters
    ----------
    data : bytes
        The whole file. Color blocks may sit inside or outside groups; groups
        and unknown block types are skipped. RGB swatches are rounded to 8
        bits; Gray swatches (one value, 1 = white) become gray RGB.

    Returns
    -------
    Palette
        Colors in file order, repeated colors dropped, zero counts.

    Raises
    ------
    PaletteError
        For a bad signature or version, a truncated block, or a CMYK or LAB
        swatch (``block N: ...``), which cannot be converted without a color
        profile.
    """
    if len(data) < 12 or data[:4] != b"ASEF":
        raise PaletteError("not an ASE file: missing the 'ASEF' signature")
    major, minor, n_blocks = struct.unpack_from(">HHI", data, 4)
    if major != 1:
        raise PaletteError(f"unsupported ASE version {major}.{minor} (expected 1.x)")
    colors = []
    offset = 12
    for index in range(1, n_blocks + 1):
        if offset + 6 > len(data):
            raise PaletteError(f"block {index}: file is truncated (header says {n_blocks} blocks)")
        block_type, length = struct.unpack_from(">HI", data, offset)
        body = data[offset + 6 : offset + 6 + length]
        if len(body) != length:
            raise PaletteError(f"block {index}: file is truncated inside the block")
        offset += 6 + length
        if block_type == _ASE_COLOR:
            colors.append(_parse_ase_color(body, index))
    return _build_palette(colors)


# Values per ASE color model; CMYK and LAB are listed only to name them in errors.
_ASE_MODEL_VALUES: Final[dict[bytes, int]] = {b"RGB ": 3, b"Gray": 1, b"CMYK": 4, b"LAB ": 3}


def _parse_ase_color(body: bytes, index: int) -> tuple[int, int, int]:
    """One color entry body: name, 4-byte model, big-endian float32 values, uint16 type."""
    try:
        (units,) = struct.unpack_from(">H", body, 0)
        pos = 2 + 2 * units
        if pos + 4 > len(body):
            raise struct.error("name runs past the block")
        model = body[pos : pos + 4]
        n_values = _ASE_MODEL_VALUES.get(model)
        if n_values is None:
            raise PaletteError(f"block {index}: unknown color model {model!r}")
        values = struct.unpack_from(f">{n_values}f", body, pos + 4)
    except struct.error:
        raise PaletteError(f"block {index}: color entry is truncated") from None
    if model in (b"CMYK", b"LAB "):
        name = model.decode("ascii").strip()
        raise PaletteError(f"block {index}: {name} swatches are not supported; use RGB")
    rgb = values if model == b"RGB " else values * 3
    return _unit_floats_to_rgb8(rgb, index)


def _unit_floats_to_rgb8(values: Sequence[float], index: int) -> tuple[int, int, int]:
    """Map three floats in ``0..1`` to 8-bit ints, refusing NaN and out-of-range values."""
    # float32 storage of v/255 can land a hair outside 0..1; allow that much.
    tolerance = 1e-6
    if not all(math.isfinite(v) and -tolerance <= v <= 1 + tolerance for v in values):
        raise PaletteError(f"block {index}: color values must be in 0-1, got {list(values)}")
    r, g, b = (min(255, max(0, round(v * 255.0))) for v in values)
    return r, g, b


@_guarded
def parse_json_report(text: str) -> Palette:
    """Parse the colors of a quantize JSON report.

    Parameters
    ----------
    text : str
        JSON whose top level is either an object with a ``"colors"`` list
        (or a ``"palette"`` object holding one, or a ``"palette"`` list) or a
        bare list. Each entry has ``"hex"`` and/or ``"rgb"`` (they must agree
        if both are present) and optionally an integer ``"count"``.

    Returns
    -------
    Palette
        Colors in file order with their counts (0 where missing), repeated
        colors dropped.

    Raises
    ------
    PaletteError
        ``line N: invalid JSON ...`` or ``colors[i]: ...`` for a bad entry.
    """
    try:
        doc = json.loads(text, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise PaletteError(f"line {exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise PaletteError("invalid JSON: nested too deeply") from None
    entries = _json_color_list(doc)
    parsed = [_parse_json_entry(entry, i) for i, entry in enumerate(entries)]
    return _build_palette((rgb for rgb, _ in parsed), (count for _, count in parsed))


def _json_int(digits: str) -> int:
    """A JSON integer; one longer than any count can be is refused before conversion."""
    if len(digits.lstrip("-")) > len(str(_MAX_COUNT)):
        raise PaletteError(f"invalid JSON: a number of {len(digits)} digits is too large")
    return int(digits)


def _json_color_list(doc: Any) -> list[Any]:
    """Find the list of color entries in a parsed report."""
    if isinstance(doc, dict):
        palette = doc.get("palette")
        doc = doc.get("colors", palette.get("colors") if isinstance(palette, dict) else palette)
    if not isinstance(doc, list):
        raise PaletteError("JSON report has no 'colors' list")
    return doc


def _parse_json_entry(entry: Any, i: int) -> tuple[tuple[int, int, int], int]:
    """One ``{"hex"|"rgb", "count"?}`` entry as ``((r, g, b), count)``."""
    where = f"colors[{i}]"
    if not isinstance(entry, dict):
        raise PaletteError(f"{where}: expected an object with 'hex' or 'rgb'")
    from_hex = parse_hex(entry["hex"]) if isinstance(entry.get("hex"), str) else None
    if "hex" in entry and from_hex is None:
        raise PaletteError(f"{where}: 'hex' must look like #1a2b3c, got {_excerpt(entry['hex'])}")
    from_rgb = _json_rgb(entry["rgb"], where) if "rgb" in entry else None
    if from_hex is None and from_rgb is None:
        raise PaletteError(f"{where}: expected 'hex' or 'rgb'")
    if from_hex is not None and from_rgb is not None and from_hex != from_rgb:
        raise PaletteError(f"{where}: 'hex' and 'rgb' disagree")
    count = entry.get("count", 0)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= _MAX_COUNT:
        raise PaletteError(
            f"{where}: 'count' must be an integer from 0 to 2**63-1, got {_excerpt(count)}"
        )
    rgb = from_hex if from_hex is not None else from_rgb
    assert rgb is not None  # for mypy: one of the two was checked above
    return rgb, count


def _json_rgb(value: Any, where: str) -> tuple[int, int, int]:
    """Validate a JSON ``[r, g, b]`` list of integers ``0..255``."""
    ok = (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
    )
    if not ok:
        raise PaletteError(f"{where}: 'rgb' must be three integers 0-255, got {_excerpt(value)}")
    return value[0], value[1], value[2]


def read_palette(path: str | PathLike[str]) -> Palette:
    """Read a palette file given to ``--palette``.

    The format is recognized by content first (``ASEF`` signature, a
    ``GIMP Palette`` first line, JSON starting with ``{`` or ``[``), then by
    suffix (``.ase``, ``.gpl``, ``.json``); anything else is read as hex lines.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    Palette

    Raises
    ------
    PaletteError
        If the file cannot be read or parsed; the message starts with the
        path.  Only a regular file of at most
        `quantize.limits.MAX_PALETTE_FILE_BYTES` (1 MiB) is read: a FIFO,
        device or directory is refused before it is opened.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder, "brand.txt")
    ...     _ = path.write_text("#1d3557\\n#e63946  // accent\\n")
    ...     read_palette(path).hex
    ['#1d3557', '#e63946']
    """
    # Imported here: the file reader lives in the Pillow I/O layer, which
    # the palette value type must not load.
    from quantize.imageio import read_small_file

    p = Path(path)
    try:
        data = read_small_file(p, MAX_PALETTE_FILE_BYTES)
    except InputError as exc:
        raise PaletteError(f"{p}: cannot read palette file: {exc}") from None
    try:
        return _dispatch(data, p.suffix.lower())
    except PaletteError as exc:
        raise PaletteError(f"{p}: {exc}") from None


def _dispatch(data: bytes, suffix: str) -> Palette:
    """Parse a file's bytes with the first reader of `_READ_ORDER` that claims them.

    A reader claims a file by its content (`PaletteFormat.sniff`) or by its
    suffix; binary formats are asked before the bytes are decoded as UTF-8
    text for the others, and a file no reader claims is read by the
    fallback reader.
    """
    text: str | None = None
    for fmt in _READ_ORDER:
        if fmt.binary:
            content: str | bytes = data
        else:
            text = _decode(data) if text is None else text
            content = text
        if fmt.parse is not None and (
            suffix == fmt.suffix or (fmt.sniff is not None and fmt.sniff(content))
        ):
            return fmt.parse(content)
    assert _FALLBACK.parse is not None  # for mypy: a fallback reads
    return _FALLBACK.parse(_decode(data) if text is None else text)


def _decode(data: bytes) -> str:
    """A text palette file as text (a UTF-8 byte-order mark dropped)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        binary = " or ".join(f.name.upper() for f in _READ_ORDER if f.binary)
        raise PaletteError(f"not UTF-8 text (byte {exc.start}) and not an {binary} file") from None


# --------------------------------------------------------------------------- #
# The registry of palette file formats
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class PaletteFormat:
    """One palette file format: what ``--palette-format`` writes and ``--palette`` reads.

    Attributes
    ----------
    name : str
        Its name in ``--palette-format``; one of `quantize.vocabulary.PALETTE_FORMATS`.
    suffix : str
        File suffix of the written file, and a suffix that makes `read_palette` use `parse`.
    export : callable or None
        ``(palette, name) -> str | bytes``; None when quantize writes the file
        itself (``json``, the report).
    parse : callable or None
        ``str -> Palette`` (``bytes -> Palette`` when ``binary``), raising
        `PaletteError`; None for a format quantize does not read.
    sniff : callable or None
        Whether a file's content (text, or bytes when ``binary``) is in this
        format whatever its suffix; None to recognise it by suffix only.
    binary : bool
        `parse` and `sniff` take the raw bytes instead of UTF-8 text.
    fallback : bool
        The reader of files that no reader claims (exactly one format).
    """

    name: str
    suffix: str
    export: Callable[[Palette, str], str | bytes] | None
    # Any: str, or bytes when ``binary``.
    parse: Callable[[Any], Palette] | None
    sniff: Callable[[Any], bool] | None = None
    binary: bool = False
    fallback: bool = False


def _sniff_ase(data: bytes) -> bool:
    return data.startswith(b"ASEF")


def _sniff_gpl(text: str) -> bool:
    return text.lstrip().startswith("GIMP Palette")


def _sniff_json(text: str) -> bool:
    return text.lstrip().startswith(("{", "["))


# Declared in the order `read_palette` asks the readers (binary formats first,
# strict signatures before loose ones), like Pillow's plugin registration order.
_DECLARED: Final[tuple[PaletteFormat, ...]] = (
    PaletteFormat("ase", ".ase", to_ase, parse_ase, _sniff_ase, binary=True),
    PaletteFormat("gpl", ".gpl", to_gpl, parse_gpl, _sniff_gpl),
    PaletteFormat("json", ".json", None, parse_json_report, _sniff_json),
    PaletteFormat("css", ".css", to_css, None),
    PaletteFormat("txt", ".txt", _txt_exporter, parse_hex_lines, fallback=True),
)

#: Every palette file format by name, in the order of `quantize.vocabulary.PALETTE_FORMATS`.
PALETTE_REGISTRY: Final[Mapping[str, PaletteFormat]] = registry(
    "palette format", PALETTE_FORMATS, _DECLARED
)
_READ_ORDER: Final[tuple[PaletteFormat, ...]] = tuple(
    sorted((f for f in _DECLARED if f.parse is not None), key=lambda f: not f.binary)
)
(_FALLBACK,) = (f for f in _DECLARED if f.fallback)

#: Exporters by format name; each takes ``(palette, name)``.  A view of `PALETTE_REGISTRY`.
EXPORTERS: Final[Mapping[str, Callable[[Palette, str], str | bytes]]] = {
    name: f.export for name, f in PALETTE_REGISTRY.items() if f.export is not None
}

#: File suffix for each export format.  A view of `PALETTE_REGISTRY`.
SUFFIXES: Final[Mapping[str, str]] = {name: PALETTE_REGISTRY[name].suffix for name in EXPORTERS}

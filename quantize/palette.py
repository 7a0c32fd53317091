"""Palettes: the `Palette` value type.

A palette is an ordered list of 1..256 sRGB colors, each with the number of
pixels that were mapped to it (all zeros for a palette read from a file that
carries no counts).  This module holds the value type, its orders (count,
hue, lightness), its colors as hex (and the one reading of a hex color,
`parse_hex`) and its colors as the JSON report lists them.

The palette file formats (exporters, parsers, `read_palette` and the
`PALETTE_REGISTRY` of formats) live in :mod:`quantize.palette_formats`.
Nothing here imports Pillow: the swatch image is drawn by
:func:`quantize.render.render_swatch`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantize.colors import srgb_to_lab
from quantize.histogram import pack_rgb
from quantize.limits import MAX_COLORS
from quantize.vocabulary import SORT_KEYS, SortKey

__all__ = [
    "GRAY_SATURATION",
    "MAX_COLORS",
    "Palette",
    "parse_hex",
    "percent_labels",
    "to_json_colors",
]

#: Colors whose HSV saturation is below this count as grays when sorting by hue.
#: uint8 colors cannot have a saturation between 0 and 1/255, so this also
#: catches near-grays such as (100, 101, 99) whose hue is mere noise.
GRAY_SATURATION: Final[float] = 0.02


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


def percent_labels(palette: Palette, decimals: int) -> list[str]:
    """Per-color ``'12.34%'`` strings, or empty strings when the palette has no counts."""
    if palette.total == 0:
        return [""] * palette.size
    return [f"{100.0 * f:.{decimals}f}%" for f in palette.fractions]


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

"""The settings of one quantization, defined once: fields, checks and report fields.

`QuantizeOptions` carries what decides the palette and how pixels are mapped
to it (size, clustering, color space, order, dithering, kept colors, a given
palette).  It is checked once, at the boundary (`QuantizeOptions.validate`,
called by `quantize.quantize_image`), and it says what the report records
about it (`QuantizeOptions.report_fields`).  `quantize.pipeline.RunOptions`
extends it with the output settings of one file, and
`quantize.batch.BatchOptions` holds a ``RunOptions`` with the settings of a
batch.

Like `quantize.vocabulary`, this module imports nothing heavy at import time
(the CLI builds its options from it at ``--help`` speed); numpy is imported
only to check kept colors.

To add an option: a field here (its check in `validate`, and in
`report_fields` when the report should show it), its ``click.option`` in
`quantize.cli`, the README's option table, and the code that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from quantize.limits import MAX_COLORS, MAX_N_INIT, MIN_COLORS
from quantize.vocabulary import (
    ALGORITHMS,
    DITHER_METHODS,
    SORT_KEYS,
    SPACES,
    Algorithm,
    Dither,
    SortKey,
    Space,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

    from quantize.autok import Target
    from quantize.palette import Palette

__all__ = ["QuantizeOptions", "check_keep"]


@dataclass(frozen=True)
class QuantizeOptions:
    """How an image is quantized: the palette's size and how it is found and applied.

    The fields are the keyword arguments of `quantize.quantize_image` (see
    there for each one's meaning); `as_kwargs` gives them back as such.

    Attributes
    ----------
    colors : int or "auto"
        Palette size, `quantize.limits.MIN_COLORS` to `MAX_COLORS`, or "auto".
    algorithm, n_init, max_iter, seed, space, sort, dither, dither_strength
        Clustering and mapping settings, checked by `validate`.
    target : Target or None
        Quality goal of ``colors="auto"``.
    palette : Palette or None
        Recolor with these colors instead of clustering (``colors`` is then
        not checked: the palette decides the size).
    keep : array_like of int, shape (n, 3), or None
        Colors that must stay in the palette; `kept_colors` gives them checked,
        as a uint8 array.
    """

    colors: int | Literal["auto"] = 16
    algorithm: Algorithm = "kmeans"
    n_init: int | Literal["auto"] = "auto"
    max_iter: int = 300
    seed: int = 0
    space: Space = "rgb"
    sort: SortKey = "count"
    dither: Dither = "none"
    dither_strength: float = 1.0
    target: Target | None = None
    palette: Palette | None = None
    keep: ArrayLike | None = None

    def validate(self) -> None:
        """Check every setting, alone and with the others.

        Raises
        ------
        ValueError
            The first setting out of its range or vocabulary, or settings that
            do not go together, with a one-line message naming it.
        """
        # With a palette, colors is ignored (the palette may even have a single color).
        colors = self.colors if self.palette is None else MIN_COLORS
        if colors != "auto" and not (
            isinstance(colors, int) and MIN_COLORS <= colors <= MAX_COLORS
        ):
            raise ValueError(f"colors must be between {MIN_COLORS} and {MAX_COLORS}, got {colors}")
        if self.algorithm not in ALGORITHMS:
            known = " or ".join(repr(a) for a in ALGORITHMS)
            raise ValueError(f"algorithm must be {known}, got {self.algorithm!r}")
        n_init = self.n_init
        if n_init != "auto" and (not isinstance(n_init, int) or not 1 <= n_init <= MAX_N_INIT):
            raise ValueError(
                f"n_init must be an integer from 1 to {MAX_N_INIT} or 'auto', got {n_init!r}"
            )
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be positive, got {self.max_iter}")
        if self.space not in SPACES:
            raise ValueError(f"space must be one of {', '.join(SPACES)}, got {self.space!r}")
        if self.sort not in SORT_KEYS:
            raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)}, got {self.sort!r}")
        self._validate_mapping()
        self.kept_colors()

    def _validate_mapping(self) -> None:
        """Dithering and the quality target: each alone, and with ``colors``."""
        if self.dither not in DITHER_METHODS:
            known = ", ".join(DITHER_METHODS)
            raise ValueError(f"dither must be one of {known}, got {self.dither!r}")
        strength = self.dither_strength
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"dither_strength must be between 0 and 1, got {strength}")
        if self.dither == "floyd-steinberg" and strength != 1.0:
            raise ValueError("Floyd-Steinberg dithering has no strength setting (only 1)")
        if self.target is not None and self.colors != "auto":
            raise ValueError("a quality target needs colors='auto'")

    def kept_colors(self) -> NDArray[np.uint8] | None:
        """``keep`` checked (`check_keep`): an (n, 3) uint8 array, or None when none is kept.

        With a ``palette`` they are added to it, so ``colors`` does not limit them.
        """
        return check_keep(self.keep, self.colors if self.palette is None else "auto")

    def report_fields(self, n_init: int) -> dict[str, Any]:
        """The settings as the report records them, in report order.

        Parameters
        ----------
        n_init : int
            The clustering runs actually made (0 when nothing was clustered),
            which the report records instead of the ``n_init`` asked for.

        Returns
        -------
        dict
            JSON-ready: ``colors_requested``, ``algorithm``, ``space``,
            ``dither``, ``dither_strength`` (None without dithering),
            ``seed``, ``n_init``, ``max_iter``, ``sort``, and ``keep`` (hex
            colors) when colors are kept.
        """
        report: dict[str, Any] = {
            "colors_requested": self.colors,
            "algorithm": self.algorithm,
            "space": self.space,
            "dither": self.dither,
            "dither_strength": None if self.dither == "none" else self.dither_strength,
            "seed": self.seed,
            "n_init": n_init,
            "max_iter": self.max_iter,
            "sort": self.sort,
        }
        kept = self.kept_colors()
        if kept is not None:
            from quantize.palette import Palette

            report["keep"] = Palette.from_colors(kept).hex
        return report

    def as_kwargs(self) -> dict[str, Any]:
        """The fields of `QuantizeOptions` (not of a subclass) as keyword arguments.

        ``quantize_image(image, **options.as_kwargs())`` quantizes with these
        options.
        """
        return {f.name: getattr(self, f.name) for f in fields(QuantizeOptions)}


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
    # Imported here: options are built at --help speed, without numpy.
    import numpy as np

    from quantize.histogram import pack_rgb

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

"""A palette for a table of distinct colors: fitted by clustering, or given.

The arrays-in, `Palette`-out step below the one-image algorithm
(`quantize.pipeline`): `fit_palette` clusters a weighted color table and
rounds the centers to an exact 8-bit palette, `apply_palette` maps every
table color to its nearest palette color.  Kept colors (``--keep``) are
fixed centers of the clustering (`quantize.fixed`); the helpers that check
them and put unused ones back into a palette are here too.  No Pillow, no
files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from quantize import colors as cs
from quantize import reduce
from quantize.cluster import cluster_centers, resolve_n_init
from quantize.grid import snap_centers
from quantize.histogram import ColorTable, pack_rgb
from quantize.kmeans import check_random_state
from quantize.palette import Palette
from quantize.reduce import ReducedTable, is_huge, nearest_labels, nearest_palette, reduce_table
from quantize.vocabulary import Algorithm


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
        Colors the palette must hold exactly (see `quantize.options.check_keep`): fixed
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
    if not is_huge(table.n_colors):
        # Onto the palette grid against the exact colors (not a reduced table's means).
        centers = snap_centers(x, w, centers, space)
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
        ordered, remap = trim_and_sort(palette.colors, pixels)
        # Only dropped colors map to -1, and no row has one.
        return PaletteFit(ordered, np.maximum(remap, 0).astype(np.uint8)[small], 0)
    labels = nearest_palette(table.colors, palette.colors, space, points=points)
    counts = np.bincount(labels, weights=table.counts, minlength=palette.size).astype(np.int64)
    ordered, remap = trim_and_sort(palette.colors, counts)
    return PaletteFit(ordered, remap[labels], 0)


def trim_and_sort(
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


# --------------------------------------------------------------------------
# Kept colors (``keep``): fixed centers of the clustering.


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
    return PaletteFit(restore_kept(chosen.palette, keep), chosen.labels, fit.n_iter, made)


def union_kept(keep: NDArray[np.uint8], palette: Palette) -> Palette:
    """A given palette with the kept colors added (first, where missing)."""
    colors = _unique_rows(np.concatenate([keep, palette.colors]))
    return Palette(colors, np.zeros(len(colors), np.int64))


def restore_kept(palette: Palette, keep: NDArray[np.uint8]) -> Palette:
    """``palette`` with the kept colors no pixel uses appended, count 0.

    Appending leaves every existing index valid.
    """
    missing = keep[~np.isin(pack_rgb(keep), pack_rgb(palette.colors))]
    if missing.size == 0:
        return palette
    colors = np.concatenate([palette.colors, missing])
    counts = np.concatenate([palette.counts, np.zeros(len(missing), np.int64)])
    return Palette(colors, counts)


def unused_kept(palette: Palette, keep: NDArray[np.uint8]) -> list[str]:
    unused = np.isin(pack_rgb(palette.colors), pack_rgb(keep)) & (palette.counts == 0)
    return [f"kept color {h} is used by no pixel" for h in np.asarray(palette.hex)[unused]]

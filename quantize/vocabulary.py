"""Every choice list of quantize, defined once: the names the CLI offers and the library checks.

Each list is a ``Literal`` type (for annotations) and the tuple of its
values, taken from that type, in the order the CLI and the README list them.
The Click layer builds its ``click.Choice``s from these tuples, so this module
imports nothing heavy (no numpy, no Pillow).  The registries that give the
names a meaning check against the same tuples when they are built
(`registry`): `quantize.colors.COLOR_SPACES` for spaces and
`quantize.palette.PALETTE_REGISTRY` for palette file formats, so a name
missing on either side fails at import, never silently.
``tests/test_vocabulary.py`` and ``tests/test_docs.py`` check the rest
(the core's literals, the image formats, the README).

To add a choice: add its value to the ``Literal`` here, then the entry or
branch that implements it, then the README's option table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Literal, Protocol, TypeVar, get_args

__all__ = [
    "ALGORITHMS",
    "DITHER_METHODS",
    "FORMAT_ALIASES",
    "IMAGE_FORMATS",
    "PALETTE_FORMATS",
    "SORT_KEYS",
    "SPACES",
    "STATUSES",
    "Algorithm",
    "Dither",
    "DitherMethod",
    "ImageFormat",
    "PaletteFormatName",
    "SortKey",
    "Space",
    "Status",
    "registry",
]

#: Color spaces the clustering runs in (``--space``); see `quantize.colors`.
Space = Literal["rgb", "lab", "oklab"]
SPACES: Final[tuple[Space, ...]] = get_args(Space)

#: Clustering algorithms (``--algorithm``).
Algorithm = Literal["kmeans", "minibatch"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = get_args(Algorithm)

#: Palette orders (``--sort``); see `quantize.palette.Palette.order`.
SortKey = Literal["count", "hue", "lightness"]
SORT_KEYS: Final[tuple[SortKey, ...]] = get_args(SortKey)

#: Dithering methods (``--dither-method``).
DitherMethod = Literal["floyd-steinberg", "ordered"]
#: How pixels are mapped to the palette: no dithering, or a `DitherMethod`.
Dither = Literal["none", DitherMethod]
DITHER_METHODS: Final[tuple[Dither, ...]] = get_args(Dither)

#: Output image formats (``--format``); `quantize.imageio.FORMATS` says how each is written.
ImageFormat = Literal["png", "webp", "gif", "tiff", "bmp", "jpeg"]
IMAGE_FORMATS: Final[tuple[ImageFormat, ...]] = get_args(ImageFormat)
#: Other spellings of image formats, as file suffixes have them (``--format jpg``, ``a.tif``).
FORMAT_ALIASES: Final[Mapping[str, ImageFormat]] = {"jpg": "jpeg", "tif": "tiff"}

#: What became of one image in a batch.
Status = Literal["written", "skipped", "failed", "interrupted"]
STATUSES: Final[tuple[Status, ...]] = get_args(Status)

#: Palette file formats (``--palette-format``): ``json`` is the report; the
#: others are exported by `quantize.palette.PALETTE_REGISTRY`.
PaletteFormatName = Literal["json", "gpl", "css", "ase", "txt"]
PALETTE_FORMATS: Final[tuple[PaletteFormatName, ...]] = get_args(PaletteFormatName)


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_Entry = TypeVar("_Entry", bound=_Named)


def registry(kind: str, names: Iterable[str], entries: Iterable[_Entry]) -> dict[str, _Entry]:
    """Index ``entries`` by name, in the order of ``names``, refusing any mismatch.

    Parameters
    ----------
    kind : str
        What the entries are, for the error message (``"color space"``).
    names : iterable of str
        The vocabulary: every name must have exactly one entry.
    entries : iterable of objects with a ``name``

    Returns
    -------
    dict
        ``{name: entry}`` in the order of ``names``.

    Raises
    ------
    ValueError
        A name without an entry, an entry whose name is not in the
        vocabulary, or two entries of one name.
    """
    by_name: dict[str, _Entry] = {}
    for entry in entries:
        if entry.name in by_name:
            raise ValueError(f"two {kind} entries are named {entry.name!r}")
        by_name[entry.name] = entry
    wanted = tuple(names)
    missing = [n for n in wanted if n not in by_name]
    extra = [n for n in by_name if n not in wanted]
    if missing or extra:
        raise ValueError(
            f"the {kind} entries and quantize.vocabulary disagree: "
            f"no entry for {missing}, not in the vocabulary: {extra}"
        )
    return {name: by_name[name] for name in wanted}

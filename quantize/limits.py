"""Limits on what quantize accepts, defined once for the CLI and the library.

This module imports nothing heavy, so the Click layer can build its option
types from it without loading numpy or Pillow.  The numbers are defined here;
the choice lists (spaces, algorithms, formats ...) in `quantize.vocabulary`,
re-exported here so that one import gives everything quantize accepts.
"""

from __future__ import annotations

from typing import Final

from quantize.vocabulary import (
    ALGORITHMS,
    DITHER_METHODS,
    FORMAT_ALIASES,
    IMAGE_FORMATS,
    PALETTE_FORMATS,
    SORT_KEYS,
    SPACES,
)

__all__ = [
    "ALGORITHMS",
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_MAX_PIXELS",
    "DITHER_METHODS",
    "EXCERPT_CHARS",
    "FORMAT_ALIASES",
    "IMAGE_FORMATS",
    "MAX_COLORS",
    "MAX_N_INIT",
    "MAX_PALETTE_FILE_BYTES",
    "MIN_COLORS",
    "PALETTE_FORMATS",
    "SORT_KEYS",
    "SPACES",
]

#: Smallest and largest palette size (an 8-bit indexed image holds 256 colors).
MIN_COLORS: Final[int] = 2
MAX_COLORS: Final[int] = 256

#: Most k-means restarts (``--n-init``).  The restarts run in lockstep, so
#: their memory and time grow with the count; beyond a few dozen the best
#: inertia no longer improves measurably on images.
MAX_N_INIT: Final[int] = 100

#: Largest palette file read (``--palette``, a reused ``palette.json``): a
#: 256-color palette is a few KB in every supported format.
MAX_PALETTE_FILE_BYTES: Final[int] = 1 << 20

#: Default of ``--max-frames``: most animation frames decoded from one input.
#: Every frame costs time and memory of its own, however small it is.
DEFAULT_MAX_FRAMES: Final[int] = 10_000

#: Pillow's default pixel limit (``PIL.Image.MAX_IMAGE_PIXELS``), without importing Pillow.
DEFAULT_MAX_PIXELS: Final[int] = 89_478_485

#: Characters of a file's content quoted in an error message.
EXCERPT_CHARS: Final[int] = 40

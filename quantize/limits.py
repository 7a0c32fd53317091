"""Limits on what quantize accepts, defined once for the CLI and the library.

This module imports nothing heavy, so the Click layer can build its option
types from it without loading numpy or Pillow.
"""

from __future__ import annotations

from typing import Final

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

"""The command's own option types: Click parameter types for values Click cannot parse.

Part of the command layer; numpy and Pillow are imported only when a value
needs them, so that ``quantize --help`` stays fast.
"""

from __future__ import annotations

import math
from typing import Any

import click

from quantize.vocabulary import PALETTE_FORMATS


class FormatList(click.ParamType):
    """A comma-separated list of palette formats, returned as a tuple without repeats."""

    name = ",".join(PALETTE_FORMATS)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        items = [item.strip() for item in str(value).split(",")]
        for item in items:
            if item not in PALETTE_FORMATS:
                known = ", ".join(PALETTE_FORMATS)
                self.fail(f"{item!r} is not a palette format (use {known})", param, ctx)
        return tuple(dict.fromkeys(items))


#: Where ``--keep @FILE`` leaves FILE in the context's ``meta``.
KEEP_FILE = "quantize.keep_file"


class KeepColors(click.ParamType):
    """``--keep``: comma-separated hex colors or ``@FILE``, as an (n, 3) uint8 array.

    A color given twice, or a token that is not a color, is a usage error.
    A file is read as ``--palette`` reads it.
    """

    name = "COLORS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        import numpy as np

        from quantize.palette import parse_hex
        from quantize.palette_formats import PaletteError, read_palette

        if not isinstance(value, str):
            return value
        if value.startswith("@"):
            if ctx is not None:  # an input of the run: never to become an output
                ctx.meta[KEEP_FILE] = value[1:]
            try:
                return read_palette(value[1:]).colors.copy()
            except PaletteError as exc:
                self.fail(str(exc), param, ctx)
        colors: list[tuple[int, int, int]] = []
        for token in (t.strip() for t in value.split(",")):
            rgb = parse_hex(token)
            if rgb is None:
                self.fail(f"{token!r} is not a color (use #rrggbb)", param, ctx)
            if rgb in colors:
                self.fail(f"{token} is given twice", param, ctx)
            colors.append(rgb)
        return np.array(colors, dtype=np.uint8)


class IntOrAuto(click.ParamType):
    """An integer from ``low`` to ``high`` (no upper bound if None), or the word ``auto``."""

    name = "INTEGER|auto"

    def __init__(self, low: int, high: int | None = None) -> None:
        self.low, self.high = low, high
        self.what = "a positive integer" if high is None else f"an integer from {low} to {high}"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "auto":
            return value
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is not {self.what} or 'auto'", param, ctx)
        if number < self.low or (self.high is not None and number > self.high):
            if self.high is None:
                self.fail(f"{value!r} is not {self.what} or 'auto'", param, ctx)
            self.fail(
                f"{number} is not in the range {self.low}<=x<={self.high} (or 'auto')", param, ctx
            )
        return number


class ColorParam(click.ParamType):
    """A color as Pillow spells it: ``white``, ``#ffeedd``, ``rgb(1,2,3)``."""

    name = "COLOR"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        from PIL import ImageColor

        try:
            rgb = ImageColor.getrgb(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a color (try white, black or #rrggbb)", param, ctx)
        return tuple(rgb[:3])


class FiniteFloatRange(click.FloatRange):
    """A float range that also refuses nan and inf, which every comparison lets through."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number

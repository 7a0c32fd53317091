"""ImageQuantizer: one object per image, one method per mode, state shared between calls."""

from __future__ import annotations

import numpy as np
import pytest

from quantize import quantize_image
from quantize.imageio import load_image
from quantize.options import QuantizeOptions
from quantize.palette import Palette
from quantize.pipeline import ImageQuantizer
from quantize.vocabulary import Dither
from tests.helpers import gradient_rgb

KEEP = np.array([[255, 0, 0], [1, 2, 3]], dtype=np.uint8)


def _same(a: Palette, b: Palette) -> None:
    np.testing.assert_array_equal(a.colors, b.colors)
    np.testing.assert_array_equal(a.counts, b.counts)


@pytest.mark.parametrize("dither", ["none", "ordered"])
def test_every_mode_of_one_object_matches_quantize_image(dither: Dither) -> None:
    image = gradient_rgb(48, 32)
    one = ImageQuantizer(load_image(image), QuantizeOptions(space="lab", dither=dither))
    # One object serves several modes in turn: what they cache does not leak between them.
    fixed = one.fixed_k(6)
    auto, search = one.auto_k()
    given = one.given_palette(fixed.palette)
    by_k = quantize_image(image, 6, space="lab", dither=dither)
    _same(one.in_order(fixed, "count")[0], by_k.palette)
    by_auto = quantize_image(image, "auto", space="lab", dither=dither)
    _same(one.in_order(auto, "count")[0], by_auto.palette)
    assert by_auto.k_auto is not None and search.chosen == by_auto.k_auto.chosen
    by_palette = quantize_image(image, palette=fixed.palette, space="lab", dither=dither)
    _same(one.in_order(given, "count")[0], by_palette.palette)


def test_kept_colors_are_in_every_mode_and_unused_ones_are_reported() -> None:
    image = gradient_rgb(48, 32)
    one = ImageQuantizer(load_image(image), QuantizeOptions(keep=KEEP))
    for best in (one.fixed_k(5), one.auto_k()[0], one.given_palette(Palette.from_colors(KEEP))):
        hexes = set(best.palette.hex)
        assert {"#ff0000", "#010203"} <= hexes
    assert any("#010203" in w for w in one.warnings)


def test_kept_colors_that_do_not_fit_are_refused() -> None:
    one = ImageQuantizer(load_image(gradient_rgb(48, 32)), QuantizeOptions(keep=KEEP))
    with pytest.raises(ValueError, match="do not fit"):
        one.fixed_k(1)

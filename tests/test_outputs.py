"""The output-name rule and its inverse, which the folder scan relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from quantize.encode import FORMATS
from quantize.outputs import default_stem, is_own_output, plan_outputs
from quantize.palette_formats import SUFFIXES
from quantize.pipeline import RunOptions

SIZES: list[int | Literal["auto"]] = [*range(2, 257), "auto"]
#: Input stems that are hard on a name pattern: dots, dashes, a "-k" of their own.
STEMS = ["photo", "a.b", "my-kite", "x-k3", "photo-k16", "-k", "é 1"]


@pytest.mark.parametrize("stem", STEMS)
def test_every_name_the_plan_gives_is_recognised_as_an_output(stem: str, tmp_path: Path) -> None:
    source = tmp_path / f"{stem}.jpg"
    for colors in SIZES:
        for fmt in FORMATS:
            opts = RunOptions(
                colors=colors,
                fmt=fmt,
                palette_formats=tuple(SUFFIXES),
                swatch=True,
                plot=True,
            )
            plan = plan_outputs(source, None, opts)
            assert plan.image.stem.startswith(default_stem(source, colors))
            for path in plan.paths:
                assert is_own_output(path.name, {stem}), path.name


@pytest.mark.parametrize("colors", [2, 16, 256, "auto"])
def test_the_stem_alone_or_another_images_outputs_are_not_recognised(colors: int | str) -> None:
    stem = default_stem(Path("photo.png"), colors)
    assert not is_own_output(stem, {"photo"})  # no suffix: not a name the plan gives
    assert not is_own_output(f"{stem}.png", {"other"})
    assert not is_own_output(f"{stem}.png", {"photo-k"})


@pytest.mark.parametrize(
    "name",
    [
        "photo.png",
        "photo-16.png",
        "photo-k.png",
        "photo-kx.png",
        "photo-k16x.png",
        "photo-kAuto.png",
    ],
)
def test_names_the_rule_does_not_make_are_not_outputs(name: str) -> None:
    assert not is_own_output(name, {"photo"})

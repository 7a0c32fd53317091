"""One vocabulary: the choice lists, the registries behind them and the CLI agree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import click
import numpy as np
import pytest

from quantize import (
    cluster,
    colors,
    dither,
    encode,
    limits,
    options,
    palette,
    palette_formats,
    pipeline,
)
from quantize.cli import quantize_command
from quantize.vocabulary import (
    ALGORITHMS,
    DITHER_METHODS,
    FORMAT_ALIASES,
    IMAGE_FORMATS,
    PALETTE_FORMATS,
    SORT_KEYS,
    SPACES,
    registry,
)


def cli_choices(name: str) -> tuple[str, ...]:
    (param,) = (p for p in quantize_command.params if p.name == name)
    assert isinstance(param.type, click.Choice)
    return tuple(param.type.choices)


def test_the_registries_name_the_vocabulary_in_its_order() -> None:
    assert tuple(colors.COLOR_SPACES) == colors.SPACES == SPACES
    assert tuple(palette_formats.PALETTE_REGISTRY) == PALETTE_FORMATS
    assert tuple(encode.FORMATS) == IMAGE_FORMATS


def test_the_core_literals_are_the_vocabulary() -> None:
    # cluster.py keeps its own Literal for now; it must say the same.
    assert get_args(cluster.Algorithm) == get_args(pipeline.Algorithm) == ALGORITHMS
    assert dither.DITHER_METHODS == DITHER_METHODS
    # The sort check moved from the pipeline to the options.
    assert options.SORT_KEYS is SORT_KEYS
    assert limits.SPACES is SPACES and limits.PALETTE_FORMATS is PALETTE_FORMATS


def test_the_cli_offers_the_vocabulary() -> None:
    assert cli_choices("space") == SPACES
    assert cli_choices("algorithm") == ALGORITHMS
    assert cli_choices("sort") == SORT_KEYS
    assert cli_choices("dither_method") == tuple(m for m in DITHER_METHODS if m != "none")
    assert cli_choices("fmt") == (*IMAGE_FORMATS, *FORMAT_ALIASES)


def test_every_image_format_and_alias_is_a_suffix() -> None:
    expected = {f".{n}": n for n in IMAGE_FORMATS} | {f".{a}": n for a, n in FORMAT_ALIASES.items()}
    assert expected == encode.SUFFIX_FORMATS
    assert set(FORMAT_ALIASES.values()) <= set(IMAGE_FORMATS)


def test_exporters_and_suffixes_are_views_of_the_palette_registry() -> None:
    registered = palette_formats.PALETTE_REGISTRY
    assert {n: f.export for n, f in registered.items() if f.export} == palette_formats.EXPORTERS
    assert {n: registered[n].suffix for n in palette_formats.EXPORTERS} == palette_formats.SUFFIXES
    assert [f.name for f in registered.values() if f.fallback] == ["txt"]
    # json is the report, written by quantize itself, and read back.
    assert registered["json"].export is None and registered["json"].parse is not None


@dataclass(frozen=True)
class Entry:
    name: str


def test_registry_orders_by_the_vocabulary() -> None:
    assert list(registry("thing", ["b", "a"], [Entry("a"), Entry("b")])) == ["b", "a"]


@pytest.mark.parametrize(
    ("names", "entries", "message"),
    [
        (["a", "b"], [Entry("a")], r"no entry for \['b'\]"),
        (["a"], [Entry("a"), Entry("c")], r"not in the vocabulary: \['c'\]"),
        (["a"], [Entry("a"), Entry("a")], "two thing entries are named 'a'"),
    ],
)
def test_registry_refuses_any_mismatch(
    names: list[str], entries: list[Entry], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        registry("thing", names, entries)


@pytest.mark.parametrize("space", SPACES)
def test_each_space_fast_8bit_path_is_exact(space: str) -> None:
    entry = colors.COLOR_SPACES[space]
    rgb8 = np.random.default_rng(5).integers(0, 256, size=(5000, 3), dtype=np.uint8)
    expected = entry.from_srgb(rgb8 / 255.0)
    assert np.array_equal(colors.rgb8_to_space(rgb8, space), expected)
    if entry.from_rgb8 is not None:
        assert np.array_equal(entry.from_rgb8(rgb8), expected)


def test_an_unknown_space_never_falls_through() -> None:
    rgb8 = np.zeros((2, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="unknown color space 'no-such-space'"):
        colors.rgb8_to_space(rgb8, "no-such-space")
    with pytest.raises(ValueError, match="unknown color space"):
        colors.to_space(rgb8, ["lab"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("suffix", "content", "parsed_as"),
    [
        # A recognisable content wins over the suffix, strict signatures first...
        (".txt", b"GIMP Palette\n1 2 3\n", "gpl"),
        (".json", b"GIMP Palette\n1 2 3\n", "gpl"),
        (".txt", b'{"colors": [{"hex": "#010203"}]}', "json"),
        # ... and a suffix claims a file whose content no format recognises.
        (".gpl", b'{"colors": []}', "gpl"),
        (".ase", b"#010203\n", "ase"),
        (".pal", b"#010203\n", "txt"),
    ],
)
def test_read_palette_asks_the_readers_in_their_order(
    tmp_path: Path, suffix: str, content: bytes, parsed_as: str
) -> None:
    fmt = palette_formats.PALETTE_REGISTRY[parsed_as]
    assert fmt.parse is not None
    path = tmp_path / f"p{suffix}"
    path.write_bytes(content)
    expected = _outcome(lambda: fmt.parse(content if fmt.binary else content.decode()))
    assert _outcome(lambda: palette_formats.read_palette(path)) == expected


def _outcome(call: Callable[[], palette.Palette]) -> palette.Palette | str:
    """The palette, or the error message without the path that read_palette puts first."""
    try:
        return call()
    except palette_formats.PaletteError as exc:
        return str(exc).split(": ", 1)[1] if str(exc).startswith("/") else str(exc)

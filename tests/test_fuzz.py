"""Property-based fuzzing: hostile palette files and image files fail with one clear line.

Every failure must be a `QuantizeError` whose message is a single line (what
the CLI prints after ``quantize: error: PATH:``), never another exception.
The examples are derandomized, so every run tries the same inputs and CI
cannot be flaky; the example counts keep the whole file to a few seconds.
"""

from __future__ import annotations

import functools
import io
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from quantize.errors import QuantizeError
from quantize.imageio import LoadedImage, load_image
from quantize.palette import Palette, to_json_colors
from quantize.palette_formats import (
    PaletteError,
    parse_ase,
    parse_gpl,
    parse_hex_lines,
    parse_json_report,
    read_palette,
    to_ase,
    to_gpl,
    to_txt,
)

FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow],
)


def fails_cleanly(call: Callable[[], object]) -> object:
    """Run ``call``; any failure must be a QuantizeError with a one-line message."""
    try:
        return call()
    except QuantizeError as exc:
        message = str(exc)
        assert message, f"{type(exc).__name__} without a message"
        assert "\n" not in message and "\r" not in message, message
        assert len(message) < 400, message
        return exc


# --------------------------------------------------------------------------- #
# Palette parsers
# --------------------------------------------------------------------------- #

_PALETTE = Palette.from_colors([[0, 0, 0], [255, 128, 1], [12, 200, 99]], [5, 3, 1])
_VALID_TEXTS = [
    to_gpl(_PALETTE, "fuzz"),
    to_txt(_PALETTE),
    json.dumps({"colors": to_json_colors(_PALETTE)}),
]
_VALID_ASE = to_ase(_PALETTE, "fuzz")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["hex", "rgb", "count", "colors", "palette"]), children)
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` with a few bytes replaced, inserted or cut off."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "replace" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


@FUZZ
@given(st.text(max_size=300))
@example("[" * 100_000)
@example("#" + "1" * 5000)
def test_text_parsers_fail_cleanly(text: str) -> None:
    for parse in (parse_hex_lines, parse_gpl, parse_json_report):
        fails_cleanly(functools.partial(parse, text))
    fails_cleanly(lambda: parse_gpl("GIMP Palette\n" + text))


@FUZZ
@given(json_values)
@example([{"hex": "#000000", "count": 2**70}])
@example({"colors": [{"rgb": [1, 2, 3], "count": 2**62}, {"rgb": [1, 2, 4], "count": 2**62}]})
def test_json_reports_fail_cleanly(doc: object) -> None:
    text = json.dumps(doc)
    result = fails_cleanly(lambda: parse_json_report(text))
    assert isinstance(result, Palette | PaletteError)


@FUZZ
@given(st.sampled_from(_VALID_TEXTS).flatmap(lambda t: mutated(t.encode())))
def test_mutated_text_palettes_fail_cleanly(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    for parse in (parse_hex_lines, parse_gpl, parse_json_report):
        fails_cleanly(functools.partial(parse, text))


@FUZZ
@given(st.binary(max_size=200) | mutated(_VALID_ASE))
def test_ase_parser_fails_cleanly(data: bytes) -> None:
    fails_cleanly(lambda: parse_ase(data))


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    # One folder for every example: Hypothesis runs many examples per test call.
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


@FUZZ
@given(
    data=st.binary(max_size=300) | st.sampled_from([*_VALID_TEXTS, ""]).map(str.encode),
    suffix=st.sampled_from([".json", ".gpl", ".ase", ".txt", ""]),
)
def test_read_palette_fails_cleanly(scratch: Path, data: bytes, suffix: str) -> None:
    path = scratch / f"palette{suffix}"
    path.write_bytes(data)
    result = fails_cleanly(lambda: read_palette(path))
    if isinstance(result, QuantizeError):
        assert str(result).startswith(str(path))


# --------------------------------------------------------------------------- #
# Image loader
# --------------------------------------------------------------------------- #


def _seed_files() -> list[bytes]:
    """Small valid files of every format the loader sees most."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 7, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (5, 4, 4), dtype=np.uint8))
    files = []
    for image, fmt, options in [
        (rgb, "PNG", {}),
        (rgba, "PNG", {}),
        (rgb, "JPEG", {"quality": 80}),
        (rgb, "BMP", {}),
        (rgb, "TIFF", {}),
        (rgb.convert("P"), "GIF", {"save_all": True, "append_images": [rgb.convert("P")]}),
        (rgb, "PNG", {"save_all": True, "append_images": [rgba.resize(rgb.size)]}),
    ]:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        files.append(buffer.getvalue())
    return files


_SEEDS = _seed_files()

# Mutated TIFFs the fuzzer found, on which Pillow raised TypeError (not an OSError).
_TIFF_WITHOUT_WIDTH = bytes.fromhex(
    "49492a00080000000a0000010400010000000700000001010400010000000600000002010300030000008600"
    "000003010300010000000100000006010300010000000200000011010400010000008c000000150103000100"
    "00000300000016010400010000000600000017010400010000007e0000001c01030001000000010000007000"
    "00000800080008005f82c2d9cfeb0fa321d7d982f8bd1045b8e8cd4ea93d7d0a1df04213b6273b043b51de2c"
    "787a32d04e1c40a67959aae97fb2ed80717b4c9b459a82f85f49c0babf7fdca1e7012b8bedbf568f07e860ef"
    "4c3700474dc7dbd0b090beab6878b300f0f5e664bfd87edb1f95e78d7310990879d3cfc307b3cabaa627b9d8"
    "49c4"
)

# Mutated TIFFs the fuzzer found, on which Pillow raised IndexError (not an OSError).
_TIFF_BAD_INDEX = bytes.fromhex(
    "47494638376107000600850000336600cc990066cc00ffcc00330038666633cc663300993300cc3366cc3399"
    "cc3333ff3366ff33996666339966cc9966cccc66ffcc66660099003399993388cc339933999999cc99cccc99"
    "9900cc6633cccc33cc0099cc6699cccc99cc33cccc66cccc99cccccccccc6699ff9999ff33ccffffffff0000"
    "0000000000000000000000000000000000000000ebce2efc0000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000002c00000000070006000008"
    "32003b8838006140890a0016202090a080010b23483470404203040f1322646040e0038607024c8050704102"
    "210021286c08080021"
)


def test_seed_images_load() -> None:
    # The mutations start from files that decode: otherwise they test nothing.
    with tempfile.TemporaryDirectory() as folder:
        for index, data in enumerate(_SEEDS):
            path = Path(folder) / f"seed{index}"
            path.write_bytes(data)
            assert isinstance(load_image(path), LoadedImage)


@settings(FUZZ, max_examples=300)
@given(st.sampled_from(_SEEDS).flatmap(mutated) | st.binary(max_size=64))
@example(_TIFF_WITHOUT_WIDTH)
@example(_TIFF_BAD_INDEX)
def test_mutated_images_load_or_fail_cleanly(scratch: Path, data: bytes) -> None:
    path = scratch / "image"
    path.write_bytes(data)
    # A small pixel limit: a mutated header may claim a huge size.
    result = fails_cleanly(lambda: load_image(path, max_pixels=1 << 16, max_frames=16))
    if isinstance(result, LoadedImage):
        assert result.frames and all(f.rgb.dtype == np.uint8 for f in result.frames)

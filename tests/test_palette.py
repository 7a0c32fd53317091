"""Tests for quantize.palette: the Palette type, exporters, readers and swatches."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from quantize.palette import Palette, to_json_colors
from quantize.palette_formats import (
    EXPORTERS,
    SUFFIXES,
    PaletteError,
    export,
    parse_ase,
    parse_gpl,
    parse_hex_lines,
    parse_json_report,
    read_palette,
    to_ase,
    to_css,
    to_gpl,
    to_txt,
)
from quantize.render import render_swatch

# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def make_palette(colors: list[tuple[int, int, int]], counts: list[int] | None = None) -> Palette:
    return Palette.from_colors(np.array(colors), None if counts is None else np.array(counts))


@pytest.fixture
def big_palette() -> Palette:
    """256 distinct colors including the extremes 0 and 255, with varied counts."""
    rng = np.random.default_rng(1234)
    packed = rng.choice(1 << 24, size=254, replace=False)
    packed = np.unique(np.concatenate([packed, [0x000000, 0xFFFFFF]]))
    rng.shuffle(packed)
    colors = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1)
    counts = rng.integers(0, 10_000, size=len(colors))
    return Palette(colors.astype(np.uint8), counts.astype(np.int64))


def hex_of(colors: NDArray[np.uint8]) -> list[str]:
    return ["#%02x%02x%02x" % tuple(int(v) for v in c) for c in colors]  # noqa: UP031


def ase_block(block_type: int, body: bytes) -> bytes:
    return struct.pack(">HI", block_type, len(body)) + body


def ase_name(text: str) -> bytes:
    encoded = (text + "\0").encode("utf-16-be")
    return struct.pack(">H", len(encoded) // 2) + encoded


def ase_color(name: str, model: bytes, values: list[float], color_type: int = 2) -> bytes:
    body = ase_name(name) + model + struct.pack(f">{len(values)}f", *values)
    return ase_block(0x0001, body + struct.pack(">H", color_type))


def ase_file(blocks: list[bytes], count: int | None = None) -> bytes:
    n = len(blocks) if count is None else count
    return b"ASEF" + struct.pack(">HHI", 1, 0, n) + b"".join(blocks)


# --------------------------------------------------------------------------- #
# The Palette value type
# --------------------------------------------------------------------------- #


def test_palette_stores_read_only_typed_copies() -> None:
    colors = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32)
    counts = np.array([7, 8], dtype=np.int32)
    p = Palette(colors, counts)  # type: ignore[arg-type]
    assert p.colors.dtype == np.uint8 and p.counts.dtype == np.int64
    assert not p.colors.flags.writeable and not p.counts.flags.writeable
    colors[0, 0] = 99  # the caller's array is not aliased
    assert p.colors[0, 0] == 1


def test_palette_accepts_integral_floats() -> None:
    p = Palette.from_colors(np.array([[0.0, 128.0, 255.0]]))
    assert p.hex == ["#0080ff"]
    assert p.counts.tolist() == [0]


@pytest.mark.parametrize(
    ("colors", "counts", "message"),
    [
        (np.zeros((0, 3)), np.zeros(0), "1 to 256"),
        (np.zeros((257, 3)), np.zeros(257), "1 to 256"),
        (np.zeros((2, 4)), np.zeros(2), "shape"),
        (np.zeros(3), np.zeros(1), "shape"),
        (np.array([[0, 0, 256]]), np.zeros(1), "0..255"),
        (np.array([[0, -1, 0]]), np.zeros(1), "0..255"),
        (np.array([[0.5, 0, 0]]), np.zeros(1), "whole numbers"),
        (np.array([["a", "b", "c"]]), np.zeros(1), "numeric"),
        (np.array([[0, 0, 0]]), np.zeros(2), "counts must have shape"),
        (np.array([[0, 0, 0]]), np.array([-1]), "non-negative"),
    ],
)
def test_palette_rejects_bad_input(colors: NDArray, counts: NDArray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Palette(colors, counts)


def test_palette_properties() -> None:
    p = make_palette([(255, 0, 0), (0x1A, 0x2B, 0x3C)], [3, 1])
    assert p.size == 2
    assert p.hex == ["#ff0000", "#1a2b3c"]
    assert p.fractions.dtype == np.float64
    np.testing.assert_allclose(p.fractions, [0.75, 0.25])


def test_fractions_are_zero_without_counts() -> None:
    p = make_palette([(1, 2, 3), (4, 5, 6)])
    assert p.fractions.tolist() == [0.0, 0.0]


def test_palette_equality_and_hash() -> None:
    a = make_palette([(1, 2, 3)], [5])
    b = make_palette([(1, 2, 3)], [5])
    assert a == b and hash(a) == hash(b)
    assert a != make_palette([(1, 2, 3)], [6])
    assert a != "not a palette"


# --------------------------------------------------------------------------- #
# Sorting
# --------------------------------------------------------------------------- #


def test_sort_by_count_breaks_ties_by_lightness_then_packed_value() -> None:
    # Three colors share count 5: they must come dark to light (L* ~3, ~53, ~88).
    p = make_palette(
        [(200, 200, 200), (10, 10, 10), (0, 255, 0), (255, 0, 0), (50, 50, 50)],
        [1, 5, 5, 5, 9],
    )
    s = p.sorted("count")
    assert s.hex == ["#323232", "#0a0a0a", "#ff0000", "#00ff00", "#c8c8c8"]
    assert s.counts.tolist() == [9, 5, 5, 5, 1]


def test_sort_by_count_uses_packed_value_for_full_ties(monkeypatch: pytest.MonkeyPatch) -> None:
    # Force equal lightness so only the packed 0xRRGGBB value can decide.
    import quantize.palette as mod

    monkeypatch.setattr(mod, "_lightness", lambda colors: np.zeros(len(colors)))
    p = make_palette([(0, 0, 9), (0, 9, 0), (9, 0, 0), (0, 0, 1)], [2, 2, 2, 2])
    assert p.sorted("count").hex == ["#000001", "#000009", "#000900", "#090000"]


def test_sort_by_hue_puts_grays_last_ordered_by_lightness() -> None:
    p = make_palette(
        [
            (128, 128, 128),  # gray
            (0, 0, 255),  # blue, hue 240
            (255, 255, 255),  # white (gray)
            (255, 0, 0),  # red, hue 0
            (0, 255, 0),  # green, hue 120
            (255, 255, 0),  # yellow, hue 60
            (100, 101, 99),  # near-gray: counts as gray
            (0, 0, 0),  # black (gray)
            (128, 0, 0),  # dark red: same hue as red, darker so first
            (255, 0, 255),  # magenta, hue 300
        ],
        list(range(10)),
    )
    s = p.sorted("hue")
    assert s.hex == [
        "#800000",
        "#ff0000",
        "#ffff00",
        "#00ff00",
        "#0000ff",
        "#ff00ff",
        "#000000",
        "#646563",
        "#808080",
        "#ffffff",
    ]
    # counts travel with their colors
    assert dict(zip(s.hex, s.counts.tolist(), strict=True)) == dict(
        zip(p.hex, p.counts.tolist(), strict=True)
    )


def test_sort_by_lightness_is_dark_to_light() -> None:
    p = make_palette([(255, 255, 255), (0, 0, 255), (255, 255, 0), (0, 0, 0), (255, 0, 0)])
    # L*: black 0, blue ~32, red ~53, yellow ~97, white 100.
    assert p.sorted("lightness").hex == ["#000000", "#0000ff", "#ff0000", "#ffff00", "#ffffff"]


def test_sort_default_is_count_and_original_is_unchanged() -> None:
    p = make_palette([(1, 1, 1), (2, 2, 2)], [1, 2])
    assert p.sorted() == p.sorted("count")
    assert p.hex == ["#010101", "#020202"]


def test_sort_rejects_unknown_key() -> None:
    with pytest.raises(ValueError, match="unknown sort key"):
        make_palette([(1, 1, 1)]).sorted("size")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- #
# Exporters: round trips
# --------------------------------------------------------------------------- #


def test_gpl_round_trip(big_palette: Palette) -> None:
    text = to_gpl(big_palette, "my palette")
    back = parse_gpl(text)
    assert back.hex == big_palette.hex
    assert back.counts.tolist() == [0] * big_palette.size  # GPL keeps no counts


def test_gpl_layout() -> None:
    p = make_palette([(1, 22, 255), (0x1A, 0x2B, 0x3C)], [1234, 8766])
    lines = to_gpl(p, "demo\nname").splitlines()
    assert lines[0] == "GIMP Palette"
    assert lines[1] == "Name: demo name"  # a newline cannot break the header
    assert lines[2] == "Columns: 2"
    assert lines[3].startswith("#")
    assert lines[4:] == ["  1  22 255\t#0116ff 12.34%", " 26  43  60\t#1a2b3c 87.66%"]


def test_gpl_independent_reader(big_palette: Palette) -> None:
    """Read the GPL the way GIMP does: three integers, then the name."""
    rows = []
    for line in to_gpl(big_palette, "x").splitlines()[1:]:
        m = re.match(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S.*)$", line)
        if m and not line.startswith(("#", "Name:", "Columns:")):
            rows.append((int(m[1]), int(m[2]), int(m[3])))
            assert m[4].split()[0] == "#%02x%02x%02x" % rows[-1]  # noqa: UP031
    assert rows == [tuple(c) for c in big_palette.colors.tolist()]


def test_gpl_without_counts_has_no_percentages() -> None:
    text = to_gpl(make_palette([(1, 2, 3)]), "n")
    assert text.splitlines()[-1] == "  1   2   3\t#010203"


def test_css_round_trip(big_palette: Palette) -> None:
    css = to_css(big_palette, "pal */ evil")
    found = re.findall(r"--color-(\d+):\s*(#[0-9a-f]{6});", css)
    assert [int(i) for i, _ in found] == list(range(1, big_palette.size + 1))
    assert [h for _, h in found] == big_palette.hex
    assert css.count("*/") == css.count("/*")  # the name did not close its comment early
    assert re.search(r":root\s*\{", css) and css.rstrip().endswith("}")


def test_css_percent_comments() -> None:
    css = to_css(make_palette([(0, 0, 0), (255, 255, 255)], [1, 3]), "n")
    assert "  --color-1: #000000; /* 25.00% */" in css
    assert "  --color-2: #ffffff; /* 75.00% */" in css


def test_ase_round_trip(big_palette: Palette) -> None:
    back = parse_ase(to_ase(big_palette, "group"))
    assert back.hex == big_palette.hex


def test_ase_struct_layout() -> None:
    """Walk the bytes by hand, independently of parse_ase."""
    p = make_palette([(255, 0, 0), (0x1A, 0x2B, 0x3C), (0, 0, 0)], [1, 2, 3])
    data = to_ase(p, "Grüße")
    assert data[:4] == b"ASEF"
    major, minor, n_blocks = struct.unpack_from(">HHI", data, 4)
    assert (major, minor, n_blocks) == (1, 0, p.size + 2)
    offset, blocks = 12, []
    for _ in range(n_blocks):
        block_type, length = struct.unpack_from(">HI", data, offset)
        blocks.append((block_type, data[offset + 6 : offset + 6 + length]))
        offset += 6 + length
    assert offset == len(data)  # block lengths add up to the file exactly
    assert [t for t, _ in blocks] == [0xC001, 1, 1, 1, 0xC002]
    # group start: uint16 length in UTF-16 units including the NUL, then the name
    start = blocks[0][1]
    assert struct.unpack_from(">H", start)[0] == len("Grüße") + 1
    assert start[2:] == "Grüße\0".encode("utf-16-be")
    assert blocks[-1][1] == b""
    for (_, body), hex_code, rgb in zip(blocks[1:-1], p.hex, p.colors.tolist(), strict=True):
        units = struct.unpack_from(">H", body)[0]
        assert units == 8  # "#rrggbb" + NUL
        assert body[2 : 2 + 2 * units].decode("utf-16-be") == hex_code + "\0"
        pos = 2 + 2 * units
        assert body[pos : pos + 4] == b"RGB "
        values = struct.unpack_from(">fff", body, pos + 4)
        assert [round(v * 255) for v in values] == rgb
        assert struct.unpack_from(">H", body, pos + 16)[0] == 2  # normal color
        assert len(body) == pos + 18


def test_txt_round_trip(big_palette: Palette) -> None:
    text = to_txt(big_palette)
    assert text.splitlines() == big_palette.hex
    assert text.endswith("\n")
    assert parse_hex_lines(text).hex == big_palette.hex


def test_json_colors_shape_and_round_trip(big_palette: Palette) -> None:
    entries = to_json_colors(big_palette)
    text = json.dumps({"image": "x.png", "colors": entries})
    back = parse_json_report(text)
    assert back == big_palette  # colors and counts
    first = entries[0]
    assert set(first) == {"hex", "rgb", "count", "fraction"}
    assert type(first["count"]) is int and type(first["fraction"]) is float
    assert all(type(v) is int for v in first["rgb"])


def test_json_fraction_rounded_to_six_decimals() -> None:
    entries = to_json_colors(make_palette([(0, 0, 0), (1, 1, 1)], [1, 2]))
    assert [e["fraction"] for e in entries] == [0.333333, 0.666667]
    assert entries[0] == {"hex": "#000000", "rgb": [0, 0, 0], "count": 1, "fraction": 0.333333}


def test_export_dispatch(big_palette: Palette) -> None:
    assert set(EXPORTERS) == set(SUFFIXES) == {"gpl", "css", "ase", "txt"}
    assert SUFFIXES == {"gpl": ".gpl", "css": ".css", "ase": ".ase", "txt": ".txt"}
    assert export(big_palette, "gpl", "n") == to_gpl(big_palette, "n")
    assert export(big_palette, "css", "n") == to_css(big_palette, "n")
    assert export(big_palette, "ase", "n") == to_ase(big_palette, "n")
    assert export(big_palette, "txt", "n") == to_txt(big_palette)
    assert isinstance(export(big_palette, "ase", "n"), bytes)
    with pytest.raises(ValueError, match="unknown palette format"):
        export(big_palette, "json", "n")


# --------------------------------------------------------------------------- #
# Readers
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("fmt", ["gpl", "ase", "txt"])
def test_read_palette_each_export_format(tmp_path: Path, big_palette: Palette, fmt: str) -> None:
    path = tmp_path / f"pal{SUFFIXES[fmt]}"
    data = export(big_palette, fmt, "n")
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    assert read_palette(path).hex == big_palette.hex


def test_read_palette_json_report(tmp_path: Path, big_palette: Palette) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"colors": to_json_colors(big_palette)}, indent=2))
    assert read_palette(path) == big_palette
    assert read_palette(str(path)) == big_palette


@pytest.mark.parametrize("fmt", ["gpl", "ase", "txt", "json"])
def test_read_palette_sniffs_content_without_suffix(
    tmp_path: Path, big_palette: Palette, fmt: str
) -> None:
    path = tmp_path / "palette.dat"
    if fmt == "json":
        path.write_text(json.dumps({"colors": to_json_colors(big_palette)}))
    else:
        data = export(big_palette, fmt, "n")
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    assert read_palette(path).hex == big_palette.hex


def test_hex_lines_formats_and_comments() -> None:
    text = "\n".join(
        [
            "// my palette",
            "; also a comment",
            "",
            "#1A2B3C",
            "  ff0000  ",
            "#abc",
            "#00ff00 // trailing comment",
            "#1a2b3c",  # duplicate: dropped
        ]
    )
    p = parse_hex_lines(text)
    assert p.hex == ["#1a2b3c", "#ff0000", "#aabbcc", "#00ff00"]
    assert p.counts.tolist() == [0, 0, 0, 0]


def test_gpl_skips_headers_comments_and_keeps_first_duplicate() -> None:
    text = (
        "GIMP Palette\nName: x\nColumns: 4\n#\n# comment\n\n"
        "255 0 0 Red\n  0 255   0\tGreen\n255 0 0 Red again\n10 20 30\n"
    )
    assert parse_gpl(text).hex == ["#ff0000", "#00ff00", "#0a141e"]


def test_ase_reader_handles_gray_ungrouped_and_unknown_blocks() -> None:
    data = ase_file(
        [
            ase_color("loose", b"RGB ", [1.0, 0.5, 0.0], color_type=0),
            ase_block(0xC001, ase_name("group")),
            ase_color("gray", b"Gray", [0.2]),
            ase_block(0x0042, b"\x00\x01\x02"),  # unknown block: skipped by its length
            ase_color("spot", b"RGB ", [0.0, 0.0, 1.0], color_type=1),
            ase_block(0xC002, b""),
        ]
    )
    assert parse_ase(data).hex == ["#ff8000", "#333333", "#0000ff"]


@pytest.mark.parametrize(("model", "n"), [(b"CMYK", 4), (b"LAB ", 3)])
def test_ase_reader_rejects_cmyk_and_lab(model: bytes, n: int) -> None:
    data = ase_file([ase_color("ok", b"RGB ", [0, 0, 0]), ase_color("bad", model, [0.5] * n)])
    name = model.decode().strip()
    with pytest.raises(PaletteError, match=rf"block 2: {name} swatches are not supported"):
        parse_ase(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"NOPE" + bytes(8), "ASEF"),
        (b"ASEF" + struct.pack(">HHI", 2, 0, 0), "version 2.0"),
        (ase_file([ase_color("a", b"RGB ", [0, 0, 0])], count=2), "block 2: file is truncated"),
        (ase_file([ase_color("a", b"RGB ", [0, 0, 0])])[:-3], "block 1: file is truncated"),
        (ase_file([ase_block(1, ase_name("a") + b"RGB " + b"\x00" * 4)]), "block 1: .*truncated"),
        (ase_file([ase_block(1, struct.pack(">H", 50) + b"ab")]), "block 1: .*truncated"),
        (ase_file([ase_color("a", b"HSV ", [0, 0, 0])]), "block 1: unknown color model"),
        (ase_file([ase_color("a", b"RGB ", [0, 2.0, 0])]), "block 1: color values must be in 0-1"),
        (ase_file([ase_color("a", b"RGB ", [float("nan"), 0, 0])]), "block 1: color values"),
        (ase_file([ase_block(0xC001, ase_name("g")), ase_block(0xC002, b"")]), "no colors"),
    ],
)
def test_ase_reader_errors(data: bytes, message: str) -> None:
    with pytest.raises(PaletteError, match=message):
        parse_ase(data)


def test_json_report_variants() -> None:
    assert parse_json_report('[{"rgb": [1, 2, 3]}]').hex == ["#010203"]
    nested = {"palette": {"colors": [{"hex": "#ABCDEF", "count": 4}]}}
    p = parse_json_report(json.dumps(nested))
    assert p.hex == ["#abcdef"] and p.counts.tolist() == [4]
    mixed = {"colors": [{"hex": "#000000", "count": 2}, {"rgb": [9, 9, 9]}]}
    assert parse_json_report(json.dumps(mixed)).counts.tolist() == [2, 0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{\n  "colors": [\n    {"hex": "#000000",}\n  ]\n}', r"^line 3: invalid JSON"),
        ('{"image": "a.png"}', "no 'colors' list"),
        ('{"colors": [{"hex": "#00000g"}]}', r"colors\[0\]: 'hex'"),
        ('{"colors": [{"hex": 5}]}', r"colors\[0\]: 'hex'"),
        ('{"colors": [{"hex": "#000"}, {"rgb": [1, 2]}]}', r"colors\[1\]: 'rgb'"),
        ('{"colors": [{"rgb": [1, 2, 256]}]}', r"colors\[0\]: 'rgb'"),
        ('{"colors": [{"rgb": [true, 2, 3]}]}', r"colors\[0\]: 'rgb'"),
        ('{"colors": [{"count": 3}]}', r"colors\[0\]: expected 'hex' or 'rgb'"),
        ('{"colors": ["#000000"]}', r"colors\[0\]: expected an object"),
        ('{"colors": [{"hex": "#000000", "rgb": [0, 0, 1]}]}', "disagree"),
        ('{"colors": [{"hex": "#000000", "count": -1}]}', r"colors\[0\]: 'count'"),
        ('{"colors": [{"hex": "#000000", "count": 1.5}]}', r"colors\[0\]: 'count'"),
        ('{"colors": []}', "no colors"),
    ],
)
def test_json_report_errors(text: str, message: str) -> None:
    with pytest.raises(PaletteError, match=message):
        parse_json_report(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("GIMP Palette\nName: x\n#\n0 0 0\n1 1 1\n\n300 0 0 Too red\n", "line 7: expected three"),
        ("GIMP Palette\n1 2\n", "line 2: expected three integers 0-255"),
        ("GIMP Palette\nred green blue\n", "line 2: expected three integers"),
        ("GIMP Palette\n-1 0 0\n", "line 2: expected three integers"),
        ("Not a palette\n0 0 0\n", "line 1: expected the header 'GIMP Palette'"),
        ("GIMP Palette\nName: empty\n", "no colors"),
    ],
)
def test_gpl_errors(text: str, message: str) -> None:
    with pytest.raises(PaletteError, match=message):
        parse_gpl(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("#000000\n\n#12345\n", "line 3: expected a hex color"),
        ("# a comment in the wrong style\n", "line 1: expected a hex color"),
        ("#abcd\n", "line 1"),
        ("abc\n", "line 1"),  # 3 digits need the '#'
        ("#00000000\n", "line 1"),
        ("// only comments\n\n", "no colors"),
    ],
)
def test_hex_lines_errors(text: str, message: str) -> None:
    with pytest.raises(PaletteError, match=message):
        parse_hex_lines(text)


def test_more_than_256_colors_is_an_error() -> None:
    text = "".join(f"#{i:06x}\n" for i in range(257))
    with pytest.raises(PaletteError, match="257 distinct colors; at most 256"):
        parse_hex_lines(text)
    # duplicates do not count towards the limit
    assert parse_hex_lines(text.replace("#000100", "#000000")).size == 256


def test_read_palette_prefixes_errors_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.gpl"
    path.write_text("GIMP Palette\nName: x\n1 2 3\n4 5 six\n")
    with pytest.raises(PaletteError, match=r"bad\.gpl: line 4: expected three integers 0-255"):
        read_palette(path)


def test_read_palette_errors_are_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    with pytest.raises(PaletteError, match="cannot read palette file") as info:
        read_palette(missing)
    assert "\n" not in str(info.value)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PaletteError, match="not UTF-8"):
        read_palette(binary)
    fake_ase = tmp_path / "fake.ase"
    fake_ase.write_text("#000000\n")
    with pytest.raises(PaletteError, match="ASEF"):
        read_palette(fake_ase)


def test_palette_error_is_a_value_error() -> None:
    from quantize.errors import QuantizeError

    assert issubclass(PaletteError, ValueError)
    assert issubclass(PaletteError, QuantizeError)


def test_read_palette_accepts_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeff#010203\n".encode())
    assert read_palette(path).hex == ["#010203"]


# --------------------------------------------------------------------------- #
# Swatch
# --------------------------------------------------------------------------- #


def distinct_colors(image_array: NDArray[np.uint8]) -> set[tuple[int, int, int]]:
    return {tuple(c) for c in np.unique(image_array.reshape(-1, 3), axis=0).tolist()}


def test_swatch_size_mode_and_every_color_present(big_palette: Palette) -> None:
    for p in (big_palette, big_palette.sorted("hue"), make_palette([(9, 9, 9)], [1])):
        image = render_swatch(p, width=1500, height=120)
        assert image.size == (1500, 120) and image.mode == "RGB"
        present = distinct_colors(np.asarray(image))
        assert {tuple(c) for c in p.colors.tolist()} <= present


def test_swatch_band_boundary_is_proportional() -> None:
    p = make_palette([(0, 0, 0), (255, 255, 255)], [75, 25])
    pixels = np.asarray(render_swatch(p, width=400, height=50))
    bottom = pixels[-1]  # bottom row: never covered by labels
    assert (bottom[:300] == 0).all()
    assert (bottom[300:] == 255).all()


def test_swatch_bottom_row_follows_palette_order_and_fractions() -> None:
    p = make_palette([(200, 0, 0), (0, 200, 0), (0, 0, 200), (90, 90, 90)], [50, 25, 15, 10])
    bottom = np.asarray(render_swatch(p, width=1000, height=200))[-1]
    widths = [int((bottom == c).all(axis=1).sum()) for c in p.colors]
    assert widths == [500, 250, 150, 100]
    # bands appear left to right in palette order
    firsts = [int(np.argmax((bottom == c).all(axis=1))) for c in p.colors]
    assert firsts == [0, 500, 750, 900]


def test_swatch_equal_widths_without_counts() -> None:
    p = make_palette([(10, 0, 0), (0, 10, 0), (0, 0, 10)])
    bottom = np.asarray(render_swatch(p, width=300, height=20))[-1]
    assert [int((bottom == c).all(axis=1).sum()) for c in p.colors] == [100, 100, 100]


def test_swatch_tiny_and_zero_fractions_still_get_one_pixel() -> None:
    colors = [(i, 255 - i, 7) for i in range(0, 250, 10)]  # 25 colors
    counts = [10**9] + [0] * 23 + [1]
    p = make_palette(colors, counts)
    image = render_swatch(p, width=100, height=10)
    bottom = np.asarray(image)[-1]
    widths = [int((bottom == c).all(axis=1).sum()) for c in p.colors]
    assert min(widths) >= 1 and sum(widths) == 100
    assert widths[0] == 100 - 24


def test_swatch_band_edges_random_counts() -> None:
    from quantize.render import _band_edges

    rng = np.random.default_rng(5)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        counts = rng.integers(0, 1000, size=n) * rng.integers(0, 2, size=n)
        p = Palette.from_colors(np.zeros((n, 3)) + np.arange(n)[:, None], counts)
        width = int(rng.integers(n, 600))
        edges = _band_edges(p, width)
        assert edges[-1] == width
        assert np.all(np.diff(np.concatenate(([0], edges))) >= 1)


def test_swatch_label_contrast() -> None:
    p = make_palette([(0, 0, 0), (255, 255, 255)], [1, 1])
    pixels = np.asarray(render_swatch(p, width=600, height=200))
    dark_band, light_band = pixels[:, :300], pixels[:, 300:]
    # white text was drawn on black, black text on white
    assert (dark_band == 255).all(axis=2).any()
    assert (light_band == 0).all(axis=2).any()
    # and the labels stay in the top half
    assert (pixels[100:, :300] == 0).all() and (pixels[100:, 300:] == 255).all()


def test_swatch_too_narrow_is_an_error(big_palette: Palette) -> None:
    with pytest.raises(ValueError, match="cannot hold 256 bands"):
        render_swatch(big_palette, width=255)
    with pytest.raises(ValueError):
        render_swatch(big_palette, width=256, height=0)
    assert render_swatch(big_palette, width=256, height=1).size == (256, 1)


def test_swatch_labels_a_narrow_band_upright_inside_the_band() -> None:
    # 3% of 1200 px is 36 px: too narrow for the two-line label, wide enough for an upright one.
    p = make_palette([(200, 0, 0), (255, 255, 255)], [97, 3])
    pixels = np.asarray(render_swatch(p, width=1200, height=200))
    black = (pixels == 0).all(axis=2)
    narrow_top = black[:100, 1164:]
    assert narrow_top.sum() > 50  # black text on the white band
    rows = np.flatnonzero(narrow_top.any(axis=1))
    assert rows.max() - rows.min() > 36  # taller than wide: it runs along the band
    assert not black[:, :1164].any()  # nothing spilled onto the red band
    assert (pixels[100:, 1164:] == 255).all()  # the bottom half stays pure color

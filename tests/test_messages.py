"""One line per message and valid UTF-8 reports, whatever a file is named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from quantize.text import json_safe, one_line, valid_unicode
from tests.helpers import gradient_rgb
from tests.helpers import run_cli as run


def test_one_line_escapes_what_would_break_the_line() -> None:
    name = b"a\nb\rc\td\x1be\xff.png".decode("utf-8", "surrogateescape")
    assert one_line(f"{name}: bad") == "a\\nb\\rc\\td\\x1be\\xff.png: bad"
    assert one_line("photo\u2028x \x85 ünïcödé ΔE") == "photo\\u2028x \\x85 ünïcödé ΔE"
    assert one_line("\ud800") == "\\ud800"


def test_valid_unicode_keeps_real_names_and_escapes_bytes() -> None:
    assert valid_unicode("new\nline ünï.png") == "new\nline ünï.png"
    odd = b"caf\xe9.png".decode("utf-8", "surrogateescape")
    assert valid_unicode(odd) == "caf\\xe9.png"
    assert json_safe({"a": [odd, 1, None], odd: (odd,)}) == {
        "a": ["caf\\xe9.png", 1, None],
        "caf\\xe9.png": ["caf\\xe9.png"],
    }


@pytest.fixture
def odd_names(tmp_path: Path) -> Path:
    """A folder with a newline in one name, Latin-1 bytes in another, and a bad file."""
    folder = tmp_path / "odd"
    folder.mkdir()
    image = gradient_rgb(24, 16)
    try:
        image.save(os.fsencode(folder) + b"/new\nline.png", format="PNG")
        image.save(os.fsencode(folder) + b"/caf\xe9.png", format="PNG")
        (Path(os.fsdecode(os.fsencode(folder) + b"/bad\nname\xff.png"))).write_bytes(b"junk")
    except (OSError, UnicodeError):
        pytest.skip("the file system does not take these names")
    return folder


def test_odd_file_names_keep_every_message_one_line(odd_names: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, text = run(odd_names, "-k", "4", "-j", "1", "-o", out)
    assert code == 1
    lines = text.splitlines()
    assert lines == [
        f"quantize: error: {odd_names}/bad\\nname\\xff.png: not a recognized image file",
        *[line for line in lines[1:3] if "PSNR" in line],
        "2 written, 0 skipped, 1 failed" + lines[3].split("1 failed", 1)[1],
        "failed:",
        f"  {odd_names}/bad\\nname\\xff.png: not a recognized image file",
    ]
    assert lines[1].startswith(f"{odd_names}/caf\\xe9.png: k=4")
    assert lines[1].endswith(f"-> {out}/caf\\xe9-k4.png")
    assert lines[2].startswith(f"{odd_names}/new\\nline.png: k=4")


def test_reports_of_odd_file_names_are_valid_utf8(odd_names: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _ = run(odd_names, "-k", "4", "-o", out, "--palette-format", "json,gpl,css,ase,txt")
    assert code == 1  # the junk file
    reports = {}
    for name in os.listdir(os.fsencode(out)):
        if name.endswith(b".json"):
            data = (Path(os.fsdecode(os.fsencode(out) + b"/" + name))).read_bytes()
            reports[name] = json.loads(data.decode("utf-8", errors="strict"))
    latin = reports[b"caf\xe9-k4.json"]
    assert latin["source"] == f"{odd_names}/caf\\xe9.png"
    assert latin["image"] == f"{out}/caf\\xe9-k4.png"
    newline = reports[b"new\nline-k4.json"]
    assert newline["source"] == f"{odd_names}/new\nline.png"  # valid UTF-8 is kept exactly
    gpl = Path(os.fsdecode(os.fsencode(out) + b"/caf\xe9-k4.gpl")).read_bytes().decode("utf-8")
    assert "Name: caf\\xe9-k4\n" in gpl


def test_pixel_plot_of_an_odd_file_name(odd_names: Path, tmp_path: Path) -> None:
    source = Path(os.fsdecode(os.fsencode(odd_names) + b"/caf\xe9.png"))
    code, text = run(source, "-k", "4", "-o", tmp_path / "out.png", "--plot", "--no-report")
    assert code == 0, text
    with Image.open(tmp_path / "out.pixels.png") as plot:
        assert plot.size == (1000, 900)


def test_html_page_of_odd_file_names_is_valid_utf8(odd_names: Path, tmp_path: Path) -> None:
    """The --html page shows odd names escaped and links to the files by their own bytes."""
    out = tmp_path / "out"
    code, text = run(odd_names, "-k", "4", "-j", "1", "-o", out, "--html")
    assert code == 1, text  # the junk file
    assert "Traceback" not in text
    page = (out / "index.html").read_bytes().decode("utf-8", errors="strict")
    assert "caf\\xe9.png" in page
    assert 'src="caf%E9-k4.png"' in page or "caf%E9-k4.png" in page


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_to_a_full_disk_is_one_line_not_a_traceback(flag: str) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "quantize", flag],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr == "quantize: error: cannot write the output: no space left on device\n"

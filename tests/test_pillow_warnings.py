"""Pillow's own warnings become quantize's one-line warnings, in every process."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import warnings
from pathlib import Path

from PIL import TiffImagePlugin

from quantize.imageio import captured_warnings, load_image
from tests.helpers import ROOT, gradient_rgb
from tests.helpers import run_cli as run

PILLOW_NOTE = "Pillow: Tag data larger than file. Skipping tag 270"


def bad_tag_tiff(path: Path) -> Path:
    """A TIFF whose description tag claims more bytes than the file has.

    Pillow skips the tag with a UserWarning and decodes the image fine.
    """
    buf = io.BytesIO()
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[270] = "x" * 500
    gradient_rgb(30, 20).save(buf, "TIFF", tiffinfo=info)
    data = bytearray(buf.getvalue())
    (ifd,) = struct.unpack("<L", data[4:8])
    (entries,) = struct.unpack("<H", data[ifd : ifd + 2])
    for i in range(entries):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", data[entry : entry + 2])[0] == 270:
            data[entry + 4 : entry + 8] = struct.pack("<L", 10**6)
    path.write_bytes(bytes(data))
    return path


def test_pillow_warning_is_a_note_of_the_load(tmp_path: Path) -> None:
    path = bad_tag_tiff(tmp_path / "bad.tif")
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        loaded = load_image(path)
    assert escaped == []
    assert PILLOW_NOTE in loaded.notes
    assert loaded.width == 30


def test_captured_warnings_are_one_line_notes() -> None:
    with captured_warnings() as notes:
        warnings.warn("first line\nsecond line", RuntimeWarning, stacklevel=1)
        warnings.warn("first line\nsecond line", RuntimeWarning, stacklevel=1)
    assert notes == ["RuntimeWarning: first line"]


def test_pillow_warning_becomes_one_warning_line_and_is_reported(tmp_path: Path) -> None:
    path = bad_tag_tiff(tmp_path / "bad.tif")
    code, out = run(path, "-k", "4", "-j", "1")
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == f"quantize: warning: {path}: {PILLOW_NOTE}"
    assert len(lines) == 2 and "PSNR" in lines[1]
    report = json.loads((tmp_path / "bad-k4.json").read_text())
    assert PILLOW_NOTE in report["warnings"]


def test_quiet_silences_pillow_warnings(tmp_path: Path) -> None:
    path = bad_tag_tiff(tmp_path / "bad.tif")
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        assert run(path, "-k", "4", "-q") == (0, "")
    assert escaped == []


def test_pillow_warnings_in_worker_processes_are_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.tif", "b.tif", "c.tif"):
        bad_tag_tiff(folder / name)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "quantize", str(folder), "-k", "4", "-j", "2"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    warned = [line for line in lines if "PSNR" not in line and " written, " not in line]
    assert sorted(warned) == [
        f"quantize: warning: {folder / name}: {PILLOW_NOTE}" for name in ("a.tif", "b.tif", "c.tif")
    ]
    quiet = subprocess.run([*command, "-q", "--force"], capture_output=True, text=True, env=env)
    assert (quiet.returncode, quiet.stderr) == (0, "")

"""Odd inputs built with Pillow (and one hand-packed ICC profile) for the I/O tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image

#: Three frames of the test animation: 12 x 8, each one flat color plus a stripe.
FRAME_COLORS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
DURATIONS = [100, 200, 300]


def animation_frames() -> list[Image.Image]:
    """Three distinct RGB frames with a shared white stripe."""
    frames = []
    for color in FRAME_COLORS:
        arr = np.zeros((8, 12, 3), np.uint8)
        arr[:] = color
        arr[:, :3] = 255
        frames.append(Image.fromarray(arr))
    return frames


def save_animation(path: Path, fmt: str, loop: int | None = 0) -> Path:
    """Write the three test frames as an animated GIF, PNG or WebP."""
    frames = animation_frames()
    options: dict[str, object] = {"save_all": True, "append_images": frames[1:]}
    options["duration"] = DURATIONS
    if loop is not None:
        options["loop"] = loop
    if fmt == "WEBP":
        options["lossless"] = True
    frames[0].save(path, fmt, **options)
    return path


def hidden_rgba() -> tuple[Image.Image, set[tuple[int, int, int]]]:
    """A 20 x 20 RGBA image: a green square on fully transparent random colors.

    Returns the image and the set of colors hidden under alpha 0.
    """
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., :3] = np.random.default_rng(0).integers(0, 256, (20, 20, 3))
    rgba[5:15, 5:15] = (10, 200, 30, 255)
    hidden = {tuple(int(v) for v in px) for px in rgba[rgba[..., 3] == 0][:, :3]}
    return Image.fromarray(rgba), hidden  # type: ignore[return-value]


def semi_transparent_rgba() -> Image.Image:
    """16 x 4 RGBA: two colors, alpha stepping 0, 64, 128, 255 down the rows."""
    rgba = np.zeros((4, 16, 4), np.uint8)
    rgba[:, :8, :3] = (250, 10, 10)
    rgba[:, 8:, :3] = (10, 10, 250)
    rgba[..., 3] = np.array([0, 64, 128, 255], np.uint8)[:, None]
    return Image.fromarray(rgba)


def ramp16() -> Image.Image:
    """A 16-bit gray ramp, 1024 x 4, from 0 to 65535 (mode I;16)."""
    values = np.rint(np.linspace(0, 65535, 1024)).astype(np.uint16)
    return Image.fromarray(np.repeat(values[None, :], 4, axis=0))


def exif_rotated_jpeg(path: Path) -> Path:
    """A 30 x 20 JPEG stored sideways (EXIF orientation 6: rotate 90 degrees clockwise).

    The stored top-left corner is blue on red; upright, it is the top-right.
    """
    im = Image.new("RGB", (30, 20), (200, 0, 0))
    im.paste((0, 0, 255), (0, 0, 10, 6))
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(path, "JPEG", exif=exif, quality=95)
    return path


def truncated_jpeg(path: Path) -> Path:
    """A JPEG cut off half way through its data."""
    from tests.helpers import gradient_rgb

    gradient_rgb().save(path, "JPEG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def linear_rgb_profile(name: str = "Linear sRGB test") -> bytes:
    """An ICC v2 display profile: sRGB primaries with a gamma 1.0 (linear) curve.

    Pillow can only create sRGB, LAB and XYZ profiles, so this one is packed
    by hand: header, tag table and the nine tags a matrix/TRC profile needs.
    A linear value of 128 is sRGB 188.
    """
    ascii_name = name.encode("ascii") + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(ascii_name)) + ascii_name
    desc += b"\0" * 8 + b"\0\0\0" + b"\0" * 67  # empty Unicode and ScriptCode parts
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0100) + b"\0\0"
    tags = [
        (b"desc", desc),
        (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", _xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", _xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", b"text\0\0\0\0public domain\0"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        padded = body + b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += padded
    size = offset + len(data)
    header = struct.pack(">I", size) + b"\0\0\0\0" + struct.pack(">I", 0x02100000)
    header += b"mntrRGB XYZ " + b"\0" * 12 + b"acsp" + b"\0" * 24
    header += struct.pack(">I", 0) + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    header += b"\0" * (128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + data

"""Reading images into arrays and writing results safely.

Everything that touches Pillow's file handling or the file system lives here,
so the pipeline only sees arrays and the core only sees numbers.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from quantize.errors import InputError, OutputError

#: Output formats the CLI offers, with the Pillow format name and file suffix.
FORMATS: dict[str, tuple[str, str]] = {
    "png": ("PNG", ".png"),
    "webp": ("WEBP", ".webp"),
    "gif": ("GIF", ".gif"),
    "tiff": ("TIFF", ".tiff"),
    "bmp": ("BMP", ".bmp"),
    "jpeg": ("JPEG", ".jpg"),
}
SUFFIX_FORMATS: dict[str, str] = {
    ".png": "png",
    ".webp": "webp",
    ".gif": "gif",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".bmp": "bmp",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
}
#: Formats that store an indexed (mode "P") image, so the palette is exact.
PALETTE_FORMATS = frozenset({"png", "gif", "tiff", "bmp"})
#: From this many pixels on, PNGs are written with zlib level 1: on a 12 MP
#: image it deflates about 5x faster than the default level 6 (0.14 s
#: instead of 0.76 s) for a file about 20% larger.  Smaller images keep the
#: default, which costs them only milliseconds.
FAST_PNG_PIXELS = 1 << 22
#: Formats that store an alpha channel.
ALPHA_FORMATS = frozenset({"png", "webp", "gif", "tiff"})


@dataclass
class Frame:
    """One frame of an image as arrays.

    Attributes
    ----------
    rgb : ndarray of uint8, shape (h, w, 3)
    alpha : ndarray of uint8, shape (h, w), or None when fully opaque
    duration : int or None
        Display time in milliseconds for animations.
    """

    rgb: NDArray[np.uint8]
    alpha: NDArray[np.uint8] | None = None
    duration: int | None = None


@dataclass
class LoadedImage:
    """A decoded image: one or more frames of equal size, in sRGB."""

    frames: list[Frame]
    width: int
    height: int
    loop: int | None = None
    notes: list[str] = field(default_factory=list)


def load_image(source: str | os.PathLike[str] | Image.Image) -> LoadedImage:
    """Decode an image file (or take a Pillow image) into sRGB arrays.

    EXIF orientation is applied first so the result is upright.

    Raises
    ------
    InputError
        The file is missing, unreadable, not an image, or fails to decode.
    """
    if isinstance(source, Image.Image):
        return _from_pil(source)
    try:
        with Image.open(source) as im:
            im.load()
            return _from_pil(im)
    except FileNotFoundError as exc:
        raise InputError("no such file") from exc
    except IsADirectoryError as exc:
        raise InputError("is a directory") from exc
    except PermissionError as exc:
        raise InputError("permission denied") from exc
    except UnidentifiedImageError as exc:
        raise InputError("not a recognized image file") from exc
    except Image.DecompressionBombError as exc:
        raise InputError(str(exc)) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncated and corrupt data as OSError or SyntaxError.
        raise InputError(f"cannot decode image: {exc}") from exc


def _from_pil(im: Image.Image) -> LoadedImage:
    upright = ImageOps.exif_transpose(im)
    frame = _to_frame(upright)
    return LoadedImage([frame], upright.width, upright.height)


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info


def _to_frame(im: Image.Image) -> Frame:
    if _has_alpha(im):
        rgba = np.asarray(im.convert("RGBA"))
        alpha = np.ascontiguousarray(rgba[..., 3])
        rgb = np.ascontiguousarray(rgba[..., :3])
        return Frame(rgb, None if alpha.min() == 255 else alpha)
    return Frame(np.asarray(im.convert("RGB")))


def output_format(path: Path) -> str:
    """The output format implied by a file name's suffix.

    Raises
    ------
    OutputError
        The suffix is not one of the supported formats.
    """
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(SUFFIX_FORMATS))
        raise OutputError(f"cannot tell the output format from {path.name!r} (use {known})")
    return fmt


def check_outputs(outputs: Iterable[Path], inputs: Iterable[Path], *, force: bool) -> None:
    """Refuse before any work is done to overwrite an input or, without force, an output.

    Raises
    ------
    OutputError
    """
    input_list = [Path(p) for p in inputs]
    for out in outputs:
        for src in input_list:
            if _same_file(out, src):
                raise OutputError(f"{out}: refusing to overwrite the input image")
        if not force and (out.exists() or out.is_symlink()):
            raise OutputError(f"{out}: already exists (use --force to overwrite)")
        if out.is_dir():
            raise OutputError(f"{out}: is a directory")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write a file so that readers see the old file or the whole new one, never a part.

    The data goes to a hidden temporary file in the same folder, which is
    flushed, synced and renamed over ``path``; on any error it is removed.

    Raises
    ------
    OutputError
        The folder cannot be written.
    """
    folder = path.parent
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: Path, data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""

    def write(fh: IO[bytes]) -> None:
        fh.write(data)

    atomic_write(path, write)


def write_text(path: Path, text: str) -> None:
    """Atomically write UTF-8 ``text`` to ``path``."""
    write_bytes(path, text.encode("utf-8"))


def save_image(image: Image.Image, path: Path, fmt: str) -> None:
    """Atomically save a Pillow image in one of :data:`FORMATS`."""
    pil_format = FORMATS[fmt][0]
    options: dict[str, object] = {}
    if fmt == "png":
        options["optimize"] = False
        if image.width * image.height >= FAST_PNG_PIXELS:
            options["compress_level"] = 1
    elif fmt == "jpeg":
        options["quality"] = 95
    elif fmt == "webp":
        options["lossless"] = True

    def write(fh: IO[bytes]) -> None:
        image.save(fh, format=pil_format, **options)

    try:
        atomic_write(path, write)
    except (OSError, ValueError) as exc:
        raise OutputError(f"{path}: cannot write image: {exc}") from exc

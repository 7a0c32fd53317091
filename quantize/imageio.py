"""Reading images into arrays: decoding with Pillow, safely.

Every input is opened only when it is a regular file
(`quantize.safeio.open_regular`), decoded within a pixel and frame budget, turned upright
(EXIF), converted to sRGB (ICC profiles, wide samples) and handed on as
arrays (`load_image` -> `LoadedImage`), so the pipeline only sees arrays and
the core only sees numbers.  The I/O layer has three more modules:
`quantize.encode` holds the output formats and encodes and writes files
(all or nothing), `quantize.render` assembles PIL images from arrays, and
`quantize.outputs` names, plans and writes outputs through those writers.
"""

from __future__ import annotations

import functools
import io
import os
import re
import struct
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from PIL import ExifTags, Image, UnidentifiedImageError

from quantize import prefetch
from quantize.errors import InputError
from quantize.limits import DEFAULT_MAX_FRAMES
from quantize.safeio import open_regular

if TYPE_CHECKING:
    from PIL import ImageCms


#: Pillow input formats whose frames are an animation (not pages or sizes).
ANIMATED_INPUTS = frozenset({"GIF", "PNG", "WEBP"})


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
    """A decoded image: one or more frames of equal size, in sRGB.

    Attributes
    ----------
    frames : list of Frame
        Every frame of an animation, or the one image.
    width, height : int
    loop : int or None
        Animation loop count as Pillow reports it (0 = forever); None plays once.
    notes : list of str
        Warnings about how the file was read (converted profile, scaled samples, ...).
    profile : str or None
        Name of the embedded ICC profile the colors were converted from.
    animation_frames : int or None
        Frames of the animation in the file when only the first was decoded
        (``load_image(animation=False)``); None when ``frames`` holds them all.
    """

    frames: list[Frame]
    width: int
    height: int
    loop: int | None = None
    notes: list[str] = field(default_factory=list)
    profile: str | None = None
    animation_frames: int | None = None


def load_image(
    source: str | os.PathLike[str] | Image.Image,
    *,
    max_pixels: int | None = None,
    max_frames: int = DEFAULT_MAX_FRAMES,
    animation: bool = True,
) -> LoadedImage:
    """Decode an image file (or take a Pillow image) into sRGB arrays.

    EXIF orientation is applied first so the result is upright; an embedded
    ICC profile is converted to sRGB; 16-bit and float samples are scaled to
    8 bits by their value range (never clipped); every frame of an animated
    GIF, PNG or WebP is kept with its duration.

    Parameters
    ----------
    source : path or PIL.Image.Image
    max_pixels : int, optional
        Most pixels decoded from a file: width x height summed over the
        frames decoded, checked before each frame is decoded; more is an
        error, not Pillow's warning.  Defaults to ``PIL.Image.MAX_IMAGE_PIXELS``.
    max_frames : int, default `quantize.limits.DEFAULT_MAX_FRAMES`
        Most frames decoded from an animation; more is an error.
    animation : bool, default True
        False decodes only the first frame of an animation (for an output
        that cannot hold one); ``animation_frames`` then says how many the
        file has.

    Returns
    -------
    LoadedImage
        Frames of shape (height, width, 3) uint8 sRGB, alpha (height, width)
        uint8 or None, and ``notes`` saying what was converted and how.

    Raises
    ------
    InputError
        The file is missing, not a regular file, unreadable, empty, not an
        image, over the pixel or frame limit, truncated, or fails to decode.
        Every error of the decoder becomes an InputError with a one-line reason.
    """
    if isinstance(source, Image.Image):
        return _from_pil(source)
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if limit is not None and limit < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    if max_frames < 1:
        raise ValueError(f"max_frames must be positive, got {max_frames}")
    try:
        return _load_file(source, limit, max_frames, animation)
    except InputError as exc:
        # Errors name the file, as the command's messages do.
        raise InputError(exc.reason, source) from exc


def _load_file(
    source: str | os.PathLike[str], limit: int | None, max_frames: int, animation: bool
) -> LoadedImage:
    with open_regular(source) as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise InputError("empty file")
        decoded = _prefetched(fh.fileno(), limit)
        try:
            with _pixel_limit(limit) as pillow_notes, _opened(fh, decoded) as im:
                budget = _FrameBudget(limit, max_frames)
                # Refused before even the first frame is decoded.
                budget.check_frames(_frames_to_decode(im, animation), im.size)
                im.load()
                loaded = _from_pil(im, budget, animation)
            # Pillow's own warnings are known once the block has ended.
            loaded.notes.extend(n for n in pillow_notes if n not in loaded.notes)
            return loaded
        except InputError:
            raise
        except UnidentifiedImageError as exc:
            raise InputError("not a recognized image file") from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InputError(_over_limit(exc, limit)) from exc
        except Exception as exc:
            # Pillow's decoders report truncated and corrupt data with many
            # exception types (OSError, SyntaxError, struct.error, IndexError,
            # ...); any of them means this file cannot be read.
            raise InputError(f"cannot decode image: {_exception_line(exc)}") from exc


def _opened(fh: IO[bytes], decoded: Image.Image | None) -> Image.Image:
    """The image already decoded, or ``fh`` opened by Pillow (decoded on ``load``)."""
    return Image.open(fh) if decoded is None else decoded


def _prefetched(fd: int, limit: int | None) -> Image.Image | None:
    """The image `quantize.prefetch` decoded from the file open as ``fd``,
    when the pixel limit of this load allows it; else None."""
    im = prefetch.take(fd)
    if im is not None and limit is not None and im.width * im.height > limit:
        return None  # decoded again, to be refused with the usual message
    return im


def _exception_line(exc: BaseException) -> str:
    """An exception as one short line: its message, or its type when it has none."""
    text = " ".join(str(exc).split())
    if isinstance(exc, MemoryError) or not text:
        text = "out of memory" if isinstance(exc, MemoryError) else type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


@dataclass(frozen=True)
class _FrameBudget:
    """The pixel and frame limits of one load, checked before each frame is decoded."""

    pixels: int | None
    frames: int

    def check_frames(self, count: int, size: tuple[int, int]) -> None:
        """Refuse ``count`` frames of ``size`` before decoding them."""
        if count > self.frames:
            raise InputError(
                f"animation has {count} frames, more than the limit of {self.frames} "
                "(raise it with --max-frames)"
            )
        total = count * size[0] * size[1]
        if self.pixels is not None and total > self.pixels:
            raise InputError(
                f"animation has {count} frames of {size[0]}x{size[1]}, {total} pixels in all, "
                f"more than the limit of {self.pixels} (raise it with --max-pixels)"
            )

    def check_total(self, total: int) -> None:
        """Refuse a frame that would bring the pixels decoded so far to ``total``."""
        if self.pixels is not None and total > self.pixels:
            raise InputError(
                f"animation frames add up to more than the limit of {self.pixels} pixels "
                "(raise it with --max-pixels)"
            )


# Pillow's pixel limit is a module global; the lock keeps concurrent loads
# with different limits from restoring each other's value.
_LIMIT_LOCK = threading.Lock()


@contextmanager
def _pixel_limit(limit: int | None) -> Iterator[list[str]]:
    """Apply ``limit`` to Pillow for one load, with its warning raised as an error.

    Pillow's other warnings (a truncated TIFF, corrupt EXIF ...) are collected
    in the list it gives, as one-line notes, instead of being printed.
    """
    with _LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit
        try:
            with captured_warnings() as notes:
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                yield notes
        finally:
            Image.MAX_IMAGE_PIXELS = saved


@contextmanager
def captured_warnings() -> Iterator[list[str]]:
    """Collect the warnings raised inside the block as one-line notes instead of printing them.

    Pillow and numpy report odd files with :mod:`warnings`, which prints a
    source path and line of their code; quantize reports them as its own
    warnings (``quantize: warning: PATH: ...`` and the report's
    ``warnings``).  The list is filled, without repeats, when the block ends.
    Like :func:`warnings.catch_warnings`, not for concurrent threads.
    """
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield notes
        finally:
            notes.extend(
                dict.fromkeys(warning_note(w.message, w.category, w.filename) for w in caught)
            )


def warning_note(message: Warning | str, category: type[Warning], filename: str) -> str:
    """One line describing a warning: its first line, after where it came from.

    Examples
    --------
    >>> warning_note(UserWarning("Truncated File Read"), UserWarning, "/x/PIL/TiffImagePlugin.py")
    'Pillow: Truncated File Read'
    """
    lines = str(message).strip().splitlines()
    text = lines[0] if lines else ""
    origin = "Pillow" if Path(filename).parent.name == "PIL" else category.__name__
    return f"{origin}: {text}" if text else origin


def _over_limit(exc: Exception, limit: int | None) -> str:
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1))} pixels" if found else "too many pixels"
    return f"image has {size}, more than the limit of {limit} (raise it with --max-pixels)"


def _from_pil(
    im: Image.Image, budget: _FrameBudget | None = None, animation: bool = True
) -> LoadedImage:
    notes: list[str] = []
    n_frames = getattr(im, "n_frames", 1)
    animated = n_frames > 1 and im.format in ANIMATED_INPUTS
    if n_frames > 1 and not animated:
        notes.append(f"{im.format or 'image'} has {n_frames} frames; only the first is used")
    decode = _frames_to_decode(im, animation)
    orientation = _orientation(im, notes)
    loop = im.info.get("loop") if animated else None
    start = im.tell()
    if animated and start != 0:
        im.seek(0)
    color, alpha = _split_alpha(_upright(im, orientation), notes)
    to_srgb, profile = _srgb_converter(color.mode, im.info.get("icc_profile"), notes)
    frames = [Frame(to_srgb(color), alpha, _duration(im.info.get("duration")))]
    decoded = im.width * im.height
    for index in range(1, decode):
        im.seek(index)
        # A GIF frame may grow the canvas: count its real size before decoding it.
        decoded += im.width * im.height
        if budget is not None:
            budget.check_total(decoded)
        color, alpha = _split_alpha(_upright(im, orientation), notes)
        frames.append(Frame(to_srgb(color), alpha, _duration(im.info.get("duration"))))
    if im.tell() != start:
        im.seek(start)
    height, width = frames[0].rgb.shape[:2]
    loaded = LoadedImage(frames, width, height, loop, list(dict.fromkeys(notes)), profile)
    if animated and not animation:
        loaded.animation_frames = n_frames
    return loaded


def _frames_to_decode(im: Image.Image, animation: bool) -> int:
    """All frames of an animation when they are wanted; one for anything else."""
    n_frames = getattr(im, "n_frames", 1)
    return n_frames if animation and n_frames > 1 and im.format in ANIMATED_INPUTS else 1


def _orientation(im: Image.Image, notes: list[str]) -> int:
    try:
        return int(im.getexif().get(ExifTags.Base.Orientation, 1))
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, struct.error) as exc:
        notes.append(f"ignored unreadable EXIF data ({exc})")
        return 1


def _upright(im: Image.Image, orientation: int) -> Image.Image:
    """The current frame turned as its EXIF orientation says (a copy when turned)."""
    if orientation in (0, 1):
        return im
    # Later frames of an animation may not carry the tag; give each frame the
    # file's orientation so all of them turn the same way.
    from PIL import ImageOps

    frame = im.copy()
    frame.getexif()[ExifTags.Base.Orientation] = orientation
    return ImageOps.exif_transpose(frame)


def _duration(value: object) -> int | None:
    # APNG reports fractional milliseconds; output formats store integers.
    return round(value) if isinstance(value, int | float) else None


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info


def _split_alpha(im: Image.Image, notes: list[str]) -> tuple[Image.Image, NDArray[np.uint8] | None]:
    """The color part of a frame (mode L, RGB or CMYK) and its alpha, None when opaque."""
    if im.mode in WIDE_MODES:
        return _wide_to_gray(im, notes)
    if _has_alpha(im):
        gray = im.mode in ("L", "LA", "1")
        try:
            both = im.convert("LA" if gray else "RGBA")
        except ValueError as exc:
            raise InputError(f"unsupported image mode {im.mode}") from exc
        alpha = np.asarray(both.getchannel("A"))
        color = both.convert("L" if gray else "RGB")
        return color, None if alpha.min() == 255 else alpha
    if im.mode in ("L", "RGB", "CMYK"):
        return im, None
    try:
        return im.convert("L" if im.mode == "1" else "RGB"), None
    except ValueError as exc:
        raise InputError(f"unsupported image mode {im.mode}") from exc


#: Modes with more than 8 bits per sample, and the full-scale values they may use.
WIDE_MODES: dict[str, tuple[float, ...]] = {
    "I;16": (65535,),
    "I;16L": (65535,),
    "I;16B": (65535,),
    "I;16N": (65535,),
    "I": (255, 65535),
    "F": (1.0, 255, 65535),
}


def _wide_to_gray(
    im: Image.Image, notes: list[str]
) -> tuple[Image.Image, NDArray[np.uint8] | None]:
    """Scale 16-bit, 32-bit and float gray to 8 bits linearly, never clipping.

    Samples are divided by the smallest full scale of the mode that holds
    them all (65535 for 16-bit files, 1.0 for float in 0..1); values outside
    every such range are stretched from their minimum to their maximum.
    Pillow's own ``convert`` clips these modes to 0..255 instead.
    """
    raw = np.asarray(im)
    alpha = None
    key = im.info.get("transparency")
    if isinstance(key, int) and np.any(raw == key):
        alpha = np.where(raw == key, 0, 255).astype(np.uint8)
    values = raw.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        notes.append(f"{int((~finite).sum())} non-finite samples shown as the darkest or lightest")
    seen = values[finite]
    lo, hi = (float(seen.min()), float(seen.max())) if seen.size else (0.0, 0.0)
    top = next((t for t in WIDE_MODES[im.mode] if lo >= 0 and hi <= t), None)
    if top is None:
        notes.append(f"{im.mode} samples from {lo:g} to {hi:g} stretched to 0-255")
        base, scale = lo, (255 / (hi - lo) if hi > lo else 0.0)
    else:
        base, scale = 0.0, 255 / top
    values = np.nan_to_num(values, nan=lo, posinf=hi, neginf=lo)
    gray = np.rint((values - base) * scale).astype(np.uint8)
    return Image.fromarray(gray, "L"), alpha


_PROFILE_SPACES = {"L": "GRAY", "RGB": "RGB", "CMYK": "CMYK"}


def _srgb_converter(
    mode: str, icc: bytes | None, notes: list[str]
) -> tuple[Callable[[Image.Image], NDArray[np.uint8]], str | None]:
    """A function turning frames of ``mode`` into sRGB arrays, and the source profile's name.

    An embedded profile is applied with LittleCMS (Pillow's ImageCms).  A
    profile that leaves every color within one level (an sRGB profile) is
    not applied, so exact colors are not shifted by rounding.
    """
    convert, name, profile_notes = _profile_converter(mode, icc or None)
    notes.extend(profile_notes)
    return convert, name


# Images of one batch (one camera, one editor) usually share their profile:
# reading it and probing its transform is done once per profile.
@functools.lru_cache(maxsize=16)
def _profile_converter(
    mode: str, icc: bytes | None
) -> tuple[Callable[[Image.Image], NDArray[np.uint8]], str | None, tuple[str, ...]]:
    """`_srgb_converter` for one (mode, profile) pair, with its notes as a tuple."""
    notes: list[str] = []
    if icc:
        # Imported only for images with a profile: start-up of runs without one.
        from PIL import ImageCms

        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            name = ImageCms.getProfileDescription(profile).strip() or "embedded profile"
            space = profile.profile.xcolor_space.strip()
            in_mode = "RGB" if mode == "L" and space == "RGB" else mode
            if _PROFILE_SPACES.get(in_mode) != space:
                notes.append(f"ignored the embedded {space} color profile of a {mode} image")
            else:
                transform = ImageCms.buildTransform(profile, _srgb_profile(), in_mode, "RGB")
                if in_mode == "CMYK" or not _is_identity(transform, in_mode):
                    notes.append(f"converted colors from the embedded profile {name!r} to sRGB")
                    return _through(transform, in_mode), name, tuple(notes)
                return _plain_rgb, name, tuple(notes)
        except (OSError, ValueError, ImageCms.PyCMSError) as exc:
            notes.append(f"ignored an unreadable color profile ({exc}); colors taken as sRGB")
    if mode == "CMYK":
        notes.append("CMYK image without a color profile converted with Pillow's simple formula")
    return _plain_rgb, None, tuple(notes)


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _plain_rgb(im: Image.Image) -> NDArray[np.uint8]:
    # An RGB image is read as it is: convert would copy all of it first.
    return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))


def _through(
    transform: ImageCms.ImageCmsTransform, in_mode: str
) -> Callable[[Image.Image], NDArray[np.uint8]]:
    from PIL import ImageCms

    def convert(im: Image.Image) -> NDArray[np.uint8]:
        return np.asarray(ImageCms.applyTransform(im.convert(in_mode), transform))

    return convert


def _is_identity(transform: ImageCms.ImageCmsTransform, in_mode: str) -> bool:
    from PIL import ImageCms

    levels = np.arange(0, 256, 15, dtype=np.uint8)
    if in_mode == "L":
        grid = levels[None, :]
        probe = Image.fromarray(grid, "L")
        expected = np.repeat(grid[..., None], 3, axis=-1)
    else:
        expected = np.stack(np.meshgrid(levels, levels, levels), -1).reshape(1, -1, 3)
        probe = Image.fromarray(expected, "RGB")
    out = np.asarray(ImageCms.applyTransform(probe, transform)).astype(np.int16)
    return bool(np.abs(out - expected).max() <= 1)

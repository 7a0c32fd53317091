"""Reading images into arrays and writing results safely.

Pillow's file handling (decoding, encoding) and the atomic file writers live
here, so the pipeline only sees arrays and the core only sees numbers.  The
I/O layer has two more modules: `quantize.render` assembles PIL images from
arrays, and `quantize.outputs` names, plans and writes outputs through the
writers here.
"""

from __future__ import annotations

import functools
import io
import os
import re
import stat
import struct
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import NDArray
from PIL import ExifTags, Image, UnidentifiedImageError

from quantize import safeio
from quantize.errors import InputError, OutputError
from quantize.limits import DEFAULT_MAX_FRAMES
from quantize.vocabulary import FORMAT_ALIASES, IMAGE_FORMATS, registry

if TYPE_CHECKING:
    from PIL import ImageCms


class _ImageFormat(NamedTuple):
    name: str
    pillow: str
    suffix: str


#: Output formats the CLI offers (`quantize.vocabulary.IMAGE_FORMATS`), with
#: the Pillow format name and the suffix of default output names.
FORMATS: dict[str, tuple[str, str]] = {
    name: (pillow, suffix)
    for name, pillow, suffix in registry(
        "image format",
        IMAGE_FORMATS,
        [
            _ImageFormat("png", "PNG", ".png"),
            _ImageFormat("webp", "WEBP", ".webp"),
            _ImageFormat("gif", "GIF", ".gif"),
            _ImageFormat("tiff", "TIFF", ".tiff"),
            _ImageFormat("bmp", "BMP", ".bmp"),
            _ImageFormat("jpeg", "JPEG", ".jpg"),
        ],
    ).values()
}
#: The format of each image suffix: every format's name and its aliases.
SUFFIX_FORMATS: dict[str, str] = {f".{name}": name for name in FORMATS} | {
    f".{alias}": name for alias, name in FORMAT_ALIASES.items()
}
#: Formats that store an indexed (mode "P") image, so the palette is exact.
INDEXED_FORMATS = frozenset({"png", "gif", "tiff", "bmp"})
#: Formats whose compression changes the pixels: the file holds more colors than the palette.
LOSSY_FORMATS = frozenset({"jpeg"})
#: From this many pixels on, PNGs are written with zlib level 1: on a large
#: image it deflates several times faster than the default level 6 for a
#: somewhat larger file, and the deflate would otherwise dominate the run.
#: Smaller images keep the default, whose cost is small next to the rest.
FAST_PNG_PIXELS = 1 << 22
#: Formats that store an alpha channel.
ALPHA_FORMATS = frozenset({"png", "webp", "gif", "tiff"})
#: Output formats that store an animation (all frames, durations, loop count).
ANIMATION_FORMATS = frozenset({"png", "webp", "gif"})
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
        try:
            with _pixel_limit(limit) as pillow_notes, Image.open(fh) as im:
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


def _exception_line(exc: BaseException) -> str:
    """An exception as one short line: its message, or its type when it has none."""
    text = " ".join(str(exc).split())
    if isinstance(exc, MemoryError) or not text:
        text = "out of memory" if isinstance(exc, MemoryError) else type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


# O_NONBLOCK (POSIX only) keeps the open itself from waiting for a FIFO's writer.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_OPEN_FLAGS = os.O_RDONLY | _NONBLOCK | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def open_regular(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open a file for binary reading, only when it is a regular file.

    A FIFO, device, socket or directory is refused from its ``stat`` before
    it is opened, so nothing blocks or reads without end; the file is then
    opened non-blocking and checked again, in case it was swapped meanwhile.

    Raises
    ------
    InputError
        Missing, not a regular file, or unreadable; the reason is one line.
    """
    try:
        _require_regular(os.stat(path).st_mode)
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise InputError(_os_reason(exc)) from exc
    try:
        _require_regular(os.fstat(fd).st_mode)
        if _NONBLOCK:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_small_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """The whole content of a regular file of at most ``limit`` bytes.

    Raises
    ------
    InputError
        As :func:`open_regular`, or the file is larger than ``limit``.
    """
    with open_regular(path) as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise InputError(_os_reason(exc)) from exc
    if len(data) > limit:
        raise InputError(f"larger than the limit of {limit} bytes")
    return data


def _require_regular(mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise InputError("is a directory")
    kind = (
        "a FIFO (named pipe)"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "not a file"
    )
    raise InputError(f"is {kind}, not a regular file")


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot read: {(exc.strerror or str(exc)).lower()}"


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
    return np.asarray(im.convert("RGB"))


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


def fit_to_format(
    loaded: LoadedImage, fmt: str, background: tuple[int, int, int] = (255, 255, 255)
) -> LoadedImage:
    """Drop what ``fmt`` cannot store *before* clustering, so the palette fits the file.

    Formats that cannot animate keep the first frame.  JPEG and BMP have no
    alpha: every pixel is composited onto ``background``.  GIF has only
    on/off transparency: semi-transparent pixels are composited onto
    ``background`` and fully transparent ones stay transparent.  Each change
    adds a note.

    Parameters
    ----------
    loaded : LoadedImage
    fmt : str
        A key of :data:`FORMATS`.
    background : tuple of 3 int
        sRGB color to flatten onto.

    Returns
    -------
    LoadedImage
        ``loaded`` itself when nothing had to change.
    """
    notes = list(loaded.notes)
    frames = loaded.frames
    name = FORMATS[fmt][0]
    in_file = loaded.animation_frames or len(frames)
    if in_file > 1 and fmt not in ANIMATION_FORMATS:
        notes.append(f"{name} cannot hold an animation: only the first of {in_file} frames")
        frames = frames[:1]
    partial_only = fmt == "gif"
    if fmt not in ALPHA_FORMATS or partial_only:
        masks = [_to_flatten(f.alpha, partial_only) for f in frames]
        count = sum(int(np.count_nonzero(m)) for m in masks if m is not None)
        if count:
            what = "semi-transparent" if partial_only else "transparent or semi-transparent"
            notes.append(
                f"{name} has no {'partial ' if partial_only else ''}transparency: {count} {what} "
                "pixels flattened onto #{:02x}{:02x}{:02x}".format(*background)
            )
            frames = [_flatten(f, m, background) for f, m in zip(frames, masks, strict=True)]
    if frames is loaded.frames:
        return loaded
    return replace(loaded, frames=frames, notes=notes)


def _to_flatten(alpha: NDArray[np.uint8] | None, partial_only: bool) -> NDArray[np.bool_] | None:
    if alpha is None:
        return None
    return (alpha > 0) & (alpha < 255) if partial_only else alpha < 255


def _flatten(
    frame: Frame, mask: NDArray[np.bool_] | None, background: tuple[int, int, int]
) -> Frame:
    """Composite the pixels under ``mask`` onto ``background`` and make them opaque."""
    if mask is None or frame.alpha is None or not mask.any():
        return frame
    rgba = Image.fromarray(np.dstack([frame.rgb, frame.alpha]), "RGBA")
    under = Image.new("RGBA", rgba.size, (*background, 255))
    flat = np.asarray(Image.alpha_composite(under, rgba).convert("RGB"))
    rgb = np.where(mask[..., None], flat, frame.rgb)
    alpha = np.where(mask, np.uint8(255), frame.alpha)
    return Frame(rgb, None if alpha.min() == 255 else alpha, frame.duration)


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

    Inputs are recognised under any spelling, through symbolic and hard
    links (see :class:`quantize.safeio.OutputPlanner`).

    Raises
    ------
    OutputError
        Naming the output: an input, an existing output without ``force``, a
        folder, or a path that cannot be used (name too long ...).
    """
    safeio.OutputPlanner(inputs, force=force).check(outputs)


#: Writes a file's bytes to an open binary stream.
Writer = Callable[[IO[bytes]], None]


def write_files(files: Sequence[tuple[Path, Writer]], *, force: bool = False) -> None:
    """Write several files so that either all of them are in place or none is.

    Every file is first written completely to a temporary file beside it
    (``.quantize-PID-XXXXXXXX.tmp``); only when all are written are they
    moved into place together by :func:`quantize.safeio.commit`, so a failure
    in any write or move (or Ctrl-C) leaves every old file as it was and no
    temporary file behind.  Missing folders are created.

    Parameters
    ----------
    files : sequence of (path, writer)
    force : bool
        Replace existing files.  Without it a file that exists when the
        files are moved into place is never replaced, and nothing is written.

    Raises
    ------
    OutputError
        A folder cannot be written, a writer fails with OSError or
        ValueError, or (without ``force``) a file exists.
    """
    temps: list[Path] = []
    try:
        for folder in dict.fromkeys(path.parent for path, _ in files):
            safeio.ensure_folder(folder)
        for path, write in files:
            _stage(path, write, temps)
        safeio.commit(list(zip(temps, (path for path, _ in files), strict=True)), force=force)
    finally:
        # Moved into place, or abandoned: no temporary file stays.
        for tmp in temps:
            with suppress(OSError):
                tmp.unlink()


def _stage(path: Path, write: Writer, temps: list[Path]) -> None:
    """Write one temporary file for ``path``, recording it in ``temps`` for cleanup."""
    try:
        # The name is in temps before the file exists (see safeio.make_temp).
        fd = safeio.make_temp(path.parent, temps)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    name = temps[-1]
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(name, 0o666 & ~_UMASK)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise OutputError(f"{path}: cannot write: {reason}") from exc


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Temporary files are created 0600; outputs get the usual 0666 & ~umask instead.
# Read once at import: os.umask can only be read by setting it, which is not
# thread-safe while other threads create files.
_UMASK = _read_umask()


def bytes_writer(data: bytes) -> Writer:
    """A :data:`Writer` for fixed bytes, for :func:`write_files`."""

    def write(fh: IO[bytes]) -> None:
        fh.write(data)

    return write


def image_writer(
    frames: Sequence[Image.Image],
    fmt: str,
    *,
    durations: Sequence[int | None] | None = None,
    loop: int | None = None,
) -> Writer:
    """A :data:`Writer` saving one image, or an animation, in one of :data:`FORMATS`.

    No ICC profile or EXIF is written: the pixels are sRGB and already upright.

    Parameters
    ----------
    frames : sequence of PIL.Image.Image
        One image, or the frames of an animation (only for :data:`ANIMATION_FORMATS`).
    fmt : str
        A key of :data:`FORMATS`.
    durations : sequence of int or None, optional
        Display time of each frame in milliseconds.
    loop : int or None
        Loop count (0 = forever); None plays the animation once.
    """
    pil_format = FORMATS[fmt][0]
    options = _save_options(fmt, frames[0].width * frames[0].height)
    if len(frames) > 1:
        if fmt not in ANIMATION_FORMATS:
            raise ValueError(f"{fmt} cannot hold an animation")
        options.update(_animation_options(frames, fmt, durations, loop))

    def write(fh: IO[bytes]) -> None:
        frames[0].save(fh, format=pil_format, **options)

    return write


def encode_image(
    frames: Sequence[Image.Image],
    fmt: str,
    *,
    durations: Sequence[int | None] | None = None,
    loop: int | None = None,
) -> bytes:
    """The bytes :func:`image_writer` would write, in memory (see there for the parameters)."""
    buffer = io.BytesIO()
    image_writer(frames, fmt, durations=durations, loop=loop)(buffer)
    return buffer.getvalue()


def decode_rgb(data: bytes) -> NDArray[np.uint8]:
    """The first frame of an encoded image as RGB pixels, shape (h, w, 3).

    For measuring what a lossy file really holds, decoded as a viewer would.
    """
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _save_options(fmt: str, pixels: int = 0) -> dict[str, object]:
    if fmt == "png":
        # Level 1 for large images (see FAST_PNG_PIXELS); small images keep
        # the default level, which costs them little.
        return {"optimize": False, "compress_level": 1 if pixels >= FAST_PNG_PIXELS else 6}
    if fmt == "jpeg":
        return {"quality": 95}
    if fmt == "webp":
        return {"lossless": True}
    return {}


#: Longest display time a GIF frame can store: 65535 hundredths of a second.
GIF_MAX_DURATION = 655_350


def _gif_durations(frames: Sequence[Image.Image], durations: list[int]) -> list[int]:
    """Durations whose sum over each run of identical frames fits in one GIF frame.

    Pillow's GIF writer merges identical consecutive frames into one and adds
    their durations; a sum over `GIF_MAX_DURATION` made it fail with an
    OverflowError.  Each run (or single frame) is shown for at most that long.
    """
    capped: list[int] = []
    shown = 0
    previous: bytes | None = None
    for frame, duration in zip(frames, durations, strict=True):
        data = frame.tobytes()
        if data != previous:
            shown = 0
        previous = data
        capped.append(max(0, min(duration, GIF_MAX_DURATION - shown)))
        shown += capped[-1]
    return capped


def _animation_options(
    frames: Sequence[Image.Image],
    fmt: str,
    durations: Sequence[int | None] | None,
    loop: int | None,
) -> dict[str, object]:
    options: dict[str, object] = {"save_all": True, "append_images": list(frames[1:])}
    if durations is not None and any(d is not None for d in durations):
        options["duration"] = [d or 0 for d in durations]
        if fmt == "gif":
            options["duration"] = _gif_durations(frames, [d or 0 for d in durations])
    if fmt == "gif":
        # Keep palette indices as they are, and clear each frame before the
        # next so transparent pixels do not show the previous frame through.
        options["optimize"] = False
        if any("transparency" in f.info for f in frames):
            options["disposal"] = 2
        if loop is not None:
            options["loop"] = loop
    else:
        # PNG and WebP default to looping forever; a GIF without a loop count plays once.
        options["loop"] = 1 if loop is None else loop
    if fmt == "webp" and any(f.mode == "RGBA" for f in frames):
        # libwebp crops frames to what differs from its transparent-black canvas;
        # when every cropped frame is opaque it drops the file's alpha flag and
        # the transparent parts decode as black.  Key frames are never cropped.
        options.update(kmin=0, kmax=1)
    return options

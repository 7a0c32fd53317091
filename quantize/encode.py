"""Writing images: the output formats, encoding with Pillow, all-or-nothing files.

`FORMATS` is the registry of output image formats (one entry: name, Pillow
format, suffix; its names are `quantize.vocabulary.IMAGE_FORMATS`), with the
sets that say what each can hold.  `fit_to_format` drops what a format cannot
store before clustering; `image_writer` / `encode_image` encode frames with
Pillow; `write_files` writes several files so that all or none are in place
(through :mod:`quantize.safeio`).  Decoding lives in :mod:`quantize.imageio`,
PIL image assembly in :mod:`quantize.render`, and :mod:`quantize.outputs`
names, plans and writes outputs through the writers here.
"""

from __future__ import annotations

import functools
import io
import itertools
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from quantize import commit, safeio
from quantize._threads import MAX_THREADS, Deferred
from quantize.errors import OutputError
from quantize.imageio import Frame, LoadedImage
from quantize.vocabulary import FORMAT_ALIASES, IMAGE_FORMATS, registry


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
    moved into place together by :func:`quantize.commit.commit`, so a failure
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
    syncs: list[Deferred[None]] = []
    try:
        for folder in dict.fromkeys(path.parent for path, _ in files):
            commit.ensure_folder(folder)
        for path, write in files:
            syncs.append(_stage(path, write, temps))
        # Every file is on the disk before any is moved into place.
        for sync in syncs:
            sync.result()
        commit.commit(list(zip(temps, (path for path, _ in files), strict=True)), force=force)
    finally:
        # No descriptor stays open and no thread still writes when the
        # files go: moved into place, or abandoned, no temporary file stays.
        for sync in syncs:
            sync.wait()
        for tmp in temps:
            with suppress(OSError):
                tmp.unlink()


def _stage(path: Path, write: Writer, temps: list[Path]) -> Deferred[None]:
    """Write one temporary file for ``path``, recording it in ``temps`` for
    cleanup; its fsync (and the file's closing) runs on another thread
    while the next file is written, where `quantize._threads` allows one."""
    try:
        # The name is in temps before the file exists (see commit.make_temp).
        fd = commit.make_temp(path.parent, temps)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    name = temps[-1]
    fh = os.fdopen(fd, "wb")
    try:
        write(fh)
        fh.flush()
    except BaseException as exc:
        fh.close()
        if isinstance(exc, OSError | ValueError):
            raise _write_error(path, exc) from exc
        raise
    return Deferred(lambda: _sync(path, name, fh))


def _sync(path: Path, name: Path, fh: IO[bytes]) -> None:
    """Flush a written temporary file to the disk, close it and give it the usual mode."""
    try:
        with fh:
            os.fsync(fh.fileno())
        os.chmod(name, 0o666 & ~_UMASK)
    except OSError as exc:
        raise _write_error(path, exc) from exc


def _write_error(path: Path, exc: OSError | ValueError) -> OutputError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
    return OutputError(f"{path}: cannot write: {reason}")


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
    elif fmt == "png" and (in_parts := _png_in_parts(frames[0], options)) is not None:
        return in_parts

    def encode() -> bytes:
        buffer = io.BytesIO()
        frames[0].save(buffer, format=pil_format, **options)
        return buffer.getvalue()

    # Pillow's encoders release the GIL: where a second thread may run, the
    # image is encoded there while the caller prepares the other outputs.
    encoded = Deferred(encode)

    def write(fh: IO[bytes]) -> None:
        fh.write(encoded.result())

    return write


# --------------------------------------------------------------------------
# Large palette PNGs: the image data deflated in parts, on threads.

#: A palette PNG of at least twice this many pixels is deflated in parts of
#: at least this many (at most MAX_THREADS parts, a number fixed by the
#: image size, so the bytes do not depend on the cores): zlib holds one
#: core per stream, and on 12 MP its deflate is as long as the clustering's
#: slowest steps.  Two parts at 12 MP, three at 16: each thread adds its
#: buffers to the peak memory.
PNG_PART_PIXELS = FAST_PNG_PIXELS
# Scanlines go to zlib in batches of about this many bytes.
_DEFLATE_BATCH_BYTES = 1 << 18
_ADLER_BASE = 65521


def _png_in_parts(image: Image.Image, options: dict[str, object]) -> Writer | None:
    """A :data:`Writer` of the PNG Pillow writes for ``image`` with
    ``options``, except that its image data is deflated in parts on threads
    (``Deferred``) that start now; None where that does not apply (not a
    large 8-bit palette image).

    Every chunk but the image data is Pillow's own (written for the image's
    first row, with the height set): palette, transparency, bit depth and
    filter type (None, as Pillow writes palette images) stay as they are.
    Each part is a raw deflate stream ended by a sync flush, the last one
    by the stream's end, so the parts joined form one zlib stream (as pigz
    writes), decoded by any PNG reader; each part is an IDAT chunk of its
    own, written as it is, without copies of the whole.
    """
    parts = min(MAX_THREADS, image.width * image.height // PNG_PART_PIXELS)
    level = options.get("compress_level")
    if image.mode != "P" or parts < 2 or not isinstance(level, int):
        return None
    frame = _png_frame(image, options)
    if frame is None:
        return None
    head, tail = frame
    height = image.height
    bounds = [height * i // parts for i in range(parts + 1)]
    deflated = [
        Deferred(functools.partial(_deflate_rows, image, top, bottom, level, bottom == height))
        for top, bottom in itertools.pairwise(bounds)
    ]

    def write(fh: IO[bytes]) -> None:
        fh.write(head)
        adler = 1
        for number, part in enumerate(deflated):
            stream, part_adler, size = part.result()
            adler = adler32_combine(adler, part_adler, size)
            first = [zlib.compress(b"", level)[:2]] if number == 0 else []  # zlib's header
            last = [struct.pack(">I", adler)] if number == len(deflated) - 1 else []
            _write_chunk(fh, b"IDAT", [*first, *stream, *last])
        fh.write(tail)

    return write


def _write_chunk(fh: IO[bytes], kind: bytes, body: list[bytes]) -> None:
    """One PNG chunk whose data is the pieces of ``body``."""
    fh.write(struct.pack(">I", sum(len(piece) for piece in body)) + kind)
    crc = zlib.crc32(kind)
    for piece in body:
        fh.write(piece)
        crc = zlib.crc32(piece, crc)
    fh.write(struct.pack(">I", crc))


def _png_frame(image: Image.Image, options: dict[str, object]) -> tuple[bytes, bytes] | None:
    """Pillow's PNG chunks before and after the image data of ``image``:
    those of its first row, with the height in the header set to the
    image's; None unless the header says 8-bit palette, not interlaced."""
    buffer = io.BytesIO()
    image.crop((0, 0, image.width, 1)).save(buffer, format="PNG", **options)
    data = buffer.getvalue()
    starts, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        starts.append((data[at + 4 : at + 8], at))
        at += 12 + length
    idat = [start for kind, start in starts if kind == b"IDAT"]
    header = data[16:29]
    if starts[0][0] != b"IHDR" or header[8:10] != b"\x08\x03" or header[12] != 0 or not idat:
        return None
    last = idat[-1] + 12 + struct.unpack(">I", data[idat[-1] : idat[-1] + 4])[0]
    ihdr = io.BytesIO()
    _write_chunk(ihdr, b"IHDR", [struct.pack(">II", image.width, image.height) + header[8:]])
    return data[:8] + ihdr.getvalue() + data[33 : idat[0]], data[last:]


def _deflate_rows(
    image: Image.Image, top: int, bottom: int, level: int, last: bool
) -> tuple[list[bytes], int, int]:
    """Rows ``top:bottom`` of a palette image as PNG scanlines (filter type
    None) in a raw deflate stream: the stream's pieces, ended by a sync
    flush (by its end when ``last``), the scanlines' Adler-32 and their
    length."""
    width = image.width
    deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    batch = max(1, _DEFLATE_BATCH_BYTES // (width + 1))
    lines = np.zeros((batch, width + 1), dtype=np.uint8)  # column 0: the filter type
    out, adler = [], 1
    for start in range(top, bottom, batch):
        n = min(batch, bottom - start)
        pixels = image.crop((0, start, width, start + n)).tobytes()
        lines[:n, 1:] = np.frombuffer(pixels, dtype=np.uint8).reshape(n, width)
        scanlines = lines[:n].data
        out.append(deflate.compress(scanlines))
        adler = zlib.adler32(scanlines, adler)
    out.append(deflate.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH))
    return out, adler, (bottom - top) * (width + 1)


def adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two byte strings joined, from the checksum of each and
    the length of the second (as zlib's ``adler32_combine``)."""
    a1, b1 = first & 0xFFFF, first >> 16
    a2, b2 = second & 0xFFFF, second >> 16
    a = (a1 + a2 - 1) % _ADLER_BASE
    b = (b1 + b2 + second_length * (a1 - 1)) % _ADLER_BASE
    return b << 16 | a


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

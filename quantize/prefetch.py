"""Decode the one input of a run on a thread while the rest of the package loads.

A single-image run spends its first few tenths of a second importing numpy
and the clustering core, then decodes its input, which takes as long again
for a 12 MP PNG.  Pillow's decoders release the GIL, so the command starts
decoding right after parsing its options (`start`) and
:func:`quantize.imageio.load_image` takes the decoded image (`take`)
instead of decoding it again.

Only what decodes the same on any thread is prefetched: a regular file
holding a plain PNG (no animation chunks, which Pillow may warn about, and
within Pillow's default pixel limit, so that opening it warns about nothing
either).  Anything else, any error, or a file that is no longer the same
file (device, inode, size, modification time) when it is taken, leaves the
usual path to decode it, with its checks and messages; nothing here reports
anything.  This module imports nothing heavy: Pillow loads on the thread.
"""

from __future__ import annotations

import os
import stat
import struct
import threading
from typing import TYPE_CHECKING, BinaryIO, Final

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["start", "take"]

_PNG_SIGNATURE: Final[bytes] = b"\x89PNG\r\n\x1a\n"
# Chunks whose content Pillow may warn about while opening (APNG control).
_ANIMATION_CHUNKS: Final[frozenset[bytes]] = frozenset({b"acTL", b"fcTL", b"fdAT"})
# Chunk headers read before the first IDAT, at most: a PNG with more
# metadata than this is decoded the usual way.
_MAX_HEADER_CHUNKS: Final[int] = 64

_lock = threading.Lock()
_pending: list[_Prefetch] = []


class _Prefetch:
    """One decode on its own thread: the file's identity and the image, or None."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.identity: tuple[int, ...] | None = None
        self.image: Image.Image | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.identity, self.image = _decode(self.path)
        except Exception:  # the usual path decodes it again and reports
            self.identity, self.image = None, None


def start(path: str | os.PathLike[str]) -> None:
    """Begin decoding ``path`` on a thread, for `take`.  One is kept: a run
    that ended before taking its prefetch leaves nothing to the next."""
    with _lock:
        _pending[:] = [_Prefetch(os.fspath(path))]


def take(fd: int) -> Image.Image | None:
    """The image `start` decoded, when the file open as ``fd`` is the file
    it decoded (however the path was spelled); None otherwise.  Either way
    the prefetch is forgotten, so its memory goes once the caller is done
    with the image."""
    with _lock:
        if not _pending:
            return None
        prefetch = _pending.pop()
    prefetch.thread.join()
    if prefetch.image is None or prefetch.identity != _identity(os.fstat(fd)):
        return None
    return prefetch.image


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _decode(path: str) -> tuple[tuple[int, ...] | None, Image.Image | None]:
    """(identity, image) of a plain PNG at ``path``; (None, None) for anything else."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        return None, None
    # Non-blocking open: a file swapped for a FIFO meanwhile cannot hang the thread.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, None
        os.set_blocking(fd, True)
        if not _plain_png(fh):
            return None, None
        fh.seek(0)
        from PIL import Image

        image = Image.open(fh, formats=["PNG"])
        image.load()
    return _identity(st), image


def _plain_png(fh: BinaryIO) -> bool:
    """Whether the file starts as a PNG within Pillow's default pixel limit
    and has no animation chunk before its image data."""
    read, seek = fh.read, fh.seek
    if read(8) != _PNG_SIGNATURE:
        return False
    for _ in range(_MAX_HEADER_CHUNKS):
        head = read(8)
        if len(head) < 8:
            return False
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IHDR":
            body = read(8)
            if len(body) < 8:
                return False
            width, height = struct.unpack(">II", body)
            if width * height > _default_pixel_limit():
                return False
            seek(length - 8 + 4, os.SEEK_CUR)
            continue
        if kind == b"IDAT":
            return True
        if kind in _ANIMATION_CHUNKS:
            return False
        seek(length + 4, os.SEEK_CUR)  # data and CRC
    return False


def _default_pixel_limit() -> int:
    """Pillow's pixel limit as the usual path's open would apply it by default."""
    from PIL import Image

    return int(Image.MAX_IMAGE_PIXELS or 0) or (1 << 62)

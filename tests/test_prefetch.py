"""The input decoded ahead on a thread is the image the usual path decodes (quantize.prefetch)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quantize import prefetch
from quantize.errors import InputError
from quantize.imageio import load_image
from tests.odd_images import save_animation


def _picture(seed: int, size: tuple[int, int] = (40, 30)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _taken(path: Path) -> Image.Image | None:
    """Start a prefetch of ``path`` and take it for the file as it is now."""
    prefetch.start(path)
    with open(path, "rb") as fh:
        return prefetch.take(fh.fileno())


def test_a_prefetched_png_loads_as_the_usual_path_loads_it(tmp_path: Path) -> None:
    path = tmp_path / "in.png"
    _picture(1).save(path)
    usual = load_image(path)
    prefetch.start(path)
    prefetch._pending[0].thread.join()
    with pytest.MonkeyPatch.context() as mp:  # the usual path would open it
        mp.setattr(Image, "open", lambda *a, **k: pytest.fail("decoded again"))
        ahead = load_image(path)
    np.testing.assert_array_equal(ahead.frames[0].rgb, usual.frames[0].rgb)
    assert ahead.notes == usual.notes and ahead.profile == usual.profile
    with open(path, "rb") as fh:
        assert prefetch.take(fh.fileno()) is None  # taken once, then forgotten


def test_the_prefetch_is_what_loads_and_only_for_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "in.png"
    _picture(2).save(path)
    decoded = _taken(path)
    assert decoded is not None and decoded.size == (40, 30)
    prefetch.start(path)
    prefetch._pending[0].thread.join()
    replacement = tmp_path / "new.png"
    _picture(3).save(replacement)
    os.replace(replacement, path)  # another file under the same name
    with open(path, "rb") as fh:
        assert prefetch.take(fh.fileno()) is None
    np.testing.assert_array_equal(load_image(path).frames[0].rgb, np.asarray(_picture(3)))


@pytest.mark.parametrize("kind", ["jpeg", "apng", "not an image", "folder"])
def test_only_plain_pngs_are_prefetched(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "in"
    if kind == "jpeg":
        _picture(4).save(path, "JPEG")
    elif kind == "apng":
        save_animation(path, "PNG")
    elif kind == "not an image":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    else:
        path.mkdir()
    prefetch.start(path)
    prefetch._pending[0].thread.join()
    assert prefetch._pending[0].image is None
    prefetch._pending.clear()


def test_the_pixel_limit_of_the_load_still_refuses_a_prefetched_image(tmp_path: Path) -> None:
    path = tmp_path / "in.png"
    _picture(5).save(path)
    prefetch.start(path)
    with pytest.raises(InputError, match="more than the limit of 100"):
        load_image(path, max_pixels=100)
    assert prefetch._pending == []


def test_a_new_prefetch_replaces_one_never_taken(tmp_path: Path) -> None:
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    _picture(6).save(first)
    _picture(7).save(second)
    prefetch.start(first)
    decoded = _taken(second)
    assert decoded is not None
    np.testing.assert_array_equal(np.asarray(decoded), np.asarray(_picture(7)))

"""Reading every kind of image faithfully, and writing files safely (quantize.imageio)."""

from __future__ import annotations

import io
import os
import warnings
import zlib
from pathlib import Path
from typing import IO

import numpy as np
import pytest
from PIL import Image, ImageCms

from quantize import _threads, encode, quantize_image
from quantize.encode import (
    bytes_writer,
    check_outputs,
    encode_image,
    fit_to_format,
    image_writer,
    write_files,
)
from quantize.errors import InputError, OutputError
from quantize.imageio import Frame, LoadedImage, load_image
from quantize.palette import Palette
from quantize.render import render_frames
from tests.odd_images import (
    DURATIONS,
    FRAME_COLORS,
    exif_rotated_jpeg,
    hidden_rgba,
    linear_rgb_profile,
    ramp16,
    save_animation,
    semi_transparent_rgba,
    truncated_jpeg,
)

GRAYS = np.array([[0, 60, 128], [200, 254, 255]], np.uint8)


def saved(tmp_path: Path, im: Image.Image, fmt: str, **options: object) -> Path:
    path = tmp_path / f"in.{fmt.lower()}"
    im.save(path, fmt, **options)
    return path


def gray3(values: np.ndarray) -> np.ndarray:
    return np.repeat(values[..., None], 3, axis=-1)


# -- every Pillow mode -------------------------------------------------------


def test_mode_1(tmp_path: Path) -> None:
    im = Image.fromarray(GRAYS > 100).convert("1")
    loaded = load_image(saved(tmp_path, im, "PNG"))
    assert np.array_equal(loaded.frames[0].rgb, gray3(np.where(GRAYS > 100, 255, 0)))


def test_mode_l(tmp_path: Path) -> None:
    loaded = load_image(saved(tmp_path, Image.fromarray(GRAYS, "L"), "PNG"))
    assert np.array_equal(loaded.frames[0].rgb, gray3(GRAYS))
    assert loaded.frames[0].alpha is None
    assert (loaded.width, loaded.height) == (3, 2)


def test_mode_la_keeps_alpha(tmp_path: Path) -> None:
    alpha = np.array([[0, 255, 255], [30, 255, 255]], np.uint8)
    im = Image.fromarray(np.dstack([GRAYS, alpha]), "LA")
    frame = load_image(saved(tmp_path, im, "PNG")).frames[0]
    assert np.array_equal(frame.rgb, gray3(GRAYS))
    assert frame.alpha is not None and np.array_equal(frame.alpha, alpha)


@pytest.mark.parametrize("transparent", [False, True])
def test_mode_p_with_and_without_transparency_entry(tmp_path: Path, transparent: bool) -> None:
    im = Image.fromarray(np.array([[0, 1, 2], [2, 1, 0]], np.uint8), "P")
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    options = {"transparency": 1} if transparent else {}
    frame = load_image(saved(tmp_path, im, "PNG", **options)).frames[0]
    assert frame.rgb[0].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    if transparent:
        assert frame.alpha is not None
        assert frame.alpha.tolist() == [[255, 0, 255], [255, 0, 255]]
    else:
        assert frame.alpha is None


def test_mode_rgb_and_rgba_exact(tmp_path: Path) -> None:
    rgba = np.random.default_rng(1).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    frame = load_image(saved(tmp_path, Image.fromarray(rgba, "RGBA"), "PNG")).frames[0]
    assert np.array_equal(frame.rgb, rgba[..., :3])
    assert frame.alpha is not None and np.array_equal(frame.alpha, rgba[..., 3])
    frame = load_image(saved(tmp_path, Image.fromarray(rgba[..., :3]), "PNG")).frames[0]
    assert np.array_equal(frame.rgb, rgba[..., :3]) and frame.alpha is None


def test_cmyk_without_profile_is_converted_the_usual_way_with_a_note(tmp_path: Path) -> None:
    im = Image.new("CMYK", (4, 3), (0, 255, 255, 0))  # full magenta + yellow: red
    loaded = load_image(saved(tmp_path, im, "TIFF"))
    assert np.all(loaded.frames[0].rgb == (255, 0, 0))
    assert any("CMYK" in note and "without a color profile" in note for note in loaded.notes)


def test_ycbcr(tmp_path: Path) -> None:
    im = Image.new("RGB", (4, 3), (30, 120, 220)).convert("YCbCr")
    loaded = load_image(saved(tmp_path, im, "TIFF"))
    assert np.array_equal(loaded.frames[0].rgb, np.asarray(im.convert("RGB")))
    assert np.abs(loaded.frames[0].rgb.astype(int) - (30, 120, 220)).max() <= 2


@pytest.mark.parametrize("mode", ["I;16", "I;16B"])
def test_16_bit_modes_scale_by_257(tmp_path: Path, mode: str) -> None:
    raw = np.array([[0, 257, 1000], [32768, 65000, 65535]], np.uint16)
    im = Image.frombytes(mode, (3, 2), raw.astype(">u2" if mode == "I;16B" else "<u2").tobytes())
    loaded = load_image(saved(tmp_path, im, "TIFF"))
    assert np.array_equal(loaded.frames[0].rgb, gray3(np.rint(raw / 257).astype(np.uint8)))
    assert loaded.notes == []


def test_16_bit_gray_ramp_keeps_its_gradient(tmp_path: Path) -> None:
    path = saved(tmp_path, ramp16(), "PNG")
    with Image.open(path) as im:
        assert im.mode == "I;16"
        raw = np.asarray(im)
    gray = load_image(path).frames[0].rgb[..., 0]
    assert np.array_equal(gray, np.rint(raw / 257).astype(np.uint8))
    assert np.unique(gray).size == 256
    assert np.all(np.diff(gray[0].astype(int)) >= 0)
    result = quantize_image(path, colors=16)
    assert result.palette.size == 16


def test_mode_i_holding_16_bit_values(tmp_path: Path) -> None:
    raw = np.array([[0, 300, 65535]], np.int32)
    loaded = load_image(saved(tmp_path, Image.fromarray(raw), "TIFF"))
    assert loaded.frames[0].rgb[0, :, 0].tolist() == [0, 1, 255]


def test_mode_i_out_of_range_is_stretched_with_a_note(tmp_path: Path) -> None:
    raw = np.array([[-1000, 0, 1000, 100000]], np.int32)
    loaded = load_image(saved(tmp_path, Image.fromarray(raw), "TIFF"))
    expected = np.rint((raw[0] + 1000) * 255 / 101000).astype(np.uint8)
    assert loaded.frames[0].rgb[0, :, 0].tolist() == expected.tolist()
    assert loaded.notes == ["I samples from -1000 to 100000 stretched to 0-255"]


def test_mode_f_unit_range(tmp_path: Path) -> None:
    raw = np.array([[0.0, 0.25, 0.5, 1.0]], np.float32)
    loaded = load_image(saved(tmp_path, Image.fromarray(raw), "TIFF"))
    assert loaded.frames[0].rgb[0, :, 0].tolist() == [0, 64, 128, 255]


def test_mode_f_non_finite_values(tmp_path: Path) -> None:
    raw = np.array([[0.0, np.nan, 0.5, np.inf]], np.float32)
    loaded = load_image(saved(tmp_path, Image.fromarray(raw), "TIFF"))
    assert loaded.frames[0].rgb[0, :, 0].tolist() == [0, 0, 128, 128]
    assert loaded.notes == ["2 non-finite samples shown as the darkest or lightest"]


@pytest.mark.parametrize("mode", ["HSV", "LAB", "RGBX", "PA", "La"])
def test_other_in_memory_modes(mode: str) -> None:
    if mode == "La":
        with pytest.raises(InputError, match="unsupported image mode La"):
            load_image(Image.new(mode, (3, 2)))
        return
    im = Image.new("RGB", (3, 2), (20, 140, 230)).convert(mode)
    frame = load_image(im).frames[0]
    assert np.array_equal(frame.rgb, np.asarray(im.convert("RGB")))


# -- orientation, color profiles ---------------------------------------------


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    loaded = load_image(exif_rotated_jpeg(tmp_path / "r.jpg"))
    assert (loaded.width, loaded.height) == (20, 30)
    rgb = loaded.frames[0].rgb.astype(int)
    assert rgb.shape == (30, 20, 3)
    assert np.abs(rgb[1, -2] - (0, 0, 255)).max() < 16  # the blue corner is now top right
    assert np.abs(rgb[1, 1] - (200, 0, 0)).max() < 16


def test_icc_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    im = Image.new("RGB", (3, 2), (128, 0, 255))
    loaded = load_image(saved(tmp_path, im, "PNG", icc_profile=linear_rgb_profile("Linear")))
    # Linear light 128/255 is sRGB 188; 0 and 255 stay.
    assert np.abs(loaded.frames[0].rgb.astype(int) - (188, 0, 255)).max() <= 1
    assert loaded.profile == "Linear"
    assert loaded.notes == ["converted colors from the embedded profile 'Linear' to sRGB"]


def test_srgb_profile_leaves_colors_exact(tmp_path: Path) -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    loaded = load_image(saved(tmp_path, Image.fromarray(rgb), "PNG", icc_profile=srgb))
    assert np.array_equal(loaded.frames[0].rgb, rgb)
    assert loaded.notes == []


def test_unreadable_profile_is_ignored_with_a_note(tmp_path: Path) -> None:
    im = Image.new("RGB", (3, 2), (1, 2, 3))
    loaded = load_image(saved(tmp_path, im, "PNG", icc_profile=b"not a profile" * 20))
    assert np.all(loaded.frames[0].rgb == (1, 2, 3))
    assert len(loaded.notes) == 1 and "unreadable color profile" in loaded.notes[0]


def test_a_profile_seen_again_converts_and_notes_the_same(tmp_path: Path) -> None:
    # The second image with the same profile reuses the first one's transform.
    profile = linear_rgb_profile("Linear again")
    first = saved(tmp_path, Image.new("RGB", (3, 2), (128, 0, 255)), "PNG", icc_profile=profile)
    second = tmp_path / "second.png"
    Image.new("RGB", (2, 2), (64, 64, 64)).save(second, icc_profile=profile)
    loaded = [load_image(first), load_image(second), load_image(first)]
    note = "converted colors from the embedded profile 'Linear again' to sRGB"
    assert [x.notes for x in loaded] == [[note]] * 3
    assert [x.profile for x in loaded] == ["Linear again"] * 3
    assert np.array_equal(loaded[0].frames[0].rgb, loaded[2].frames[0].rgb)
    # Linear light 64/255 is sRGB 137.
    assert np.abs(loaded[1].frames[0].rgb.astype(int) - 137).max() <= 1


# -- transparency, animation --------------------------------------------------


def test_hidden_colors_under_alpha_0_are_kept_out(tmp_path: Path) -> None:
    im, hidden = hidden_rgba()
    result = quantize_image(saved(tmp_path, im, "PNG"), colors=8)
    assert result.palette.hex == ["#0ac81e"]
    out = np.asarray(result.image.convert("RGBA"))
    alpha = np.asarray(im)[..., 3]
    assert np.array_equal(out[..., 3], alpha)
    assert not {tuple(c) for c in result.palette.colors} & hidden


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animation_frames_durations_and_loop(tmp_path: Path, fmt: str) -> None:
    loaded = load_image(save_animation(tmp_path / f"a.{fmt.lower()}", fmt, loop=2))
    assert len(loaded.frames) == 3
    assert [f.duration for f in loaded.frames] == DURATIONS
    assert loaded.loop == 2
    assert [tuple(f.rgb[0, 5].tolist()) for f in loaded.frames] == FRAME_COLORS


def test_multipage_tiff_uses_the_first_page_with_a_note(tmp_path: Path) -> None:
    pages = [Image.new("RGB", (4, 4), c) for c in FRAME_COLORS]
    path = tmp_path / "pages.tiff"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    loaded = load_image(path)
    assert len(loaded.frames) == 1 and tuple(loaded.frames[0].rgb[0, 0]) == FRAME_COLORS[0]
    assert loaded.notes == ["TIFF has 3 frames; only the first is used"]


# -- bad files, pixel limit ---------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("just some text\n"), "not a recognized image file"),
        (truncated_jpeg, "cannot decode image: image file is truncated"),
    ],
)
def test_bad_files_raise_input_error(tmp_path: Path, make: object, message: str) -> None:
    path = tmp_path / "bad.png"
    make(path)  # type: ignore[operator]
    with pytest.raises(InputError) as info:
        load_image(path)
    assert info.value.reason.startswith(message)
    assert str(info.value) == f"{path}: {info.value.reason}"


def test_pixel_limit_is_an_error_not_a_warning(tmp_path: Path) -> None:
    path = saved(tmp_path, Image.new("RGB", (100, 60)), "PNG")
    before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's warning must not escape either
        with pytest.raises(InputError) as info:
            load_image(path, max_pixels=5000)  # 6000 pixels: Pillow would only warn
    assert info.value.reason == (
        "image has 6000 pixels, more than the limit of 5000 (raise it with --max-pixels)"
    )
    with pytest.raises(InputError, match="image has 6000 pixels"):
        load_image(path, max_pixels=2000)  # over twice the limit: Pillow's own error
    assert load_image(path, max_pixels=6000).width == 100
    assert before == Image.MAX_IMAGE_PIXELS


def test_default_limit_is_pillows_and_max_pixels_raises_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    path = saved(tmp_path, Image.new("RGB", (50, 50)), "PNG")
    with pytest.raises(InputError, match="more than the limit of 1000"):
        load_image(path)
    assert load_image(path, max_pixels=2500).height == 50
    assert Image.MAX_IMAGE_PIXELS == 1000


# -- fitting to the output format ---------------------------------------------


def test_jpeg_and_bmp_flatten_onto_background() -> None:
    loaded = load_image(semi_transparent_rgba())
    flat = fit_to_format(loaded, "bmp", (0, 255, 0))
    frame = flat.frames[0]
    assert frame.alpha is None
    # alpha 0 -> background, 64 -> blend, 255 -> unchanged (left half red, right blue)
    assert frame.rgb[0, 0].tolist() == [0, 255, 0]
    assert frame.rgb[3, 0].tolist() == [250, 10, 10]
    expected = np.asarray(
        Image.alpha_composite(Image.new("RGBA", (16, 4), (0, 255, 0, 255)), semi_transparent_rgba())
    )[..., :3]
    assert np.array_equal(frame.rgb, expected)
    assert flat.notes == [
        "BMP has no transparency: 48 transparent or semi-transparent pixels flattened onto #00ff00"
    ]
    assert loaded.frames[0].alpha is not None  # the input is not modified


def test_gif_flattens_only_partial_alpha() -> None:
    flat = fit_to_format(load_image(semi_transparent_rgba()), "gif", (255, 255, 255))
    alpha = flat.frames[0].alpha
    assert alpha is not None
    assert alpha[:, 0].tolist() == [0, 255, 255, 255]
    assert flat.notes == [
        "GIF has no partial transparency: 32 semi-transparent pixels flattened onto #ffffff"
    ]


def test_png_keeps_everything_and_still_formats_keep_the_first_frame(tmp_path: Path) -> None:
    loaded = load_image(save_animation(tmp_path / "a.gif", "GIF"))
    assert fit_to_format(loaded, "png") is loaded
    first = fit_to_format(loaded, "jpeg")
    assert len(first.frames) == 1
    assert first.notes == ["JPEG cannot hold an animation: only the first of 3 frames"]


# -- rendering with transparency ----------------------------------------------


def test_semi_transparent_pixels_get_per_entry_alpha() -> None:
    result = quantize_image(semi_transparent_rgba(), colors=4)
    img = result.image
    assert img.mode == "P"
    assert isinstance(img.info["transparency"], bytes)
    back = np.asarray(img.convert("RGBA"))
    src = np.asarray(semi_transparent_rgba())
    assert np.array_equal(back[..., 3], src[..., 3])
    visible = src[..., 3] > 0
    assert np.array_equal(back[visible][:, :3], src[visible][:, :3])
    assert back[~visible][:, :3].tolist() == [[0, 0, 0]] * int((~visible).sum())
    buf = io.BytesIO()
    img.save(buf, "PNG")
    buf.seek(0)
    assert np.array_equal(np.asarray(Image.open(buf).convert("RGBA")), back)


def test_too_many_color_alpha_pairs_fall_back_to_rgba() -> None:
    palette = Palette.from_colors([[i, 0, 0] for i in range(0, 200, 10)])  # 20 colors
    indices = np.repeat(np.arange(20, dtype=np.uint8)[:, None], 20, axis=1)
    alpha = np.tile(np.arange(1, 21, dtype=np.uint8) * 10, (20, 1))  # 20 x 19 partial pairs
    keys = indices.astype(np.uint32)
    lut = np.arange(256, dtype=np.uint8)
    frame = Frame(palette.colors[indices], alpha)
    (img,) = render_frames([frame], [lut[keys]], palette)
    assert img.mode == "RGBA"
    out = np.asarray(img)
    assert np.array_equal(out[..., 3], alpha)
    assert np.array_equal(out[..., :3], palette.colors[indices])


# -- writing ------------------------------------------------------------------


def failing_writer(fh: IO[bytes]) -> None:
    fh.write(b"half an image")
    raise OSError(28, "No space left on device")


def test_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(OutputError) as info:
        write_files([(target, failing_writer)])
    assert str(info.value) == f"{target}: cannot write: No space left on device"
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["out.png"]


def test_files_written_together_are_all_or_nothing(tmp_path: Path) -> None:
    image, report = tmp_path / "a.png", tmp_path / "a.json"
    image.write_bytes(b"old image")
    with pytest.raises(OutputError):
        write_files([(image, bytes_writer(b"new image")), (report, failing_writer)])
    assert image.read_bytes() == b"old image"
    assert sorted(os.listdir(tmp_path)) == ["a.png"]
    write_files([(image, bytes_writer(b"new image")), (report, bytes_writer(b"{}"))], force=True)
    assert (image.read_bytes(), report.read_bytes()) == (b"new image", b"{}")


def test_failed_fsync_of_any_file_keeps_the_old_files_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fsyncs run on threads while the next file is written.
    image, report = tmp_path / "a.png", tmp_path / "a.json"
    image.write_bytes(b"old image")
    data = {image: b"new image", report: b"{}"}
    real_fsync = os.fsync
    for broken in data:

        def fsync(fd: int, size: int = len(data[broken])) -> None:
            if os.fstat(fd).st_size == size:
                raise OSError(5, "Input/output error")
            real_fsync(fd)

        monkeypatch.setattr(encode.os, "fsync", fsync)
        with pytest.raises(OutputError) as info:
            write_files([(path, bytes_writer(content)) for path, content in data.items()])
        assert str(info.value) == f"{broken}: cannot write: Input/output error"
        assert image.read_bytes() == b"old image"
        assert sorted(os.listdir(tmp_path)) == ["a.png"]


def test_written_files_get_the_usual_permissions_not_the_temp_files(tmp_path: Path) -> None:
    mask = os.umask(0o027)
    try:
        # The umask is read once at import, as the writers would see it then.
        expected = 0o666 & ~encode._UMASK
        write_files([(tmp_path / "a.json", bytes_writer(b"{}"))])
    finally:
        os.umask(mask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == expected
    assert expected != 0o600  # mkstemp's own mode would have been 0600


def test_interrupt_during_write_leaves_no_temp_file(tmp_path: Path) -> None:
    def interrupted(fh: IO[bytes]) -> None:
        fh.write(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_files([(tmp_path / "x.png", interrupted)])
    assert os.listdir(tmp_path) == []


def test_image_writer_writes_animation_without_profile(tmp_path: Path) -> None:
    frames = [Image.new("P", (4, 4), i) for i in range(3)]
    for f in frames:
        f.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    target = tmp_path / "a.gif"
    write_files([(target, image_writer(frames, "gif", durations=[50, 60, 70], loop=None))])
    with Image.open(target) as im:
        assert im.n_frames == 3 and "loop" not in im.info
        durations = []
        for i in range(3):
            im.seek(i)
            durations.append(im.info["duration"])
        assert durations == [50, 60, 70]
        assert "icc_profile" not in im.info
    with pytest.raises(ValueError, match="jpeg cannot hold an animation"):
        image_writer(frames, "jpeg")


def _palette_image(size: tuple[int, int], n_colors: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    # Runs of one index, as a recolored photo has, and some noise.
    index = np.repeat(rng.integers(0, n_colors, (size[1], size[0] // 8), dtype=np.uint8), 8, axis=1)
    index[rng.random(index.shape) < 0.1] = 0
    image = Image.fromarray(index, "P")
    image.putpalette(rng.integers(0, 256, n_colors * 3, dtype=np.uint8).tolist())
    return image


@pytest.mark.parametrize("alpha", [None, "index", "entries"])
def test_large_palette_png_is_deflated_in_parts_and_decodes_to_the_image(
    monkeypatch: pytest.MonkeyPatch, alpha: str | None
) -> None:
    monkeypatch.setattr(encode, "PNG_PART_PIXELS", 1 << 13)
    image = _palette_image((520, 130), 256)
    if alpha == "index":
        image.info["transparency"] = 255
    elif alpha == "entries":
        image.info["transparency"] = bytes(range(0, 256, 2)) + bytes([255] * 128)
    data = encode_image([image], "png")
    pillow = io.BytesIO()
    image.save(pillow, format="PNG", optimize=False, compress_level=6)
    # Not Pillow's single stream, yet the same image, palette and alpha.
    assert data != pillow.getvalue()
    with Image.open(io.BytesIO(data)) as back:
        back.load()
        assert (back.mode, back.size) == ("P", image.size)
        assert back.getpalette() == image.getpalette()
        assert back.info.get("transparency") == image.info.get("transparency")
        np.testing.assert_array_equal(np.asarray(back), np.asarray(image))
    # The parts are fixed by the image size, not by the threads available.
    monkeypatch.setattr(_threads, "thread_count", lambda: 1)
    assert encode_image([image], "png") == data


def test_png_of_few_colors_or_few_pixels_is_pillows_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encode, "PNG_PART_PIXELS", 1 << 13)
    for image in (_palette_image((520, 130), 16), _palette_image((120, 100), 256)):
        pillow = io.BytesIO()
        image.save(pillow, format="PNG", optimize=False, compress_level=6)
        assert encode_image([image], "png") == pillow.getvalue()


def test_adler32_combine_is_the_checksum_of_the_joined_bytes() -> None:
    rng = np.random.default_rng(1)
    for first_size, second_size in [(0, 0), (1, 70_000), (5000, 1), (65_521, 65_522)]:
        first = rng.integers(0, 256, first_size, dtype=np.uint8).tobytes()
        second = rng.integers(0, 256, second_size, dtype=np.uint8).tobytes()
        joined = encode.adler32_combine(zlib.adler32(first), zlib.adler32(second), second_size)
        assert joined == zlib.adler32(first + second)


def test_check_outputs_sees_the_input_through_any_spelling(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.png"
    link.symlink_to(src)
    hard = tmp_path / "hard.png"
    os.link(src, hard)
    for spelling in (tmp_path / "sub" / ".." / "in.png", link, hard):
        with pytest.raises(OutputError, match="refusing to overwrite the input"):
            check_outputs([spelling], [src], force=True)


def test_loaded_image_from_pillow_object_keeps_its_frame_position(tmp_path: Path) -> None:
    with Image.open(save_animation(tmp_path / "a.gif", "GIF")) as im:
        im.seek(1)
        loaded = load_image(im)
        assert im.tell() == 1
    assert isinstance(loaded, LoadedImage) and len(loaded.frames) == 3

"""The quantize command on odd inputs: exact outputs, one-line errors, nothing lost."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from quantize.cli import DEFAULT_MAX_PIXELS
from tests.helpers import gradient_rgb
from tests.helpers import run_cli as run
from tests.odd_images import (
    DURATIONS,
    exif_rotated_jpeg,
    hidden_rgba,
    linear_rgb_profile,
    ramp16,
    save_animation,
    semi_transparent_rgba,
    truncated_jpeg,
)


def report_of(image: Path) -> dict[str, Any]:
    return json.loads(image.with_suffix(".json").read_text())  # type: ignore[no-any-return]


def frames_of(path: Path) -> list[np.ndarray]:
    """Every frame of an image file as RGBA arrays, as a viewer shows them."""
    with Image.open(path) as im:
        out = []
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            out.append(np.asarray(im.convert("RGBA")))
        return out


def durations_of(path: Path) -> list[int]:
    with Image.open(path) as im:
        found = []
        for i in range(im.n_frames):
            im.seek(i)
            im.load()  # WebP sets a frame's duration when it decodes it
            found.append(round(im.info["duration"]))
        return found


def colors_of(frames: list[np.ndarray]) -> set[tuple[int, ...]]:
    visible = np.concatenate([f[f[..., 3] > 0][:, :3] for f in frames])
    return {tuple(int(v) for v in c) for c in np.unique(visible, axis=0)}


# -- animation -----------------------------------------------------------------


@pytest.mark.parametrize(("src_fmt", "out"), [("GIF", "gif"), ("GIF", "png"), ("PNG", "webp")])
def test_animation_keeps_frames_durations_and_loop(tmp_path: Path, src_fmt: str, out: str) -> None:
    src = save_animation(tmp_path / f"anim.{src_fmt.lower()}", src_fmt, loop=0)
    target = tmp_path / f"out.{out}"
    code, text = run(src, "-k", "4", "-o", target)
    assert code == 0, text
    frames = frames_of(target)
    assert len(frames) == 3
    assert durations_of(target) == DURATIONS
    with Image.open(target) as im:
        assert im.info["loop"] == 0
    report = report_of(target)
    assert report["frames"] == 3
    assert report["pixels"] == 3 * 12 * 8
    # one palette for all frames: every frame uses only report colors, and all are used
    assert colors_of(frames) == {tuple(c["rgb"]) for c in report["colors"]}
    assert [tuple(f[0, 5, :3]) for f in frames] == [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


def test_gif_without_loop_plays_once_as_gif(tmp_path: Path) -> None:
    src = save_animation(tmp_path / "once.gif", "GIF", loop=None)
    target = tmp_path / "out.gif"
    assert run(src, "-o", target)[0] == 0
    with Image.open(target) as im:
        assert im.n_frames == 3 and "loop" not in im.info


def test_animation_into_still_format_keeps_first_frame_with_warning(tmp_path: Path) -> None:
    src = save_animation(tmp_path / "anim.gif", "GIF")
    target = tmp_path / "first.bmp"
    code, text = run(src, "-k", "4", "-o", target)
    assert code == 0
    warning = f"quantize: warning: {src}: BMP cannot hold an animation: only the first of 3 frames"
    assert warning in text.splitlines()
    assert len(frames_of(target)) == 1
    assert frames_of(target)[0][0, 5, :3].tolist() == [200, 30, 30]
    report = report_of(target)
    assert report["frames"] == 1 and report["pixels"] == 12 * 8
    assert report["warnings"] == [
        "BMP cannot hold an animation: only the first of 3 frames",
        "requested 4 colors, image has 2",
    ]


def test_animation_with_transparency_keeps_it_in_every_frame(tmp_path: Path) -> None:
    frames = []
    for shift in range(3):
        rgba = np.zeros((8, 12, 4), np.uint8)
        rgba[:, :, :3] = (40 * shift, 90, 200)
        rgba[:, 4 * shift : 4 * shift + 4, 3] = 255  # a moving opaque block
        frames.append(Image.fromarray(rgba))
    src = tmp_path / "moving.png"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=DURATIONS)
    for out in ("gif", "png", "webp"):
        target = tmp_path / f"out.{out}"
        assert run(src, "-o", target, "--no-report")[0] == 0
        written = frames_of(target)
        assert len(written) == 3
        for shift, frame in enumerate(written):
            expected = np.zeros((8, 12), np.uint8)
            expected[:, 4 * shift : 4 * shift + 4] = 255
            assert np.array_equal(frame[..., 3], expected), (out, shift)


# -- transparency ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mode"), [("png", "P"), ("gif", "P"), ("tiff", "RGBA"), ("webp", "RGBA")]
)
def test_alpha_0_stays_alpha_0_and_takes_no_palette_color(
    tmp_path: Path, fmt: str, mode: str
) -> None:
    im, hidden = hidden_rgba()
    src = tmp_path / "hidden.png"
    im.save(src)
    code, text = run(src, "-k", "8", "--format", fmt)
    assert code == 0, text
    out = src.with_name(f"hidden-k8.{fmt}")
    with Image.open(out) as written:
        assert written.mode == mode
    (frame,) = frames_of(out)
    assert np.array_equal(frame[..., 3], np.asarray(im)[..., 3])
    report = report_of(out)
    assert report["colors"] == [
        {"hex": "#0ac81e", "rgb": [10, 200, 30], "count": 100, "fraction": 1.0}
    ]
    assert report["pixels"] == 100 and report["transparent_pixels"] == 300
    assert not {tuple(c["rgb"]) for c in report["colors"]} & hidden
    assert "requested 8 colors, image has 1" in report["warnings"]


def test_semi_transparent_png_keeps_alpha_and_exact_colors(tmp_path: Path) -> None:
    src = tmp_path / "soft.png"
    semi_transparent_rgba().save(src)
    assert run(src, "-k", "2")[0] == 0
    out = src.with_name("soft-k2.png")
    with Image.open(out) as im:
        assert im.mode == "P"  # 2 colors x 3 alpha levels + clear fit one palette
    (frame,) = frames_of(out)
    src_arr = np.asarray(semi_transparent_rgba())
    assert np.array_equal(frame[..., 3], src_arr[..., 3])
    visible = src_arr[..., 3] > 0
    assert np.array_equal(frame[visible][:, :3], src_arr[visible][:, :3])
    assert colors_of([frame]) == {tuple(c["rgb"]) for c in report_of(out)["colors"]}


def test_transparency_into_bmp_is_flattened_onto_background(tmp_path: Path) -> None:
    im, _ = hidden_rgba()
    src = tmp_path / "hidden.png"
    im.save(src)
    code, text = run(src, "--format", "bmp", "--background", "#ff0000")
    assert code == 0, text
    note = (
        "BMP has no transparency: 300 transparent or semi-transparent pixels flattened onto #ff0000"
    )
    assert f"quantize: warning: {src}: {note}" in text.splitlines()
    out = src.with_name("hidden-k16.bmp")
    (frame,) = frames_of(out)
    alpha = np.asarray(im)[..., 3]
    assert np.all(frame[alpha == 0] == (255, 0, 0, 255))
    assert np.all(frame[alpha == 255] == (10, 200, 30, 255))
    report = report_of(out)
    assert report["transparent_pixels"] == 0 and report["pixels"] == 400
    assert {tuple(c["rgb"]) for c in report["colors"]} == {(255, 0, 0), (10, 200, 30)}


def test_bad_background_is_usage_error(photo: Path) -> None:
    code, text = run(photo, "--background", "not-a-color")
    assert code == 2
    assert "--background" in text
    assert not photo.with_name("photo-k16.png").exists()


def test_fully_transparent_image_fails_with_one_line(tmp_path: Path) -> None:
    src = tmp_path / "clear.png"
    Image.new("RGBA", (5, 5), (1, 2, 3, 0)).save(src)
    code, text = run(src)
    assert code == 1
    assert (
        text == f"quantize: error: {src}: every pixel is fully transparent: nothing to quantize\n"
    )
    assert os.listdir(tmp_path) == ["clear.png"]


# -- orientation, profiles, depth -----------------------------------------------


def test_exif_rotated_jpeg_comes_out_upright(tmp_path: Path) -> None:
    src = exif_rotated_jpeg(tmp_path / "sideways.jpg")
    assert run(src, "-k", "2")[0] == 0
    out = src.with_name("sideways-k2.png")
    with Image.open(out) as im:
        assert im.size == (20, 30)
        assert im.getexif().get(0x0112) is None
        rgb = np.asarray(im.convert("RGB"))
    assert rgb[1, -2].argmax() == 2  # the blue corner is now top right
    assert rgb[-1, 0].argmax() == 0
    report = report_of(out)
    assert (report["width"], report["height"]) == (20, 30)


def test_icc_tagged_input_is_written_as_srgb(tmp_path: Path) -> None:
    src = tmp_path / "linear.png"
    Image.new("RGB", (6, 4), (128, 128, 128)).save(src, icc_profile=linear_rgb_profile("Lin"))
    code, text = run(src, "-k", "2")
    assert code == 0
    assert (
        f"quantize: warning: {src}: converted colors from the embedded profile 'Lin' to sRGB"
        in (text.splitlines())
    )
    out = src.with_name("linear-k2.png")
    with Image.open(out) as im:
        assert "icc_profile" not in im.info
    report = report_of(out)
    assert report["color_profile"] == "sRGB" and report["input_profile"] == "Lin"
    assert [abs(v - 188) <= 1 for v in report["colors"][0]["rgb"]] == [True] * 3


def test_16_bit_ramp_keeps_its_gradient(tmp_path: Path) -> None:
    src = tmp_path / "ramp.png"
    ramp16().save(src)
    assert run(src, "-k", "16")[0] == 0
    report = report_of(src.with_name("ramp-k16.png"))
    assert report["distinct_colors"] == 256
    assert len(report["colors"]) == 16
    grays = sorted(c["rgb"][0] for c in report["colors"])
    assert grays[0] < 16 and grays[-1] > 239


def test_cmyk_without_profile_warns(tmp_path: Path) -> None:
    src = tmp_path / "print.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(src, quality=95)
    code, text = run(src, "-k", "2")
    assert code == 0
    assert "CMYK image without a color profile" in text


def test_few_colors_warn_and_are_kept_exactly(tmp_path: Path) -> None:
    src = tmp_path / "gray.png"
    Image.fromarray(np.array([[0, 128, 255]] * 3, np.uint8), "L").save(src)
    code, text = run(src, "-k", "16")
    assert code == 0
    assert f"quantize: warning: {src}: requested 16 colors, image has 3" in text.splitlines()
    report = report_of(src.with_name("gray-k16.png"))
    assert sorted(c["hex"] for c in report["colors"]) == ["#000000", "#808080", "#ffffff"]


# -- bad files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("empty.png", lambda p: p.write_bytes(b""), "empty file"),
        ("notes.png", lambda p: p.write_text("hello\n"), "not a recognized image file"),
        (
            "cut.jpg",
            truncated_jpeg,
            "cannot decode image: image file is truncated (26 bytes not processed)",
        ),
    ],
)
def test_bad_file_one_line_exit_1_nothing_left(
    tmp_path: Path, name: str, make: Any, reason: str
) -> None:
    src = tmp_path / name
    make(src)
    code, text = run(src)
    assert code == 1
    if name == "cut.jpg":
        assert text.startswith(f"quantize: error: {src}: cannot decode image: image file is trunc")
        assert text.count("\n") == 1
    else:
        assert text == f"quantize: error: {src}: {reason}\n"
    assert os.listdir(tmp_path) == [name]


def test_pixel_limit_is_an_error_and_max_pixels_raises_it(tmp_path: Path) -> None:
    src = tmp_path / "big.png"
    Image.new("RGB", (100, 50), (9, 9, 9)).save(src)
    code, text = run(src, "--max-pixels", "4000")
    assert code == 1
    assert text == (
        f"quantize: error: {src}: image has 5000 pixels, more than the limit of 4000 "
        "(raise it with --max-pixels)\n"
    )
    assert os.listdir(tmp_path) == ["big.png"]
    assert run(src, "--max-pixels", "5000")[0] == 0
    assert DEFAULT_MAX_PIXELS == Image.MAX_IMAGE_PIXELS


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    src = tmp_path / "notes.png"
    src.write_text("hello")
    code, text = run(src, "--debug")
    assert code == 1
    assert "Traceback" in text and "UnidentifiedImageError" in text
    assert text.rstrip().endswith(f"quantize: error: {src}: not a recognized image file")


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path, photo: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    code, text = run(bad, photo, "-k", "4")
    assert code == 1
    assert f"quantize: error: {bad}: empty file" in text.splitlines()
    assert photo.with_name("photo-k4.png").exists()
    assert not bad.with_name("bad-k4.png").exists()


# -- safe writing -------------------------------------------------------------------


def test_failure_in_the_middle_of_a_write_keeps_the_previous_output(
    photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(photo, "-k", "4")[0] == 0
    image, report = photo.with_name("photo-k4.png"), photo.with_name("photo-k4.json")
    before = (image.read_bytes(), report.read_bytes())

    def broken_save(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        fp.write(b"\x89PNG half written")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    code, text = run(photo, "-k", "4", "--seed", "9", "--force")
    assert code == 1
    assert text == f"quantize: error: {photo}: {image}: cannot write: No space left on device\n"
    assert (image.read_bytes(), report.read_bytes()) == before
    assert sorted(os.listdir(photo.parent)) == ["photo-k4.json", "photo-k4.png", "photo.png"]


def test_an_input_is_never_an_output_of_another_input(tmp_path: Path) -> None:
    first, second = tmp_path / "a.png", tmp_path / "a-k16.png"
    gradient_rgb().save(first)
    gradient_rgb(seed=1).save(second)
    before = second.read_bytes()
    code, text = run(first, second, "--force")
    assert code == 1
    assert f"quantize: error: {first}: {second}: refusing to overwrite the input image" in text
    assert second.read_bytes() == before


def test_different_spelling_of_the_input_is_refused(photo: Path) -> None:
    before = photo.read_bytes()
    (photo.parent / "sub").mkdir()
    spelled = photo.parent / "sub" / ".." / photo.name
    code, text = run(photo, "-o", spelled, "--force")
    assert code == 1 and "refusing to overwrite the input image" in text
    assert photo.read_bytes() == before

"""Bounded inputs: frame bombs, hostile palette files, non-regular files, bad option values.

Whatever a file holds, quantize reads a bounded amount of it and fails with
one line: never a hang, a traceback or gigabytes of memory.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from quantize import quantize_image
from quantize.batch import BatchOptions, run_batch
from quantize.encode import GIF_MAX_DURATION, fit_to_format, image_writer
from quantize.errors import InputError, QuantizeError
from quantize.imageio import load_image
from quantize.limits import DEFAULT_MAX_FRAMES, MAX_N_INIT, MAX_PALETTE_FILE_BYTES
from quantize.palette_formats import PaletteError, parse_json_report, read_palette
from quantize.pipeline import RunOptions
from quantize.safeio import open_regular, read_small_file
from tests.helpers import ROOT, gradient_rgb
from tests.helpers import run_cli as run


def frame_bomb_gif(width: int, height: int, frames: int, *, at: tuple[int, int] = (0, 0)) -> bytes:
    """A GIF of ``frames`` 1x1 frames on a ``width`` x ``height`` canvas.

    Each frame costs 23 bytes in the file but a whole canvas once decoded.
    The frames after the first sit at ``at``; a frame outside the canvas
    makes Pillow grow the canvas to hold it.
    """
    out = bytearray(b"GIF89a" + struct.pack("<HH", width, height) + bytes([0x80, 0, 0]))
    out += bytes([0, 0, 0, 255, 255, 255])  # a 2-color global table
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    for index in range(frames):
        x, y = (0, 0) if index == 0 else at
        out += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: 100 ms
        out += b"\x2c" + struct.pack("<HHHH", x, y, 1, 1) + b"\x00"
        out += b"\x02\x02\x44\x01\x00"  # LZW code size 2, one pixel of color 1
    return bytes(out + b"\x3b")


@pytest.fixture
def bomb(tmp_path: Path) -> Path:
    """The issue's file: 729 bytes, 30 frames of 4000x4000 (480 M pixels) once decoded."""
    path = tmp_path / "bomb.gif"
    path.write_bytes(frame_bomb_gif(4000, 4000, 30))
    assert path.stat().st_size == 729
    return path


def peak_rss_mib(script: str) -> float:
    """Peak resident memory of a fresh interpreter running ``script``, in MiB.

    VmHWM is the peak of this program's own memory; ``ru_maxrss`` would also
    count the test process it was forked from (Linux keeps it across exec).
    """
    measure = textwrap.dedent(script) + textwrap.dedent(
        """
        import re
        status = open("/proc/self/status").read()
        print(int(re.search(r"VmHWM:\\s*(\\d+) kB", status).group(1)) / 1024)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", measure],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    return float(done.stdout.split()[-1])


# -- animation frames ------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_frame_bomb_is_refused_before_its_frames_are_decoded(bomb: Path) -> None:
    with pytest.raises(InputError, match=r"30 frames of 4000x4000, 480000000 pixels in all"):
        load_image(bomb)
    script = f"""
        from quantize.errors import InputError
        from quantize.imageio import load_image
        try:
            load_image({str(bomb)!r})
        except InputError:
            pass
        else:
            raise SystemExit("the bomb was decoded")
        """
    # Decoding every frame takes about 2 GB; refusing it, little more than
    # one 16 MP frame (Pillow decodes the first when the file is opened).
    assert peak_rss_mib(script) < 200


def test_frame_bomb_is_one_line_for_its_image_and_the_batch_goes_on(
    bomb: Path, photo: Path
) -> None:
    code, out = run(bomb, photo, "-o", bomb.parent / "out")
    assert code == 1
    assert f"quantize: error: {bomb}: animation has 30 frames" in out
    assert "(raise it with --max-pixels)" in out
    assert (bomb.parent / "out" / "photo-k16.png").exists()
    assert not (bomb.parent / "out" / "bomb-k16.png").exists()


def test_max_pixels_counts_every_frame(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    path.write_bytes(frame_bomb_gif(100, 100, 5))  # 10,000 pixels per frame, 50,000 in all
    with pytest.raises(InputError, match="5 frames of 100x100, 50000 pixels in all"):
        load_image(path, max_pixels=49_999)
    assert len(load_image(path, max_pixels=50_000).frames) == 5


def test_frames_that_grow_the_canvas_are_counted_before_they_are_decoded(
    tmp_path: Path,
) -> None:
    # A 10x10 canvas whose later frames sit at (2999, 2999): Pillow grows the
    # canvas to 3000x3000 (9 M pixels) for each of them, under the per-frame
    # limit but not in sum.
    path = tmp_path / "grow.gif"
    path.write_bytes(frame_bomb_gif(10, 10, 4, at=(2999, 2999)))
    with pytest.raises(InputError, match="frames add up to more than the limit of 10000000"):
        load_image(path, max_pixels=10_000_000)


def test_an_output_that_cannot_animate_decodes_only_the_first_frame(bomb: Path) -> None:
    loaded = load_image(bomb, animation=False)
    assert len(loaded.frames) == 1
    assert loaded.animation_frames == 30
    fitted = fit_to_format(loaded, "bmp")
    assert fitted.notes == ["BMP cannot hold an animation: only the first of 30 frames"]
    code, out = run(bomb, "-o", bomb.parent / "first.bmp")
    assert code == 0, out
    assert "only the first of 30 frames" in out


def test_max_frames_bounds_the_frames_decoded(tmp_path: Path) -> None:
    path = tmp_path / "many.gif"
    path.write_bytes(frame_bomb_gif(1, 1, 12))
    with pytest.raises(InputError, match=r"12 frames, more than the limit of 11 \(raise it"):
        load_image(path, max_frames=11)
    assert len(load_image(path, max_frames=12).frames) == 12
    assert load_image(path).frames  # the default allows it
    code, out = run(path, "--max-frames", "11", "-o", f"{tmp_path}/out/")
    assert code == 1
    assert "more than the limit of 11 (raise it with --max-frames)" in out
    code, out = run(path, "--max-frames", "0")
    assert code == 2
    assert DEFAULT_MAX_FRAMES >= 1000  # real animations have a few thousand frames at most


def test_the_shared_palette_pass_keeps_the_limits(tmp_path: Path, photo: Path) -> None:
    path = tmp_path / "anim.gif"
    path.write_bytes(frame_bomb_gif(100, 100, 5))
    options = BatchOptions(
        run=RunOptions(colors=4, max_pixels=40_000), output=str(tmp_path / "out"), workers=1
    )
    result = run_batch([path, photo], replace_shared(options))
    failed = {r.source: r.reason for r in result.failures}
    assert "50000 pixels in all" in failed[path]
    assert result.count("written") == 1


def replace_shared(options: BatchOptions) -> BatchOptions:
    from dataclasses import replace

    return replace(options, shared_palette=True)


# -- option values ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["-k", "auto", "--target-psnr", "nan"],
        ["-k", "auto", "--target-psnr", "inf"],
        ["-k", "auto", "--target-delta-e", "nan"],
        ["-k", "auto", "--target-delta-e", "inf"],
        ["--seed", "-1"],
        ["--dither", "--dither-method", "ordered", "--dither-strength", "nan"],
        ["--n-init", str(MAX_N_INIT + 1)],
        ["--n-init", str(10**30)],
    ],
)
def test_values_that_cannot_work_are_usage_errors_before_any_work(
    photo: Path, args: list[str]
) -> None:
    code, out = run(photo, *args)
    assert code == 2, out
    assert f"Invalid value for '{args[-2]}'" in out
    assert not list(photo.parent.glob("photo-k*"))


def test_n_init_up_to_the_maximum_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    gradient_rgb(12, 8).save(path)
    code, out = run(path, "-k", "2", "--n-init", str(MAX_N_INIT))
    assert code == 0, out
    assert json.loads(path.with_name("small-k2.json").read_text())["n_init"] == MAX_N_INIT
    with pytest.raises(ValueError, match=f"from 1 to {MAX_N_INIT}"):
        quantize_image(Image.open(path), 2, n_init=MAX_N_INIT + 1)


# -- palette files ---------------------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    yield path


def run_process(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real command in its own process: a hang fails the test instead of blocking it."""
    return subprocess.run(
        [sys.executable, "-m", "quantize", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def test_non_regular_palette_files_are_refused_without_reading(
    fifo: Path, photo: Path, tmp_path: Path
) -> None:
    for special, kind in [(fifo, "a FIFO"), (Path("/dev/zero"), "a device")]:
        done = run_process(photo, "--palette", special)
        assert done.returncode == 2, done.stderr
        assert f"{special}: cannot read palette file: is {kind}" in done.stderr
    with pytest.raises(PaletteError, match="is a directory"):
        read_palette(tmp_path)


def test_palette_files_are_read_up_to_a_limit(tmp_path: Path) -> None:
    fits = tmp_path / "fits.txt"
    fits.write_text("#102030\n" + ";" * (MAX_PALETTE_FILE_BYTES - 9) + "\n")
    assert fits.stat().st_size == MAX_PALETTE_FILE_BYTES
    assert read_palette(fits).hex == ["#102030"]
    big = tmp_path / "big.txt"
    big.write_bytes(fits.read_bytes() + b"\n")
    with pytest.raises(PaletteError, match=f"larger than the limit of {MAX_PALETTE_FILE_BYTES}"):
        read_palette(big)


def test_a_bad_line_is_quoted_as_a_short_excerpt(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("#zz" * 100_000 + "\n")
    with pytest.raises(PaletteError) as caught:
        read_palette(path)
    message = str(caught.value)
    assert "line 1: expected a hex color" in message
    assert "#zz#zz" in message
    assert len(message) < 200


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 100_000, "nested too deeply"),
        ('[{"hex": "#000000", "count": ' + "9" * 5000 + "}]", "number of 5000 digits"),
        ('[{"hex": "#000000", "count": ' + str(2**70) + "}]", "number of 22 digits"),
        ('[{"hex": "#000000", "count": ' + str(2**63) + "}]", "'count' must be an integer"),
        (
            json.dumps([{"rgb": [0, 0, 0], "count": 2**62}, {"rgb": [0, 0, 1], "count": 2**62}]),
            "counts add up to more than",
        ),
    ],
)
def test_palette_parser_crashes_are_one_line_errors(text: str, reason: str) -> None:
    with pytest.raises(PaletteError, match=reason) as caught:
        parse_json_report(text)
    assert "\n" not in str(caught.value)


def test_a_nested_palette_is_a_usage_error_from_the_option_and_from_palette_json(
    tmp_path: Path, photo: Path
) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    code, out = run(photo, "--palette", deep)
    assert code == 2
    assert "deep.json: invalid JSON: nested too deeply" in out
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "palette.json").write_text("[" * 100_000)
    code, out = run(photo, "--shared-palette", "--skip-existing", "-o", out_dir)
    assert code == 2
    assert (
        out.strip()
        == f"quantize: error: {out_dir / 'palette.json'}: invalid JSON: nested too deeply"
    )


# -- input files -----------------------------------------------------------------


def test_a_fifo_input_fails_its_image_without_hanging(fifo: Path, photo: Path) -> None:
    done = run_process(fifo, photo, "-o", f"{fifo.parent}/out/")
    assert done.returncode == 1
    assert f"quantize: error: {fifo}: is a FIFO (named pipe), not a regular file" in done.stderr
    assert (fifo.parent / "out" / "photo-k16.png").exists()


def test_sockets_devices_and_folders_are_refused_before_they_are_opened(tmp_path: Path) -> None:
    sock_path = tmp_path / "sock.png"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(sock_path))
        with pytest.raises(InputError, match=r": is a socket, not a regular file$"):
            load_image(sock_path)
    with pytest.raises(InputError, match=r": is a device, not a regular file$"):
        load_image("/dev/zero")
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(InputError, match=r": is a directory$"):
        load_image(folder)
    with pytest.raises(InputError, match=r": no such file$"):
        load_image(tmp_path / "missing.png")
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    with pytest.raises(InputError, match=r": cannot read: too many levels of symbolic links$"):
        load_image(loop)


def test_the_bounded_reader_reads_regular_files(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc")
    assert read_small_file(path, 3) == b"abc"
    with pytest.raises(InputError, match="larger than the limit of 2 bytes"):
        read_small_file(path, 2)
    with open_regular(path) as fh:
        assert fh.read() == b"abc"


def test_every_loader_failure_is_a_quantize_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(QuantizeError, match=r": empty file$"):
        load_image(path)


# -- long animations -------------------------------------------------------------


def test_identical_gif_frames_longer_than_a_gif_frame_can_show_are_written(
    tmp_path: Path,
) -> None:
    # Pillow merges identical frames and adds their durations: 900 s did not
    # fit the 16-bit field (hundredths of a second) and raised OverflowError.
    frames = [Image.new("P", (4, 3), 1) for _ in range(3)] + [Image.new("P", (4, 3), 2)]
    for frame in frames:
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    write = image_writer(frames, "gif", durations=[300_000, 300_000, 300_000, 700_000], loop=0)
    path = tmp_path / "long.gif"
    with path.open("wb") as fh:
        write(fh)
    with Image.open(path) as im:
        assert im.n_frames == 2
        assert im.info["duration"] == GIF_MAX_DURATION
        im.seek(1)
        assert im.info["duration"] == GIF_MAX_DURATION

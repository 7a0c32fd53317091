"""Nothing the user had is lost: protected inputs, exclusive all-or-nothing commits, temp files."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest
from PIL import Image

from quantize import batch, commit
from quantize.batch import BatchOptions, run_batch
from quantize.encode import bytes_writer, write_files
from quantize.pipeline import RunOptions
from tests.helpers import ROOT, gradient_rgb
from tests.helpers import run_cli as run


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def dead_pid() -> int:
    """The pid of a process that has already exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# -- every input is protected, however it was found or spelled -------------------------


def test_an_input_found_in_a_folder_is_never_overwritten(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    gradient_rgb(24, 16, seed=1).save(src / "a.png")
    found = out / "a-k16.png"  # an input (no a.* beside it), and a.png's output name
    gradient_rgb(24, 16, seed=2).save(found)
    before = found.read_bytes()
    code, text = run(src / "a.png", out, "-o", out, "--force", "-j", "1")
    assert code == 1
    error = f"quantize: error: {src / 'a.png'}: {found}: refusing to overwrite the input image"
    assert error in text.splitlines()
    assert found.read_bytes() == before
    # The found input itself is quantized from its own, untouched pixels.
    assert (out / "a-k16-k16.png").exists()
    assert listing(out) == ["a-k16-k16.json", "a-k16-k16.png", "a-k16.png"]


def test_an_input_found_in_a_folder_is_protected_through_a_hard_link(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    gradient_rgb(24, 16, seed=1).save(src / "a.png")
    gradient_rgb(24, 16, seed=2).save(src / "b.png")
    os.link(src / "b.png", out / "a-k16.png")
    result = run_batch([src], BatchOptions(RunOptions(force=True), output=str(out), workers=1))
    assert [r.status for r in result.results] == ["failed", "written"]
    assert "refusing to overwrite the input image" in (result.results[0].reason or "")
    assert os.path.samefile(src / "b.png", out / "a-k16.png")


def test_shared_palette_never_overwrites_an_input(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    # An image that happens to be named palette.json, named on the command line.
    gradient_rgb(24, 16, seed=1).save(out / "palette.json", format="PNG")
    gradient_rgb(24, 16, seed=2).save(tmp_path / "b.png")
    before = (out / "palette.json").read_bytes()
    code, text = run(
        out / "palette.json",
        tmp_path / "b.png",
        "-o",
        out,
        "--shared-palette",
        "--force",
        "-k",
        "4",
    )
    assert code == 1
    assert f"{out / 'palette.json'}: refusing to overwrite the input image" in text
    assert (out / "palette.json").read_bytes() == before


def test_an_image_output_never_lands_on_the_shared_palette(tmp_path: Path) -> None:
    gradient_rgb(24, 16, seed=1).save(tmp_path / "a.png")
    out = tmp_path / "out"
    code, text = run(
        tmp_path / "a.png", "-o", out / "palette.png", "--shared-palette", "--force", "-k", "4"
    )
    assert code == 1
    assert f"{out / 'palette.json'}: same output as the shared palette" in text
    assert not out.exists()  # the only image failed before any work


def test_the_palette_file_read_is_never_overwritten(photo: Path) -> None:
    assert run(photo, "-k", "4")[0] == 0
    given = photo.with_name("photo-k4.json")  # a report, read back as --palette
    before = given.read_bytes()
    code, text = run(photo, "--palette", given, "--force")
    assert code == 1
    assert f"{given}: refusing to overwrite the input image" in text
    assert given.read_bytes() == before


@pytest.mark.parametrize("second", ["dl/a.jpg", "d/../d/a.jpg", "dl/../d/a.jpg"])
def test_two_inputs_with_one_output_under_any_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, second: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("d").mkdir()
    os.symlink("d", "dl")
    gradient_rgb(24, 16, seed=1).save("d/a.png")
    gradient_rgb(24, 16, seed=2).save("d/a.jpg", quality=95)
    result = run_batch(["d/a.png", second], BatchOptions(RunOptions(force=True), workers=1))
    assert [r.status for r in result.results] == ["written", "failed"]
    assert (
        result.results[1].reason == f"{Path(second).parent / 'a-k16.png'}: same output as d/a.png"
    )
    report = json.loads(Path("d/a-k16.json").read_text())
    assert report["source"] == "d/a.png"


# -- one commit step: exclusive without --force, all or nothing ---------------------------


def test_a_file_that_appears_while_running_is_never_replaced(
    photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = photo.with_name("photo-k4.png")
    real_save = Image.Image.save

    def another_run_writes_first(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        image.write_bytes(b"another run's image")  # after planning, before the commit
        real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", another_run_writes_first)
    code, text = run(photo, "-k", "4")
    assert code == 1
    assert text == (
        f"quantize: error: {photo}: {image}: appeared while running; "
        "not replaced (use --force to overwrite)\n"
    )
    assert image.read_bytes() == b"another run's image"
    assert listing(photo.parent) == ["photo-k4.png", "photo.png"]


def test_ctrl_c_removes_only_the_files_this_run_placed(
    photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def another_run_finishes_then_ctrl_c(source: Path, plan: Any, opts: Any) -> None:
        for path in plan.paths:
            path.write_bytes(b"another run's output")
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "process_file", another_run_finishes_then_ctrl_c)
    result = run_batch([photo], BatchOptions(RunOptions(colors=4), workers=1))
    assert result.interrupted
    assert photo.with_name("photo-k4.png").read_bytes() == b"another run's output"
    assert photo.with_name("photo-k4.json").read_bytes() == b"another run's output"


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_signal_during_the_moves_waits_until_all_are_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: str
) -> None:
    """Ctrl-C or SIGTERM the moment the first file is in place: the set stays whole."""
    import signal

    class Stopped(Exception):
        pass

    def stop(number: int, frame: Any) -> None:
        raise Stopped

    previous = signal.signal(getattr(signal, signum), stop)
    real_link = os.link
    first = tmp_path / "a.png"

    def link_then_signal(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        real_link(src, dst, *args, **kwargs)
        if Path(dst) == first:
            os.kill(os.getpid(), getattr(signal, signum))  # raises right here, unless held

    monkeypatch.setattr(os, "link", link_then_signal)
    files = [(first, bytes_writer(b"image")), (tmp_path / "a.json", bytes_writer(b"report"))]
    log: list[tuple[Path, commit.FileId]] = []
    try:
        with pytest.raises(Stopped), commit.recording(log):
            write_files(files)
    finally:
        signal.signal(getattr(signal, signum), previous)
    assert listing(tmp_path) == ["a.json", "a.png"]  # both placed, no temporary file
    assert sorted(target.name for target, _ in log) == ["a.json", "a.png"]  # and undoable


@pytest.mark.parametrize("force", [False, True])
def test_a_failing_later_rename_undoes_the_earlier_ones(
    photo: Path, monkeypatch: pytest.MonkeyPatch, force: bool
) -> None:
    image, report = photo.with_name("photo-k4.png"), photo.with_name("photo-k4.json")
    if force:
        image.write_bytes(b"old image")
        report.write_bytes(b"old report")
    real_link, real_replace = os.link, os.replace

    def fail_on_report(real: Any) -> Any:
        def move(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            if Path(dst) == report and Path(src).name.endswith(".tmp"):
                raise OSError(errno.EIO, "Input/output error")
            real(src, dst, *args, **kwargs)

        return move

    monkeypatch.setattr(os, "link", fail_on_report(real_link))
    monkeypatch.setattr(os, "replace", fail_on_report(real_replace))
    code, text = run(photo, "-k", "4", *(["--force"] if force else []))
    assert (code, text) == (
        1,
        f"quantize: error: {photo}: {report}: cannot write: Input/output error\n",
    )
    if force:
        assert (image.read_bytes(), report.read_bytes()) == (b"old image", b"old report")
        assert listing(photo.parent) == ["photo-k4.json", "photo-k4.png", "photo.png"]
    else:
        assert listing(photo.parent) == ["photo.png"]


def test_force_replaces_every_file_and_keeps_no_backup(tmp_path: Path) -> None:
    image, report = tmp_path / "a.png", tmp_path / "a.json"
    image.write_bytes(b"old image")
    os.symlink("elsewhere.json", report)  # replaced itself, never followed
    write_files([(image, bytes_writer(b"new")), (report, bytes_writer(b"{}"))], force=True)
    assert (image.read_bytes(), report.read_bytes()) == (b"new", b"{}")
    assert not report.is_symlink()
    assert listing(tmp_path) == ["a.json", "a.png"]


def _race_script(order: str, sort: str, out: Path, sources: list[Path]) -> list[str]:
    files = [str(p) for p in (sources if order == "forward" else sources[::-1])]
    return [
        sys.executable,
        "-m",
        "quantize",
        *files,
        "-o",
        f"{out}/",
        "-k",
        "4",
        "--sort",
        sort,
        "-j",
        "1",
    ]


def test_two_concurrent_runs_never_replace_each_others_outputs(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    sources = []
    for i in range(40):
        sources.append(src / f"i{i:02d}.png")
        gradient_rgb(24, 16, seed=i).save(sources[-1])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # The runs go through the images in opposite orders, so they meet in the
    # middle; their reports tell them apart by --sort.
    runs = {
        sort: subprocess.Popen(
            _race_script(order, sort, out, sources), env=env, stderr=subprocess.PIPE, text=True
        )
        for order, sort in (("forward", "count"), ("backward", "hue"))
    }
    texts = {sort: proc.communicate(timeout=120)[1] for sort, proc in runs.items()}
    written: dict[str, set[str]] = {}
    for sort, text in texts.items():
        assert "Traceback" not in text
        written[sort] = set(re.findall(r"-> .*/(i\d\d)-k4\.png$", text, re.M))
        summary = re.search(r"^(\d+) written, 0 skipped, (\d+) failed", text, re.M)
        assert summary is not None, text
        assert int(summary[1]) == len(written[sort])
        for line in text.splitlines():
            if line.startswith("quantize: error: "):
                assert "already exists" in line or "appeared while running" in line, line
    # Every slot was written exactly once, by one of the runs.
    assert not written["count"] & written["hue"]
    assert written["count"] | written["hue"] == {f"i{i:02d}" for i in range(40)}
    assert len(listing(out)) == 80
    for stem in written["count"] | written["hue"]:
        report = json.loads((out / f"{stem}-k4.json").read_text())
        # The image and its report come from the run that said it wrote them.
        assert report["sort"] == ("count" if stem in written["count"] else "hue")
        with Image.open(out / f"{stem}-k4.png") as img:
            palette = np.asarray(img.getpalette()[: 3 * len(report["colors"])]).reshape(-1, 3)
        assert palette.tolist() == [c["rgb"] for c in report["colors"]]


# -- temporary files --------------------------------------------------------------------


def test_stale_temp_files_of_dead_runs_are_removed(
    photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit, "STALE_SECONDS", 0.0)  # ctime cannot be set back
    folder = photo.parent
    old = time.time() - 3600
    stale = folder / f".quantize-{dead_pid()}-abcd1234.tmp"
    alive = folder / f".quantize-{os.getppid()}-abcd1234.tmp"  # its owner is still running
    other = folder / ".photo-k4.png.abcd1234.tmp"  # not named like ours
    for path in (stale, alive, other):
        path.write_bytes(b"half an image")
        os.utime(path, (old, old))
    assert run(photo, "-k", "4")[0] == 0
    assert not stale.exists()
    assert alive.exists() and other.exists()


def test_temp_names_are_short_and_recognisable(tmp_path: Path) -> None:
    seen: list[str] = []

    def writer(fh: IO[bytes]) -> None:
        seen.extend(os.listdir(tmp_path))
        fh.write(b"{}")

    write_files([(tmp_path / ("c" * 250 + ".json"), writer)])
    assert len(seen) == 1
    assert re.fullmatch(rf"\.quantize-{os.getpid()}-[a-z0-9_]+\.tmp", seen[0])
    assert len(seen[0]) <= 32


def test_output_names_just_under_the_limit_are_accepted(tmp_path: Path) -> None:
    stem = "c" * 246  # outputs: 253 bytes (image) and 254 bytes (report)
    src = tmp_path / f"{stem}.png"
    gradient_rgb(24, 16).save(src)
    code, text = run(src, "-k", "4")
    assert (code, "error" in text) == (0, False)
    assert len(f"{stem}-k4.json") == 254
    assert listing(tmp_path) == [f"{stem}-k4.json", f"{stem}-k4.png", f"{stem}.png"]


# -- bad paths fail only their own image, with one line naming the path -----------------


def test_output_name_over_the_limit_fails_only_its_image(tmp_path: Path, photo: Path) -> None:
    long_input = tmp_path / ("c" * 250 + ".jpg")
    gradient_rgb(24, 16).save(long_input, quality=95)
    too_long = tmp_path / ("d" * 300 + ".png")  # cannot even exist
    code, text = run(long_input, too_long, photo, "-k", "4")
    assert code == 1
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.startswith("quantize: error:")]
    out = tmp_path / ("c" * 250 + "-k4.png")
    assert lines == [
        f"quantize: error: {long_input}: {out}: file name too long",
        f"quantize: error: {too_long}: file name too long",
    ]
    assert photo.with_name("photo-k4.png").exists()


def test_symlink_loop_among_inputs_fails_only_itself(tmp_path: Path, photo: Path) -> None:
    loop = tmp_path / "loop.png"
    os.symlink("loop.png", loop)
    code, text = run(loop, photo, "-k", "4")
    assert code == 1
    assert "Traceback" not in text
    assert f"quantize: error: {loop}: too many levels of symbolic links" in text.splitlines()
    assert photo.with_name("photo-k4.png").exists()


def test_an_output_folder_that_is_a_file_is_named(tmp_path: Path, photo: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    code, text = run(photo, "-o", f"{afile}/")
    assert (code, text) == (1, f"quantize: error: {photo}: {afile}: is not a folder\n")


def test_a_read_only_folder_is_named(
    tmp_path: Path, photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rofs = tmp_path / "rofs"
    rofs.mkdir()

    def read_only(*args: Any, **kwargs: Any) -> Any:
        # What the kernel says on a read-only mount, even for a folder that exists.
        raise OSError(errno.EROFS, "Read-only file system")

    real_open = os.open

    def open_read_only(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT:
            read_only()
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only)
    monkeypatch.setattr(os, "open", open_read_only)
    code, text = run(photo, "-o", rofs / "x.png")
    assert (code, text) == (
        1,
        f"quantize: error: {photo}: {rofs / 'x.png'}: cannot write: Read-only file system\n",
    )
    code, text = run(photo, "-o", rofs / "sub" / "x.png")
    assert (code, text) == (
        1,
        f"quantize: error: {photo}: {rofs / 'sub'}: cannot create folder: Read-only file system\n",
    )

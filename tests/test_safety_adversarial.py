"""Adversarial cases of the data-safety guarantees: odd names, aliased folders, foreign locks."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from quantize import batch, commit
from quantize.batch import BatchOptions, run_batch
from quantize.encode import bytes_writer, write_files
from quantize.errors import OutputError
from quantize.pipeline import RunOptions
from tests.helpers import gradient_rgb
from tests.test_safety import dead_pid, listing


def test_an_input_named_like_a_stale_temp_file_is_never_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit, "STALE_SECONDS", 0.0)  # ctime cannot be set back
    # The shared palette's folder is claimed before the images are planned:
    # stale temporary files may only be removed once every input is known.
    named = tmp_path / f".quantize-{dead_pid()}-abcd1234.tmp"
    gradient_rgb(16, 12, seed=1).save(named, format="PNG")
    gradient_rgb(16, 12, seed=2).save(tmp_path / "b.png")
    old = time.time() - 3600
    os.utime(named, (old, old))
    before = named.read_bytes()
    options = BatchOptions(RunOptions(colors=4), shared_palette=True, workers=1)
    result = run_batch([str(named), str(tmp_path / "b.png")], options)
    assert [r.status for r in result.results] == ["written", "written"]
    assert named.read_bytes() == before


def test_a_folder_locked_by_another_program_is_waited_for_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `flock out/ quantize ... -o out/` holds the folder's lock for the whole
    # run: each commit must not wait for it again (that was 10 s per image).
    monkeypatch.setattr(commit, "LOCK_WAIT_SECONDS", 1.0)
    monkeypatch.setattr(commit, "_held_elsewhere", set())
    naps: list[float] = []
    real_sleep = time.sleep

    def counted_sleep(seconds: float) -> None:
        naps.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(commit.time, "sleep", counted_sleep)
    holder = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        write_files([(tmp_path / "first.json", bytes_writer(b"{}"))])
        first = len(naps)
        for n in range(5):
            write_files([(tmp_path / f"later{n}.json", bytes_writer(b"{}"))])
    finally:
        os.close(holder)
    later = len(naps) - first
    assert first > 0
    assert later * 2 < first  # 5 later commits waited less, together, than the first
    assert sorted(os.listdir(tmp_path)) == [
        "first.json",
        *(f"later{n}.json" for n in range(5)),
    ]


@pytest.fixture
def bind_mount(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A folder and a second path to it (a bind mount): same folder, no symbolic link."""
    real, alias = tmp_path / "real", tmp_path / "alias"
    real.mkdir()
    alias.mkdir()
    try:
        subprocess.run(["mount", "--bind", str(real), str(alias)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("bind mounts need root")
    try:
        yield real, alias
    finally:
        subprocess.run(["umount", str(alias)], check=False)


def test_two_inputs_with_one_output_through_a_bind_mount(bind_mount: tuple[Path, Path]) -> None:
    # With --force the second image silently replaced the first one's outputs.
    real, alias = bind_mount
    gradient_rgb(24, 16, seed=1).save(real / "a.png")
    gradient_rgb(24, 16, seed=2).save(real / "a.jpg", quality=95)
    inputs = [str(real / "a.png"), str(alias / "a.jpg")]
    result = run_batch(inputs, BatchOptions(RunOptions(colors=4, force=True), workers=1))
    assert [r.status for r in result.results] == ["written", "failed"]
    assert result.results[1].reason == f"{alias / 'a-k4.png'}: same output as {real / 'a.png'}"
    report = json.loads((real / "a-k4.json").read_text())
    assert report["source"] == str(real / "a.png")


def test_skip_existing_skips_an_image_another_run_wrote_meanwhile(
    photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Overlapping `--skip-existing` runs over one folder share the work: an
    # image the other run finished first is skipped, not failed.
    image, report = photo.with_name("photo-k4.png"), photo.with_name("photo-k4.json")
    other_run_writes = [image, report]
    real_save = Image.Image.save

    def another_run_finishes_first(self: Image.Image, fp: Any, *args: Any, **kwargs: Any) -> None:
        for path in other_run_writes:  # after planning, before the commit
            path.write_bytes(b"another run's " + path.suffix.encode())
        real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", another_run_finishes_first)
    options = BatchOptions(RunOptions(colors=4), skip_existing=True, workers=1)
    result = run_batch([str(photo)], options)
    assert [r.status for r in result.results] == ["skipped"]
    assert image.read_bytes() == b"another run's .png"
    assert report.read_bytes() == b"another run's .json"
    # Only some of them: that is still a failure, and nothing is replaced.
    image.unlink()
    report.unlink()
    other_run_writes.remove(report)
    result = run_batch([str(photo)], options)
    assert [r.status for r in result.results] == ["failed"]
    assert "appeared while running" in result.results[0].reason
    assert listing(photo.parent) == ["photo-k4.png", "photo.png"]


def test_ctrl_c_after_a_forced_commit_keeps_the_image_outputs(
    photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The new files replaced the old ones (their backups already removed):
    # removing them on Ctrl-C left the image with no outputs at all.
    image, report = photo.with_name("photo-k4.png"), photo.with_name("photo-k4.json")
    image.write_bytes(b"old image")
    report.write_bytes(b"old report")
    real_process_file = batch.process_file

    def ctrl_c_right_after_the_commit(*args: Any, **kwargs: Any) -> Any:
        real_process_file(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "process_file", ctrl_c_right_after_the_commit)
    result = run_batch([photo], BatchOptions(RunOptions(colors=4, force=True), workers=1))
    assert result.interrupted
    assert json.loads(report.read_text())["image"] == str(image)
    with Image.open(image) as img:
        assert img.mode == "P"
    assert listing(photo.parent) == ["photo-k4.json", "photo-k4.png", "photo.png"]


def test_temp_files_changed_shortly_before_the_run_are_kept(photo: Path) -> None:
    # A run on another machine (or container) sharing the folder: its pid
    # means nothing here, so a file it wrote or linked (a --force backup keeps
    # the old file's mtime) just before this run started may still be in use.
    backup = photo.with_name(f".quantize-{dead_pid()}-abcd1234.tmp")
    backup.write_bytes(b"an old output, kept while its replacement is committed")
    old = time.time() - 3600
    os.utime(backup, (old, old))
    result = run_batch([str(photo)], BatchOptions(RunOptions(colors=4), workers=1))
    assert [r.status for r in result.results] == ["written"]
    assert backup.exists()


def test_the_same_folder_through_a_bind_mount_is_processed_once(
    bind_mount: tuple[Path, Path],
) -> None:
    real, alias = bind_mount
    gradient_rgb(24, 16, seed=1).save(real / "a.png")
    result = run_batch([str(real), str(alias)], BatchOptions(RunOptions(colors=4), workers=1))
    assert [(r.source, r.status) for r in result.results] == [(real / "a.png", "written")]


def test_a_forced_commit_undone_never_removes_a_file_another_run_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With --force a missing target was checked for, then replaced: a file
    # another run (without the folder lock) created in between was
    # overwritten, and the undo of a later failing move removed it for good.
    image, report = tmp_path / "a-k4.png", tmp_path / "a-k4.json"
    report.mkdir()  # the second move fails
    real_lexists = os.path.lexists
    created: list[Path] = []

    def another_run_creates_it_after_the_check(path: Any) -> bool:
        found = real_lexists(path)
        if Path(path) == image and not found and not created:
            image.write_bytes(b"another run's image")
            created.append(image)
        return found

    monkeypatch.setattr(os.path, "lexists", another_run_creates_it_after_the_check)
    files = [(image, bytes_writer(b"this run's image")), (report, bytes_writer(b"{}"))]
    with pytest.raises(OutputError, match="is a directory"):
        write_files(files, force=True)
    for path in created:
        assert path.read_bytes() == b"another run's image"

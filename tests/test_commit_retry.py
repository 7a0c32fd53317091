"""A job run again after its worker died: its earlier attempt's outputs are adopted, not refused.

A worker can die after committing an image's outputs, or in the middle of
the commit, before its outcome reaches the executor; the executor then runs
the job again.  The second attempt makes the same bytes (outputs are
deterministic), finds them in place and counts them written, without
writing them again, and completes a set the first attempt left partial.
A file with other bytes is still refused, and nothing is adopted outside a
job of a planned batch.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from quantize import commit
from quantize.batch import BatchOptions, Job, run_batch, run_job
from quantize.encode import bytes_writer, write_files
from quantize.errors import OutputError
from quantize.executors import LocalProcesses
from quantize.outputs import plan_outputs
from quantize.pipeline import RunOptions
from tests.helpers import gradient_rgb

OPTS = RunOptions(colors=8)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A small image: the jobs here are about files, not colors."""
    path = tmp_path / "photo.png"
    gradient_rgb(32, 24).save(path)
    return path


def _job(photo: Path) -> Job:
    return Job(photo, plan_outputs(photo, None, OPTS))


def _ids(paths: tuple[Path, ...]) -> dict[Path, tuple[int, int, bytes]]:
    """Each file's inode, change time and bytes: a file written again changes the first."""
    out = {}
    for path in paths:
        st = os.stat(path)
        out[path] = (st.st_ino, st.st_ctime_ns, path.read_bytes())
    return out


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_job_run_again_after_a_whole_commit_is_written_without_writing_again(
    photo: Path,
) -> None:
    job = _job(photo)
    first = run_job(job, OPTS)
    assert first.status == "written" and len(first.outputs) == 2
    before = _ids(first.outputs)
    again = run_job(job, OPTS)  # the first outcome never reached the executor
    assert (again.status, again.reason) == ("written", None)
    assert again.outputs == first.outputs
    assert _ids(again.outputs) == before  # the same files, untouched
    assert _listing(photo.parent) == ["photo-k8.json", "photo-k8.png", "photo.png"]


@pytest.mark.parametrize("left", ["image", "report"])
def test_a_job_run_again_after_a_partial_commit_completes_the_set(photo: Path, left: str) -> None:
    job = _job(photo)
    whole = {p: p.read_bytes() for p in run_job(job, OPTS).outputs}
    image, report = job.plan.image, job.plan.paths[-1]
    assert {image, report} == set(whole)
    # The worker died after placing one of the two files.
    kept, missing = (image, report) if left == "image" else (report, image)
    missing.unlink()
    kept_before = _ids((kept,))
    again = run_job(job, OPTS)
    assert (again.status, again.reason) == ("written", None)
    assert {p: p.read_bytes() for p in again.outputs} == whole
    assert _ids((kept,)) == kept_before
    assert _listing(photo.parent) == ["photo-k8.json", "photo-k8.png", "photo.png"]


def test_a_worker_killed_in_the_middle_of_the_commit_then_the_retry_completes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real worker processes (forked: they inherit the patch): the first
    # attempt at g1 places its image, then its worker is killed outright.
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        gradient_rgb(24, 16, seed=i).save(src / f"g{i}.png")
    marker = tmp_path / "died-once"
    real_place: Callable[..., Any] = commit._place

    def die_after_the_first_move(temp: Path, target: Path, *args: Any) -> Any:
        placed = real_place(temp, target, *args)
        if target.name == "g1-k8.png":
            try:
                marker.touch(exist_ok=False)
            except FileExistsError:
                return placed  # the retry
            os.kill(os.getpid(), signal.SIGKILL)
        return placed

    monkeypatch.setattr(commit, "_place", die_after_the_first_move)
    out = tmp_path / "out"
    with LocalProcesses(2) as pool:
        result = run_batch([src], BatchOptions(OPTS, output=f"{out}/"), executor=pool)
    assert marker.exists()
    assert [(r.status, r.reason) for r in result.results] == [("written", None)] * 4
    images = sorted(n for n in _listing(out) if not n.startswith("."))
    assert images == [f"g{i}-k8.{ext}" for i in range(4) for ext in ("json", "png")]


def test_a_different_file_is_still_refused_and_kept(photo: Path) -> None:
    job = _job(photo)
    job.plan.image.write_bytes(b"the user's own file")
    result = run_job(job, OPTS)
    assert result.status == "failed"
    assert result.reason == f"{job.plan.image}: already exists (use --force to overwrite)"
    assert job.plan.image.read_bytes() == b"the user's own file"
    assert _listing(photo.parent) == ["photo-k8.png", "photo.png"]


def test_a_symbolic_link_to_the_same_bytes_is_not_adopted(photo: Path) -> None:
    job = _job(photo)
    whole = {p: p.read_bytes() for p in run_job(job, OPTS).outputs}
    aside = photo.with_name("aside.png")
    job.plan.image.rename(aside)
    job.plan.paths[-1].unlink()
    job.plan.image.symlink_to(aside.name)
    result = run_job(job, OPTS)
    assert result.status == "failed" and "already exists" in str(result.reason)
    assert job.plan.image.is_symlink() and aside.read_bytes() == whole[job.plan.image]
    assert _listing(photo.parent) == ["aside.png", "photo-k8.png", "photo.png"]


def test_outside_a_job_the_same_bytes_are_still_refused(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"same")
    with pytest.raises(OutputError, match="appeared while running; not replaced"):
        write_files([(target, bytes_writer(b"same"))])
    assert _listing(tmp_path) == ["a.txt"]


def test_an_adopted_file_is_left_when_a_later_move_fails(tmp_path: Path) -> None:
    # Adopted: perhaps another run's file; the undo removes only what it moved.
    same, other, new = tmp_path / "same", tmp_path / "other", tmp_path / "new"
    same.write_bytes(b"same")
    other.write_bytes(b"theirs")
    log: list[tuple[Path, commit.FileId]] = []
    files = [(same, b"same"), (new, b"new"), (other, b"ours")]
    with commit.recording(log), pytest.raises(OutputError, match="other: appeared while"):
        write_files([(path, bytes_writer(data)) for path, data in files])
    assert _listing(tmp_path) == ["other", "same"]
    assert (same.read_bytes(), other.read_bytes()) == (b"same", b"theirs")
    assert log == []


def test_a_job_abandoned_after_adopting_keeps_its_whole_set(tmp_path: Path) -> None:
    # Removing only the newly placed file would leave a part of the set.
    same, new = tmp_path / "same", tmp_path / "new"
    same.write_bytes(b"same")
    log: list[tuple[Path, commit.FileId]] = []
    with commit.recording(log):
        write_files([(same, bytes_writer(b"same")), (new, bytes_writer(b"new"))])
    assert log == []
    commit.remove_committed(log)
    assert _listing(tmp_path) == ["new", "same"]

"""Streaming ``--force`` and ``--html`` batches: nothing the user had is lost, and the
outcome is the one of a run that reads the whole tree before planning."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from quantize import batch
from quantize.batch import BatchOptions, Progress, run_batch
from quantize.discover import Source, scan_images
from quantize.pipeline import RunOptions
from tests.helpers import ROOT, gradient_rgb


def image(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    gradient_rgb(12, 10, seed=seed).save(path)
    return path


def options(force: bool = True, **kwargs: object) -> BatchOptions:
    run = RunOptions(colors=4, force=force)
    return BatchOptions(run=run, workers=1, recursive=True, **kwargs)  # type: ignore[arg-type]


def snapshot(root: Path) -> dict[str, object]:
    """Every entry under ``root``: a link's target, a file's bytes and which names share it."""
    inodes: dict[int, str] = {}
    entries: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            entries[name] = ("link", os.readlink(path))
        elif path.is_file():
            st = path.stat()
            first = inodes.setdefault(st.st_ino, name)
            data = path.read_bytes().replace(os.fsencode(root), b"ROOT")  # reports name inputs
            entries[name] = ("file", data, first)
    return entries


def outcome(result: batch.BatchResult, root: Path) -> list[tuple[str, str, str | None]]:
    return [
        (
            r.source.relative_to(root).as_posix(),
            r.status,
            None if r.reason is None else r.reason.replace(str(root), "ROOT"),
        )
        for r in result.results
    ]


Run = tuple[list[tuple[str, str, str | None]], dict[str, object]]


def run_both(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    build: Callable[[Path], list[Path]],
    under_o: bool = False,
    html: bool = False,
    force: bool = True,
) -> tuple[Run, Run]:
    """The outcome and the files after a streamed run, and after one that reads the tree first."""
    runs = []
    for streaming in (True, False):
        root = tmp_path / ("streamed" if streaming else "whole")
        inputs = build(root)
        opts = options(force, output=str(root / "out") if under_o else None, html=html)
        assert batch.can_stream(inputs, opts)
        with monkeypatch.context() as patch:
            if not streaming:
                patch.setattr(batch, "can_stream", lambda inputs, options: False)
            result = run_batch(inputs, opts)
        runs.append((outcome(result, root), snapshot(root)))
    return runs[0], runs[1]


def beside(root: Path, out: Path | None) -> Path:
    """Where a/im.png's output folder is: beside it, or under ``-o``."""
    return root / "a" if out is None else out / "a"


# Each builds a tree whose a/im.png would replace a file that an input found
# later (in b/) is, or leads to: replaced as soon as a/ is planned, it is lost.


def late_link_to_output(root: Path, out: Path | None = None) -> list[Path]:
    image(root / "a" / "im.png", 1)
    old = image(beside(root, out) / "im-k4.png", 2)
    (root / "b").mkdir()
    os.symlink(os.path.relpath(old, root / "b"), root / "b" / "late.png")
    return [root]


def output_hard_linked_to_late_input(root: Path, out: Path | None = None) -> list[Path]:
    image(root / "a" / "im.png", 1)
    photo = image(root / "b" / "photo.png", 3)
    target = beside(root, out) / "im-k4.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(photo, target)
    return [root]


def output_linking_to_late_input(root: Path, out: Path | None = None) -> list[Path]:
    image(root / "a" / "im.png", 1)
    photo = image(root / "b" / "photo.png", 3)
    target = beside(root, out) / "im-k4.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(photo, target.parent), target)
    return [root]


HAZARDS = [late_link_to_output, output_hard_linked_to_late_input, output_linking_to_late_input]


@pytest.mark.parametrize("build", HAZARDS)
@pytest.mark.parametrize("under_o", [False, True], ids=["beside", "under-o"])
def test_force_never_replaces_what_a_later_input_is(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    build: Callable[[Path, Path | None], list[Path]],
    under_o: bool,
) -> None:
    def tree(root: Path) -> list[Path]:
        return build(root, root / "out" if under_o else None)

    streamed, whole = run_both(tmp_path, monkeypatch, tree, under_o)
    assert streamed == whole
    results, files = streamed
    target = "out/a/im-k4.png" if under_o else "a/im-k4.png"
    assert results[0] == (
        "a/im.png",
        "failed",
        f"ROOT/{target}: refusing to overwrite the input image",
    )
    assert all(status == "written" for _, status, _ in results[1:])
    # The file a/im.png would have replaced is still there, as it was.
    tree(tmp_path / "fresh")
    assert files[target] == snapshot(tmp_path / "fresh")[target]


def nested_tree(root: Path) -> list[Path]:
    """Folders in folders, old outputs to replace, and output names that collide."""
    for i, rel in enumerate(["a/x.png", "a/x.jpg", "a/s/y.png", "b/x.png", "b/s/t/z.png", "c.png"]):
        image(root / "in" / rel, i)
    image(root / "in" / "a" / "x-k4.png", 20)  # an old output
    image(root / "out" / "b" / "s" / "t" / "z-k4.png", 21)
    image(root / "out" / "a" / "x-k4.png", 22)
    os.symlink("../a/x-k4.png", root / "in" / "b" / "late.png")  # an old output, read late
    return [root / "in"]


@pytest.mark.parametrize(
    ("force", "html"),
    [(True, False), (True, True), (False, True)],
    ids=["force", "force-html", "html"],
)
@pytest.mark.parametrize("under_o", [False, True], ids=["beside", "under-o"])
def test_a_streamed_run_is_the_run_that_reads_the_tree_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, force: bool, html: bool, under_o: bool
) -> None:
    streamed, whole = run_both(tmp_path, monkeypatch, nested_tree, under_o, html, force)
    assert streamed[0] == whole[0]
    # The page's summary line tells the run's time.
    times = re.compile(rb"in [0-9.]+ s")
    for name, entry in whole[1].items():
        assert isinstance(entry, tuple)
        other = streamed[1][name]
        assert isinstance(other, tuple)
        if name.endswith("index.html"):
            assert times.sub(b"", entry[1]) == times.sub(b"", other[1])
        else:
            assert entry == other, name
    assert streamed[1].keys() == whole[1].keys()
    # a/x.jpg and a/x.png share an output; a/x-k4.png (beside) is read through b/late.png.
    written = {source for source, status, _ in streamed[0] if status == "written"}
    # out/b/s/t/z-k4.png is there already: replaced with --force.
    expected = {"a/s/y.png", "b/x.png", "c.png", "b/late.png"} | (
        {"b/s/t/z.png"} if force or not under_o else set()
    )
    assert expected <= {name.removeprefix("in/") for name in written}
    assert not html or ("out/index.html" if under_o else "in/index.html") in streamed[1]


def delayed_scan(
    second: Path, events: list[Progress], seen: list[int]
) -> Callable[..., Iterator[list[Source]]]:
    def scan(inputs: Iterable[str], **kwargs: object) -> Iterator[list[Source]]:
        for group in scan_images(inputs, **kwargs):  # type: ignore[arg-type]
            if group[0].path.parent == second:
                seen.append(sum(e.result is not None for e in events))
            yield group

    return scan


@pytest.mark.parametrize("kind", ["force", "force-replacing", "html"])
def test_force_and_html_start_work_before_the_scan_is_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    first, second = (
        image(tmp_path / "a" / "im.png", 1).parent,
        image(tmp_path / "b" / "b.png", 2).parent,
    )
    if kind == "force-replacing":
        image(tmp_path / "out" / "im-k4.png", 3)  # replaced: every input is protected first
    events: list[Progress] = []
    seen: list[int] = []
    monkeypatch.setattr(batch, "scan_images", delayed_scan(second, events, seen))
    run = RunOptions(colors=4, force=kind != "html")
    opts = BatchOptions(run, output=str(tmp_path / "out"), workers=1, html=kind == "html")
    result = run_batch([first, second], opts, events.append)
    assert result.count("written") == 2
    assert seen == [1]  # a/im.png was done before b/ was read


def test_the_scan_never_reads_the_thumbnails_this_run_writes(tmp_path: Path) -> None:
    # a.png, named first, is done before x/ is read; its thumbnails are in x/thumbs/ by then.
    folder = image(tmp_path / "x" / "a.png", 1).parent
    image(folder / "b.png", 2)
    opts = BatchOptions(RunOptions(colors=4), workers=1, recursive=True, html=True)
    result = run_batch([folder / "a.png", folder], opts)
    assert [r.source.name for r in result.results] == ["a.png", "b.png"]
    assert (folder / "thumbs" / "a-k4.png.before.webp").is_file()


def _unshare() -> bool:
    if shutil.which("unshare") is None or sys.platform != "linux":
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _unshare(), reason="needs unshare -rm (a user and mount namespace)")
@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_the_output_folder_mounted_inside_the_input_tree_is_not_read(
    tmp_path: Path, force: bool
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    image(src / "a" / "im.png", 1)
    (src / "z").mkdir()
    image(out / "old.png", 2)  # no input of this run: out/ is never read, by any path
    script = (
        f'mount --bind "{out}" "{src / "z"}" && '
        f'"{sys.executable}" -m quantize "{src}" -r -k 4 -j 1 -o "{out}" {"--force" * force}'
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, env=env)
    assert done.returncode == 0, done.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "a/im-k4.json",
        "a/im-k4.png",
        "old.png",
    ]

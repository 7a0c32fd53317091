"""The batch runner as a library: finding inputs, planning, workers, shared palettes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import quantize.outputs
from quantize import histogram
from quantize.batch import BatchOptions, Progress, run_batch
from quantize.discover import find_images
from quantize.errors import OutputError
from quantize.histogram import TableMerger, color_table
from quantize.palette import Palette
from quantize.pipeline import RunOptions, quantize_image
from tests.helpers import gradient_rgb


def used_colors(path: Path) -> set[tuple[int, int, int]]:
    """The RGB colors the pixels of an image file actually show."""
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB")).reshape(-1, 3)
    return {tuple(int(v) for v in c) for c in np.unique(rgb, axis=0)}  # type: ignore[misc]


def json_colors(path: Path) -> set[tuple[int, int, int]]:
    return {tuple(c["rgb"]) for c in json.loads(path.read_text())["colors"]}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """in/ with nested good images, a corrupt one, a text file and an earlier output.

    in/a.png, in/sub/b.png, in/sub/deep/c.jpg   good images
    in/bad.png                                  truncated PNG data
    in/notes.txt                                not an image
    in/a-k8.png                                 quantize's own output of a.png
    in/lonely-k8.png                            looks like an output, but has no source
    """
    root = tmp_path / "in"
    (root / "sub" / "deep").mkdir(parents=True)
    gradient_rgb(40, 30, seed=1).save(root / "a.png")
    gradient_rgb(36, 24, seed=2).save(root / "sub" / "b.png")
    gradient_rgb(32, 32, seed=3).save(root / "sub" / "deep" / "c.jpg", quality=95)
    gradient_rgb(20, 20, seed=4).save(root / "lonely-k8.png")
    good = (root / "a.png").read_bytes()
    (root / "bad.png").write_bytes(good[: len(good) // 3])
    (root / "notes.txt").write_text("not an image\n")
    gradient_rgb(40, 30, seed=9).save(root / "a-k8.png")
    return root


def names(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def opts(**kwargs: object) -> BatchOptions:
    run = kwargs.pop("run", RunOptions(colors=8))
    return BatchOptions(run=run, **kwargs)  # type: ignore[arg-type]


def test_find_images_skips_own_outputs_and_non_images(tree: Path) -> None:
    flat = [s.path.relative_to(tree) for s in find_images([tree])]
    assert [str(p) for p in flat] == ["a.png", "bad.png", "lonely-k8.png"]
    deep = [str(s.path.relative_to(tree)) for s in find_images([tree], recursive=True)]
    assert deep == ["a.png", "bad.png", "lonely-k8.png", "sub/b.png", "sub/deep/c.jpg"]
    assert {s.root for s in find_images([tree], recursive=True)} == {tree}


def test_named_files_are_always_tried_and_listed_once(tree: Path) -> None:
    found = list(find_images([tree / "notes.txt", tree / "a-k8.png", tree, tree / "a.png"]))
    assert [s.path.name for s in found] == [
        "notes.txt",
        "a-k8.png",
        "a.png",
        "bad.png",
        "lonely-k8.png",
    ]
    assert [s.root for s in found[:2]] == [None, None]


def test_output_folder_inside_the_input_is_not_an_input(tree: Path) -> None:
    out = tree / "sub" / "out"
    (out / "x").mkdir(parents=True)
    gradient_rgb(8, 8).save(out / "x" / "old.png")
    found = [s.path for s in find_images([tree], recursive=True, exclude=out)]
    assert not any(out in p.parents for p in found)
    assert tree / "sub" / "b.png" in found


@pytest.mark.parametrize(
    ("name", "stems", "expected"),
    [
        ("photo-k16.png", {"photo"}, True),
        ("photo-k16.swatch.png", {"photo"}, True),
        ("photo-k16.png", set(), False),
        ("photo-k16x.png", {"photo"}, False),
        ("my-kite.png", {"my"}, False),
    ],
)
def test_is_own_output(name: str, stems: set[str], expected: bool) -> None:
    assert quantize.outputs.is_own_output(name, stems) is expected


def test_mirrors_the_tree_and_counts(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_batch([tree], opts(output=str(out), recursive=True, workers=1))
    assert names(out) == {
        "a-k8.png",
        "a-k8.json",
        "lonely-k8-k8.png",
        "lonely-k8-k8.json",
        "sub/b-k8.png",
        "sub/b-k8.json",
        "sub/deep/c-k8.png",
        "sub/deep/c-k8.json",
    }
    assert (result.count("written"), result.count("skipped"), len(result.failures)) == (4, 0, 1)
    assert result.failures[0].source == tree / "bad.png"
    assert result.failures[0].reason is not None
    assert result.failures[0].reason.startswith("cannot decode image")
    assert not result.interrupted
    report = json.loads((out / "sub" / "b-k8.json").read_text())
    assert report["source"] == str(tree / "sub" / "b.png")
    assert report["palette_file"] is None


def test_workers_give_identical_bytes(tree: Path, tmp_path: Path) -> None:
    for n in (1, 2):
        run_batch([tree], opts(output=str(tmp_path / f"out{n}"), recursive=True, workers=n))
    files = sorted(names(tmp_path / "out1"))
    assert files == sorted(names(tmp_path / "out2"))
    for name in files:
        one = (tmp_path / "out1" / name).read_bytes()
        two = (tmp_path / "out2" / name).read_bytes()
        assert one.replace(b"/out1/", b"/out2/") == two, name


def test_skip_existing_does_no_work(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch([tree], opts(output=str(out), recursive=True, workers=1))
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    events: list[Progress] = []
    again = run_batch(
        [tree], opts(output=str(out), recursive=True, skip_existing=True), events.append
    )
    assert (again.count("written"), again.count("skipped"), len(again.failures)) == (0, 4, 1)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    # Images settled while planning are reported first.
    statuses = [e.result.status for e in events if e.result]
    assert statuses == ["skipped", "skipped", "skipped", "skipped", "failed"]


def test_existing_output_fails_that_image_only(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a-k8.png").write_bytes(b"precious")
    result = run_batch([tree], opts(output=str(out), workers=1))
    by_name = {r.source.name: r for r in result.results}
    assert by_name["a.png"].status == "failed"
    assert "already exists" in (by_name["a.png"].reason or "")
    assert by_name["lonely-k8.png"].status == "written"
    assert (out / "a-k8.png").read_bytes() == b"precious"
    assert not (out / "a-k8.json").exists()


def test_second_run_next_to_inputs_does_not_requantize(tree: Path) -> None:
    first = run_batch([tree], opts(recursive=True, workers=1))
    second = run_batch(
        [tree], opts(recursive=True, workers=1, run=RunOptions(colors=8, force=True))
    )
    assert [r.source for r in first.results] == [r.source for r in second.results]
    assert (tree / "sub" / "b-k8.png").exists()


def test_two_inputs_with_one_output_name(tmp_path: Path) -> None:
    gradient_rgb(16, 16).save(tmp_path / "x.png")
    gradient_rgb(16, 16, seed=5).save(tmp_path / "x.bmp")
    result = run_batch([tmp_path], opts(output=str(tmp_path / "out"), workers=1))
    assert [r.status for r in result.results] == ["written", "failed"]
    assert "same output as" in (result.results[1].reason or "")


def test_output_file_name_with_a_folder_input_is_refused(tree: Path) -> None:
    with pytest.raises(ValueError, match="-o is a folder"):
        run_batch([tree], opts(output=str(tree.parent / "x.png")))


def test_progress_events(tree: Path, tmp_path: Path) -> None:
    events: list[Progress] = []
    run_batch([tree], opts(output=str(tmp_path / "o"), workers=2), events.append)
    # The folder is read before its images run: its three images are the first total.
    assert events[0] == Progress("images", 0, 3, final=False)
    assert [e.done for e in events if e.result] == [1, 2, 3]
    # One event says when the scan is over; the total is final from then on.
    ends = [i for i, e in enumerate(events) if e.result is None and e.final]
    assert len(ends) == 1
    assert all(e.final for e in events[ends[0] :])
    assert events[-1].total == 3
    assert {e.result.source.name for e in events if e.result} == {
        "a.png",
        "bad.png",
        "lonely-k8.png",
    }


def test_shared_palette_is_used_by_every_output(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_batch([tree], opts(output=str(out), recursive=True, shared_palette=True))
    palette_file = out / "palette.json"
    assert result.palette_path == palette_file
    shared = json_colors(palette_file)
    assert len(shared) == 8
    doc = json.loads(palette_file.read_text())
    assert doc["images"] == 4
    assert doc["pixels"] == 40 * 30 + 36 * 24 + 32 * 32 + 20 * 20
    union: set[tuple[int, int, int]] = set()
    for image in out.rglob("*-k8.png"):
        colors = used_colors(image)
        assert colors <= shared, image
        assert json_colors(image.with_suffix(".json")) == colors
        assert json.loads(image.with_suffix(".json").read_text())["palette_file"] == str(
            palette_file
        )
        union |= colors
    assert union == shared
    assert len(result.failures) == 1


def test_shared_palette_is_reused_with_skip_existing(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch([tree], opts(output=str(out), shared_palette=True, workers=1))
    (out / "a-k8.png").unlink()
    (out / "a-k8.json").unlink()
    text = (out / "palette.json").read_text()
    again = run_batch([tree], opts(output=str(out), shared_palette=True, skip_existing=True))
    assert again.count("written") == 1 and again.count("skipped") == 1
    assert (out / "palette.json").read_text() == text
    assert used_colors(out / "a-k8.png") <= json_colors(out / "palette.json")


def test_shared_palette_file_exists_without_force(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "palette.json").write_text("{}")
    with pytest.raises(OutputError, match="already exists"):
        run_batch([tree], opts(output=str(out), shared_palette=True))
    assert names(out) == {"palette.json"}


def test_given_palette_maps_every_pixel_to_its_nearest_color() -> None:
    img = gradient_rgb(30, 20, seed=7)
    colors = np.array([[250, 10, 10], [10, 200, 30], [20, 20, 220], [240, 240, 240], [0, 0, 0]])
    result = quantize_image(img, palette=Palette.from_colors(colors))
    pixels = np.asarray(img).reshape(-1, 1, 3).astype(np.int64)
    nearest = colors[np.argmin(((pixels - colors[None]) ** 2).sum(-1), axis=1)]
    got = np.asarray(result.image.convert("RGB")).reshape(-1, 3)
    np.testing.assert_array_equal(got, nearest)
    assert result.n_iter == 0


def test_table_merger_matches_one_big_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(histogram, "_MERGE_ROWS", 50)
    rng = np.random.default_rng(0)
    parts = [rng.integers(0, 400, size=n).astype(np.uint32) for n in (30, 80, 5, 60)]
    expected = color_table(np.concatenate(parts))
    for order in ([0, 1, 2, 3], [3, 2, 1, 0]):
        merger = TableMerger()
        for i in order:
            table = color_table(parts[i])
            merger.add(table.keys, table.counts)
        got = merger.table()
        np.testing.assert_array_equal(got.keys, expected.keys)
        np.testing.assert_array_equal(got.counts, expected.counts)


def test_interrupt_removes_the_unfinished_image(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = quantize.outputs.write_files
    calls = 0

    def write_then_interrupt(files: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        real_write(files, **kwargs)
        if calls == 2:  # Ctrl-C right after the second image's files landed
            raise KeyboardInterrupt

    monkeypatch.setattr(quantize.outputs, "write_files", write_then_interrupt)
    out = tmp_path / "out"
    result = run_batch([tree], opts(output=str(out), workers=1))
    assert result.interrupted
    assert [r.status for r in result.results] == ["written", "failed", "interrupted"]
    assert names(out) == {"a-k8.png", "a-k8.json"}

"""One options object: its checks, its report fields, and what it plugs into."""

from __future__ import annotations

import inspect
import json
import pickle
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from quantize import quantize_image
from quantize.autok import Target
from quantize.batch import BatchOptions, run_batch
from quantize.options import QuantizeOptions
from quantize.palette import Palette
from quantize.pipeline import RunOptions
from quantize.report import SHARED_REPORT_KEYS, WrittenFacts
from quantize.vocabulary import SPACES

#: Each bad setting with the exact message quantize_image gave before the
#: checks moved into QuantizeOptions.validate.
BAD: list[tuple[dict[str, Any], str]] = [
    ({"colors": 1}, "colors must be between 2 and 256, got 1"),
    ({"colors": 257}, "colors must be between 2 and 256, got 257"),
    ({"colors": "many"}, "colors must be between 2 and 256, got many"),
    ({"algorithm": "dbscan"}, "algorithm must be 'kmeans' or 'minibatch', got 'dbscan'"),
    ({"n_init": 0}, "n_init must be an integer from 1 to 100 or 'auto', got 0"),
    ({"n_init": 101}, "n_init must be an integer from 1 to 100 or 'auto', got 101"),
    ({"n_init": 2.5}, "n_init must be an integer from 1 to 100 or 'auto', got 2.5"),
    ({"max_iter": 0}, "max_iter must be positive, got 0"),
    ({"space": "xyz"}, f"space must be one of {', '.join(SPACES)}, got 'xyz'"),
    ({"sort": "name"}, "sort must be one of count, hue, lightness, got 'name'"),
    (
        {"dither": "atkinson"},
        "dither must be one of none, floyd-steinberg, ordered, got 'atkinson'",
    ),
    (
        {"dither": "ordered", "dither_strength": 1.5},
        "dither_strength must be between 0 and 1, got 1.5",
    ),
    (
        {"dither": "floyd-steinberg", "dither_strength": 0.5},
        "Floyd-Steinberg dithering has no strength setting (only 1)",
    ),
    ({"target": Target("psnr", 30.0)}, "a quality target needs colors='auto'"),
    ({"keep": [1, 2, 3]}, "keep must be integer sRGB colors of shape (n, 3), got (3,)"),
    ({"keep": [[0.5, 0, 0]]}, "keep must be integer sRGB colors of shape (n, 3), got (1, 3)"),
    ({"keep": [[0, 0, 256]]}, "kept colors must be in 0..255"),
    ({"keep": [[1, 2, 3], [1, 2, 3]]}, "a kept color is given twice"),
    (
        {"colors": 2, "keep": [[0, 0, 0], [1, 1, 1], [2, 2, 2]]},
        "3 kept colors but only 2 palette colors",
    ),
]


@pytest.mark.parametrize(("settings", "message"), BAD)
def test_validate_rejects_each_bad_setting_as_quantize_image_did(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        QuantizeOptions(**settings).validate()
    assert str(raised.value) == message
    # quantize_image checks at its boundary through the same method.
    with pytest.raises(ValueError) as raised:
        quantize_image(Image.new("RGB", (4, 4), "red"), **settings)
    assert str(raised.value) == message


def test_validate_accepts_the_defaults_and_the_edges() -> None:
    QuantizeOptions().validate()
    QuantizeOptions(colors="auto", target=Target("delta_e", 2.0), n_init=100).validate()
    QuantizeOptions(colors=256, n_init=1, max_iter=1, space="oklab", sort="hue").validate()
    QuantizeOptions(dither="ordered", dither_strength=0.0).validate()
    # A palette decides the size: colors is not checked, kept colors fit any count.
    given = Palette.from_colors([[0, 0, 0]])
    QuantizeOptions(colors=1, palette=given, keep=[[9, 9, 9], [8, 8, 8]]).validate()


def test_kept_colors_are_checked_and_normalized() -> None:
    options = QuantizeOptions(keep=[[255, 0, 0], [0, 0, 255]])
    kept = options.kept_colors()
    assert kept is not None and kept.dtype == np.uint8
    assert kept.tolist() == [[255, 0, 0], [0, 0, 255]]
    assert QuantizeOptions(keep=np.zeros((0, 3), np.uint8)).kept_colors() is None


def test_every_option_is_a_keyword_of_quantize_image() -> None:
    # The options object is what process_file hands to quantize_image: a
    # field without a parameter (or the reverse) would fail there.
    params = inspect.signature(quantize_image).parameters
    assert [f.name for f in fields(QuantizeOptions)] == [p for p in params if p != "image"]
    for f in fields(QuantizeOptions):
        assert params[f.name].default == f.default, f.name


def test_quantize_image_hands_every_keyword_to_the_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A keyword added to quantize_image but not passed on to its options
    # would silently run with the default.
    class Seen(Exception):
        pass

    seen: dict[str, object] = {}

    def capture(options: QuantizeOptions) -> None:
        seen.update(vars(options))
        raise Seen

    monkeypatch.setattr(QuantizeOptions, "validate", capture)
    values = {f.name: object() for f in fields(QuantizeOptions)}
    with pytest.raises(Seen):
        quantize_image("never-read.png", **values)
    assert seen.keys() == values.keys()
    assert all(seen[name] is value for name, value in values.items())


def test_run_and_batch_options_stay_frozen_and_picklable() -> None:
    run = RunOptions(colors=8, space="lab", fmt="gif", keep=np.array([[1, 2, 3]], np.uint8))
    batch = BatchOptions(run=run, workers=2)
    assert isinstance(run, QuantizeOptions)
    again = pickle.loads(pickle.dumps(batch))
    assert again.run.as_kwargs()["space"] == "lab" and again.run.fmt == "gif"
    assert set(run.as_kwargs()) == {f.name for f in fields(QuantizeOptions)}
    with pytest.raises(AttributeError):
        run.colors = 4  # type: ignore[misc]


def test_report_fields_record_the_runs_made() -> None:
    options = QuantizeOptions(colors=8, n_init="auto", dither="ordered", dither_strength=0.25)
    assert options.report_fields(n_init=3) == {
        "colors_requested": 8,
        "algorithm": "kmeans",
        "space": "rgb",
        "dither": "ordered",
        "dither_strength": 0.25,
        "seed": 0,
        "n_init": 3,
        "max_iter": 300,
        "sort": "count",
    }
    plain = QuantizeOptions(keep=[[255, 0, 0]]).report_fields(n_init=0)
    assert plain["dither_strength"] is None and plain["keep"] == ["#ff0000"]


def gradient(path: Path) -> Path:
    ramp = np.linspace(0, 255, 32).astype(np.uint8)
    rgb = np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :], 128), axis=-1)
    Image.fromarray(rgb.astype(np.uint8), "RGB").save(path)
    return path


def test_report_fields_round_trip_through_the_written_reports(tmp_path: Path) -> None:
    """What the report files say is the options' report_fields, in order, for both kinds."""
    folder = tmp_path / "in"
    folder.mkdir()
    gradient(folder / "a.png")
    run = RunOptions(
        colors=6, n_init=2, space="oklab", sort="hue", seed=4, max_iter=50, keep=[[0, 0, 128]]
    )
    result = run_batch([folder], BatchOptions(run=run, output=str(tmp_path / "out"), workers=1))
    assert not result.failures
    image_report = json.loads((tmp_path / "out" / "a-k6.json").read_text())
    expected = run.report_fields(n_init=image_report["n_init"])
    assert image_report["n_init"] == 2  # two runs asked, two made
    assert {k: image_report[k] for k in expected} == expected
    keys = list(image_report)
    assert keys[keys.index("colors_requested") :][: len(expected)] == list(expected)
    assert [c["hex"] for c in image_report["colors"] if c["kept"]] == ["#000080"]

    out = tmp_path / "shared"
    result = run_batch([folder], BatchOptions(run=run, output=str(out), shared_palette=True))
    assert not result.failures
    shared = json.loads((out / "palette.json").read_text())
    assert list(shared) == ["images", *SHARED_REPORT_KEYS]
    settings = run.report_fields(n_init=shared["n_init"])
    assert {k: shared[k] for k in settings if k in shared} == {
        k: v for k, v in settings.items() if not k.startswith("dither")
    }


def test_options_need_neither_numpy_nor_pillow() -> None:
    script = (
        "import sys\n"
        "from quantize.options import QuantizeOptions\n"
        "o = QuantizeOptions(colors=8, space='lab')\n"
        "o.validate()\n"
        "assert o.report_fields(1)['space'] == 'lab'\n"
        "assert not {'numpy', 'PIL'} & set(sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_the_written_files_facts_close_an_image_report() -> None:
    result = quantize_image(Image.new("RGB", (4, 4), "red"), colors=2)
    alone = result.report(None, None)
    written = ("palette_file", "image_indexed", "image_colors")
    assert not set(written) & set(alone)
    full = result.report(None, "x.png", WrittenFacts("p.gpl", True, 1))
    assert list(full)[-3:] == list(written)
    assert [full[k] for k in written] == ["p.gpl", True, 1]
    assert {k: v for k, v in full.items() if k not in written} == {**alone, "image": "x.png"}


def test_the_cli_builds_the_options_from_every_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    import quantize.batch
    from quantize.cli import quantize_command

    seen: list[BatchOptions] = []

    def capture(
        inputs: object, options: BatchOptions, progress: object = None, executor: object = None
    ) -> None:
        seen.append(options)
        raise SystemExit(0)

    monkeypatch.setattr(quantize.batch, "run_batch", capture)
    args = [
        *("-k", "auto", "--target-delta-e", "2.5", "--algorithm", "minibatch"),
        *("--n-init", "3", "--max-iter", "7", "--seed", "5", "--space", "lab"),
        *("--sort", "hue", "--dither", "--dither-method", "ordered"),
        *("--dither-strength", "0.5", "--keep", "#ff0000", "--format", "gif"),
        *("-o", f"{tmp_path}/out/", "-j", "2", str(gradient(tmp_path / "a.png"))),
    ]
    done = CliRunner().invoke(quantize_command, args)
    assert done.exit_code == 0, done.output
    (options,) = seen
    run = options.run
    run.validate()
    assert run.as_kwargs() | {"keep": None} == {
        **QuantizeOptions().as_kwargs(),
        "colors": "auto",
        "target": Target("delta_e", 2.5),
        "algorithm": "minibatch",
        "n_init": 3,
        "max_iter": 7,
        "seed": 5,
        "space": "lab",
        "sort": "hue",
        "dither": "ordered",
        "dither_strength": 0.5,
    }
    kept = run.kept_colors()
    assert kept is not None and kept.tolist() == [[255, 0, 0]]
    assert (run.fmt, options.workers) == ("gif", 2)

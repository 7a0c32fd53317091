"""One n_init rule for the command and the library, and the runs in the report."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

import quantize._lloyd as loops
import quantize.kmeans as km
from quantize.cluster import resolve_n_init
from quantize.pipeline import quantize_image


def test_rule() -> None:
    assert [resolve_n_init("auto", k) for k in (2, 8, 16, 24, 32, 33, 64, 256)] == [
        8,
        8,
        4,
        1,
        1,
        2,
        2,
        2,
    ]
    assert resolve_n_init("auto", 16, "minibatch") == 3
    assert resolve_n_init(7, 16) == 7
    with pytest.raises(ValueError, match="n_init"):
        resolve_n_init("many", 16)


@pytest.mark.parametrize("k", [3, 10, 40])
def test_kmeans_general_path_uses_the_rule(k: int, monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []
    original = km._general_runs

    def spy(X: Any, w: Any, n_clusters: int, init: Any, n_init: int, *args: Any) -> Any:
        runs.append(n_init)
        return original(X, w, n_clusters, init, n_init, *args)

    monkeypatch.setattr(km, "_general_runs", spy)
    km.KMeans(k, random_state=0).fit(np.random.default_rng(0).random((300, 5)))
    assert runs == [resolve_n_init("auto", k)]


def test_minibatch_uses_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[int] = []
    original = loops.best_of

    def spy(X: Any, w: Any, n_clusters: int, init: Any, n_init: int, *args: Any) -> Any:
        runs.append(n_init)
        return original(X, w, n_clusters, init, n_init, *args)

    monkeypatch.setattr(loops, "best_of", spy)
    km.MiniBatchKMeans(4, random_state=0).fit(np.random.default_rng(0).random((3000, 5)))
    assert runs == [resolve_n_init("auto", 4, "minibatch")]


def gradient() -> Image.Image:
    return Image.radial_gradient("L").convert("RGB").resize((64, 64))


@pytest.mark.parametrize(("n_init", "k", "expected"), [("auto", 16, 4), ("auto", 8, 8), (3, 8, 3)])
def test_report_records_runs_made(n_init: Any, k: int, expected: int) -> None:
    result = quantize_image(gradient(), colors=k, n_init=n_init)
    assert result.settings["n_init"] == expected
    assert result.report("in.png", "out.png")["n_init"] == expected


def test_report_records_no_run_when_every_color_fits() -> None:
    image = Image.new("RGB", (8, 8), "red")
    assert quantize_image(image, colors=4).settings["n_init"] == 0


def test_fits_around_fixed_centers_use_the_rule_without_the_swap_exception() -> None:
    # No swap search runs around fixed centers, so 24 to 32 clusters get restarts.
    assert [resolve_n_init("auto", k, swaps=False) for k in (16, 24, 32, 64)] == [4, 2, 2, 2]


def test_the_report_records_the_runs_made_with_kept_colors() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    result = quantize_image(Image.fromarray(pixels), 24, seed=0, keep=[(255, 255, 255)])
    assert result.report(None, None)["n_init"] == 2

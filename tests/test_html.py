"""The --html page: outputs, numbers, and a real browser rendering it."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from quantize.batch import BatchOptions, run_batch
from quantize.pipeline import RunOptions
from quantize.report_html import THUMB_SIZE, build_page

from .helpers import SAMPLES, gradient_rgb, run_cli


class _Cards(HTMLParser):
    """The cards of a page (or of a DOM dump): their attributes, images and facts."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict[str, str]] = []
        self.images: list[dict[str, str]] = []
        self.facts: list[dict[str, str]] = []
        self._fact: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "article":
            self.cards.append(a)
            self.facts.append({})
        elif tag == "img":
            self.images.append({**a, "card": str(len(self.cards) - 1)})
        elif tag == "dd":
            self._fact = a.get("class")

    def handle_data(self, data: str) -> None:
        if self._fact is not None:
            self.facts[-1][self._fact] = data
            self._fact = None


def _parse(text: str) -> _Cards:
    parser = _Cards()
    parser.feed(text)
    return parser


@pytest.fixture
def batch(tmp_path: Path) -> tuple[Path, Path]:
    """Three images (one in a subfolder, one with transparency) and a broken file."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    gradient_rgb(120, 80, seed=1).save(src / "gradient.png")
    shutil.copy(SAMPLES / "sprite.png", src / "sprite.png")
    gradient_rgb(64, 96, seed=2).save(src / "sub" / "tall.jpg", quality=90)
    (src / "broken.jpg").write_bytes(b"not an image")
    return src, tmp_path / "out"


def _reports(out: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    return {
        r["source"]: r
        for r in (json.loads(p.read_text()) for p in out.rglob("*.json"))
        if "source" in r
    }


def test_html_writes_the_page_and_thumbnails_with_the_reported_numbers(
    batch: tuple[Path, Path],
) -> None:
    src, out = batch
    code, output = run_cli(src, "-r", "-o", f"{out}/", "-k", "6", "--html", "-j", "1")
    assert code == 1  # the broken file
    page = out / "index.html"
    assert f"page: {page}" in output
    cards = _parse(page.read_text())
    reports = _reports(out)
    assert len(cards.cards) == 4 and len(reports) == 3
    for card, facts in zip(cards.cards, cards.facts, strict=True):
        if card["data-status"] == "failed":
            continue
        report = next(r for s, r in reports.items() if s.lower() == card["data-name"])
        metrics = report["metrics"]
        assert float(card["data-psnr"]) == pytest.approx(
            metrics["psnr"], abs=6e-4
        )  # the report rounds to 3 decimals
        assert float(card["data-delta-e"]) == pytest.approx(
            metrics["delta_e_mean"], abs=6e-4
        )  # the report rounds to 3 decimals
        assert facts["k"] == str(len(report["colors"]))
        assert facts["psnr"] == f"{metrics['psnr']:.2f} dB"
        assert int(card["data-size"]) == Path(report["image"]).stat().st_size
    failed = [c for c in cards.cards if c["data-status"] == "failed"]
    assert [c["data-name"] for c in failed] == [str(src / "broken.jpg").lower()]
    # Two thumbnails per written image, the same size, loaded lazily, beside the page.
    assert len(cards.images) == 6
    for img in cards.images:
        assert img["loading"] == "lazy"
        path = out / img["src"]
        with Image.open(path) as thumb:
            assert thumb.format == "WEBP"
            assert thumb.size == (int(img["width"]), int(img["height"]))
            assert max(thumb.size) <= THUMB_SIZE
    assert (out / "thumbs" / "sub" / "tall-k6.png.after.webp").is_file()
    assert not list(out.rglob("*.tmp*"))


def test_existing_page_is_refused_without_force(batch: tuple[Path, Path]) -> None:
    src, out = batch
    out.mkdir()
    (out / "index.html").write_text("mine")
    code, output = run_cli(src / "gradient.png", "-o", f"{out}/", "--html")
    assert code == 1
    assert "index.html: already exists" in output
    assert (out / "index.html").read_text() == "mine"
    assert not (out / "gradient-k16.png").exists()
    code, output = run_cli(src / "gradient.png", "-o", f"{out}/", "--html", "--force")
    assert code == 0, output
    assert "gradient.png" in (out / "index.html").read_text()


def test_existing_thumbnail_fails_its_image_without_force(batch: tuple[Path, Path]) -> None:
    src, out = batch
    thumb = out / "thumbs" / "gradient-k16.png.before.webp"
    thumb.parent.mkdir(parents=True)
    thumb.write_bytes(b"old")
    code, output = run_cli(src / "gradient.png", "-o", f"{out}/", "--html")
    assert code == 1
    assert "already exists" in output
    assert thumb.read_bytes() == b"old"


def test_single_image_with_an_output_file_name(batch: tuple[Path, Path]) -> None:
    src, out = batch
    code, output = run_cli(src / "sprite.png", "-o", out / "small.png", "--html", "-k", "4")
    assert code == 0, output
    cards = _parse((out / "index.html").read_text())
    assert len(cards.cards) == 1
    assert {img["src"] for img in cards.images} == {
        "thumbs/small.png.before.webp",
        "thumbs/small.png.after.webp",
    }


def test_shared_palette_is_shown_on_top(batch: tuple[Path, Path]) -> None:
    src, out = batch
    (src / "broken.jpg").unlink()
    code, output = run_cli(src, "-o", f"{out}/", "--html", "--shared-palette", "-k", "5")
    assert code == 0, output
    text = (out / "index.html").read_text()
    shared = json.loads((out / "palette.json").read_text())
    top = text.index('<section class="shared">')
    assert top < text.index("<article")
    for color in shared["colors"]:
        assert color["hex"] in text[top : text.index("<article")]


def test_the_page_is_built_without_reading_any_image(
    batch: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    src, out = batch
    result = run_batch(
        [src / "gradient.png"],
        BatchOptions(run=RunOptions(colors=4), output=f"{out}/", workers=1, html=True),
    )
    written = result.results[0]
    assert written.page is not None  # made by the worker, with the result

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("the page builder decoded an image")

    monkeypatch.setattr(Image, "open", no_decoding)
    for thumb in out.rglob("*.webp"):
        thumb.unlink()
    assert "gradient-k4.png.after.webp" in build_page(result.results, out)


def test_html_markup_is_escaped(tmp_path: Path) -> None:
    odd = tmp_path / "<b>&'odd\".png"
    gradient_rgb(20, 20).save(odd, format="PNG")
    code, output = run_cli(odd, "-o", f"{tmp_path}/o/", "--html", "-k", "3")
    assert code == 0, output
    text = (tmp_path / "o" / "index.html").read_text()
    assert "<b>&" not in text
    assert "&lt;b&gt;&amp;" in text


# --------------------------------------------------------------------------
# In a real browser.


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    pytest.skip("no chromium in PATH: install Debian's chromium package to run the browser test")


def _dump_dom(browser: str, url: str) -> str:
    args = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1280,4000",
        "--virtual-time-budget=5000",
        "--dump-dom",
        url,
    ]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"chromium cannot run here: {exc}")
    if done.returncode != 0 or "<html" not in done.stdout:
        pytest.skip(f"chromium cannot run here: {done.stderr.strip()[-300:]}")
    return done.stdout


def test_the_page_in_headless_chromium(batch: tuple[Path, Path]) -> None:
    browser = _chromium()
    src, out = batch
    code, _ = run_cli(src, "-r", "-o", f"{out}/", "-k", "6", "--html", "-j", "1")
    assert code == 1
    url = (out / "index.html").resolve().as_uri()
    reports = _reports(out)

    dom = _parse(_dump_dom(browser, url))
    # Every thumbnail of every written image loaded (the page marks them).
    assert len(dom.images) == 6
    assert all(img.get("data-loaded") == "yes" for img in dom.images), dom.images
    # The numbers shown are the reports'.
    for card, facts in zip(dom.cards, dom.facts, strict=True):
        if card["data-status"] == "written":
            report = next(r for s, r in reports.items() if s.lower() == card["data-name"])
            # Shown with 2 decimals, reported with 3.
            shown_psnr = float(facts["psnr"].removesuffix(" dB"))
            assert shown_psnr == pytest.approx(report["metrics"]["psnr"], abs=0.0051)
            shown_de = float(facts["delta-e"])
            assert shown_de == pytest.approx(report["metrics"]["delta_e_mean"], abs=0.0051)
            assert facts["k"] == str(len(report["colors"]))

    by_psnr = _parse(_dump_dom(browser, url + "#sort=psnr"))
    psnr = [float(c["data-psnr"]) for c in by_psnr.cards if c["data-psnr"]]
    assert len(psnr) == 3 and psnr == sorted(psnr)
    assert by_psnr.cards[-1]["data-status"] == "failed"  # no PSNR: after the worst

    by_size = _parse(_dump_dom(browser, url + "#sort=size"))
    sizes = [int(c["data-size"]) for c in by_size.cards if c["data-size"]]
    assert sizes == sorted(sizes, reverse=True)

    failures = _parse(_dump_dom(browser, url + "#sort=name&show=failed"))
    shown = [c for c in failures.cards if "hidden" not in c["class"]]
    assert [c["data-status"] for c in shown] == ["failed"]


def test_a_pages_thumbnails_are_never_taken_as_inputs(batch: tuple[Path, Path]) -> None:
    src, _ = batch
    (src / "broken.jpg").unlink()
    code, output = run_cli(src, "-r", "--html", "-k", "4", "-j", "1")
    assert code == 0, output
    assert (src / "thumbs" / "gradient-k4.png.after.webp").is_file()
    code, output = run_cli(src, "-r", "--html", "-k", "4", "-j", "1", "--force")
    assert code == 0, output
    assert "thumbs" not in output.replace(f"page: {src / 'index.html'}", "")
    assert "3 written" in output

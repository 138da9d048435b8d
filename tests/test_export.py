"""BibTeX (keys, escaping, round trip through bibtexparser) and the survey's Markdown tables."""

from __future__ import annotations

import re

import bibtexparser
import pytest
from bibtexparser.bparser import BibTexParser
from click.testing import CliRunner

from evla_miner.cli import cli
from evla_miner.core.db import open_db
from evla_miner.core.decisions import record_decision
from evla_miner.core.errors import BadInput
from evla_miner.core.progress import Reporter
from evla_miner.core.records import paper_from_snapshot, upsert_papers
from evla_miner.core.settings import seeds_dir
from evla_miner.ingest.seeds import init_db
from evla_miner.review import export as export_module
from evla_miner.review.export import export_bibtex, export_markdown, tex_escape

LEAF = "model.compression.quantization"

HOSTILE_TITLES = {
    "2510.10001": "{Unbalanced brace opens but never closes",
    "2510.10002": "Balanced {PaLM} grouping, then }{ reversed braces",
    "2510.10003": r"100% & more # tags_under $\pi_0$: cost $5",
    "2510.10004": "Ünïcödé — naïve 日本語 Δ-VLA",
    "2510.10005": r"\emph{Fast} \LaTeX\ commands and \"{u}ber \& escaped",
    "2510.10006": "Trailing backslash \\",
    "2510.10007": 'Tilde ~ caret ^ and @at and "quotes"',
    "2510.10008": "$\\mathcal{O}(n)$ attention with 50% less {memory}",
}


def add_paper(
    db, paper_id, title, date="Mon, 6 Oct 2025 00:00:00 GMT", authors_parsed=None, **extra
):
    authors_parsed = authors_parsed or [["Lovelace", "Ada", ""], ["Turing", "Alan", ""]]
    record = {
        "id": paper_id,
        "title": title,
        "authors": " and ".join(f"{first} {last}" for last, first, _ in authors_parsed),
        "authors_parsed": authors_parsed,
        "abstract": "Efficient robots.",
        "categories": "cs.RO cs.LG",
        "versions": [{"version": "v1", "created": date}],
        **extra,
    }
    upsert_papers(db, [paper_from_snapshot(record, source="test")])


def accept(db, paper_id, leaf=LEAF):
    record_decision(db, paper_id, "accept", [leaf], reviewer="t")


def brace_depth_ok(value: str) -> bool:
    depth = 0
    for char in value:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def parse(text):
    parser = BibTexParser(common_strings=True, ignore_nonstandard_types=False)
    return {e["ID"]: e for e in bibtexparser.loads(text, parser=parser).entries}


def test_hostile_titles_round_trip(seeded_db):
    for paper_id, title in HOSTILE_TITLES.items():
        add_paper(
            seeded_db,
            paper_id,
            title,
            authors_parsed=[['M\\"uller', "J{\\o}rg", "Jr"], ["O'Brien_%", "Ana & Co", ""]],
        )
        accept(seeded_db, paper_id)
    result = export_bibtex(seeded_db, status="accepted")  # validates by parsing back itself
    assert result.count == len(HOSTILE_TITLES)
    entries = parse(result.text)
    by_eprint = {e["eprint"]: e for e in entries.values()}
    assert set(by_eprint) == set(HOSTILE_TITLES)
    for entry in entries.values():
        for field, value in entry.items():
            assert brace_depth_ok(value), (field, value)
            # no unescaped specials outside math
            outside_math = re.sub(r"\$[^$]*\$", "", value)
            assert not re.search(r"(?<!\\)[&%#]", outside_math), (field, value)
    titles = {pid: e["title"] for pid, e in by_eprint.items()}
    assert titles["2510.10001"] == r"{\textbraceleft{}Unbalanced brace opens but never closes}"
    assert titles["2510.10003"] == r"{100\% \& more \# tags\_under $\pi_0$: cost \$5}"
    assert titles["2510.10004"] == "{Ünïcödé — naïve 日本語 Δ-VLA}"
    assert titles["2510.10005"] == r"{\emph{Fast} \LaTeX\ commands and \"{u}ber \& escaped}"
    assert titles["2510.10006"] == r"{Trailing backslash \textbackslash{}}"
    assert titles["2510.10008"] == r"{$\mathcal{O}(n)$ attention with 50\% less {memory}}"
    assert "\\textbraceright{}\\textbraceleft{}" in titles["2510.10002"]
    assert by_eprint["2510.10003"]["author"] == r"M\"uller, Jr, J{\o}rg and O'Brien\_\%, Ana \& Co"
    assert {e["ID"] for e in entries.values()} == {
        "muller2025unbalanced",
        "muller2025balanced",
        "muller2025100",
        "muller2025unicode",
        "muller2025fast",
        "muller2025trailing",
        "muller2025tilde",
        "muller2025attention",
    }


def test_tex_escape_keeps_balanced_math_and_commands():
    assert tex_escape("A_B & C") == r"A\_B \& C"
    assert tex_escape(r"$x_1 \& y$ and \% done") == r"$x_1 \& y$ and \% done"
    assert tex_escape("} bad {") == r"\textbraceright{} bad \textbraceleft{}"


def test_arxiv_fields_types_and_key_shape(seeded_db):
    add_paper(
        seeded_db,
        "2510.10010",
        "The PaLM-E Story: On Robots",
        date="Tue, 4 Jun 2024 00:00:00 GMT",
        authors_parsed=[["Driess", "Danny", ""]],
        doi="10.1000/xyz123",
    )
    add_paper(seeded_db, "2510.10011", "Conference Paper", **{"journal-ref": "CoRL 2024, Munich"})
    add_paper(
        seeded_db,
        "2510.10012",
        "Journal Paper",
        **{"journal-ref": "IEEE Robotics and Automation Letters 9 (2024) 1-8"},
    )
    for pid in ("2510.10010", "2510.10011", "2510.10012"):
        accept(seeded_db, pid)
    text = export_bibtex(seeded_db, status="accepted").text
    entries = parse(text)
    palme = entries["driess2024palme"]
    assert palme["ENTRYTYPE"] == "misc"
    assert palme["eprint"] == "2510.10010" and palme["archiveprefix"] == "arXiv"
    assert palme["primaryclass"] == "cs.RO" and palme["url"] == "https://arxiv.org/abs/2510.10010"
    assert (palme["year"], palme["month"]) == ("2024", "June")
    assert palme["doi"] == "10.1000/xyz123"
    assert "month = jun," in text  # the standard macro, not a braced string
    assert entries["lovelace2025conference"]["ENTRYTYPE"] == "inproceedings"
    assert entries["lovelace2025conference"]["booktitle"] == "CoRL 2024, Munich"
    assert entries["lovelace2025journal"]["ENTRYTYPE"] == "article"
    assert entries["lovelace2025journal"]["journal"].startswith("IEEE Robotics")


def test_keys_are_stable_across_exports_and_new_papers(seeded_db):
    add_paper(seeded_db, "2510.10020", "Tiny Models", date="Mon, 6 Oct 2025 00:00:00 GMT")
    accept(seeded_db, "2510.10020")
    first = export_bibtex(seeded_db, status="survey")
    keys_before = dict(seeded_db.execute("select paper_id, key from bibtex_keys").fetchall())
    assert keys_before["2510.10020"] == "lovelace2025tiny"
    assert first.new_keys == len(keys_before) == seeded_db["survey"].count
    # a new paper with the same base key, published EARLIER, arrives later
    add_paper(seeded_db, "2501.00001", "Tiny Things", date="Mon, 6 Jan 2025 00:00:00 GMT")
    accept(seeded_db, "2501.00001")
    second = export_bibtex(seeded_db, status="survey")
    keys_after = dict(seeded_db.execute("select paper_id, key from bibtex_keys").fetchall())
    assert second.new_keys == 1
    assert {k: keys_after[k] for k in keys_before} == keys_before
    assert keys_after["2501.00001"] == "lovelace2025tinya"
    assert len(set(keys_after.values())) == len(keys_after)
    # same text for the same papers on a third export
    assert export_bibtex(seeded_db, status="survey").text == second.text
    # even a title change does not move a stored key
    seeded_db["papers"].update("2510.10020", {"title": "Huge Models"})
    assert "@misc{lovelace2025tiny," in export_bibtex(seeded_db, status="accepted").text


def test_status_and_category_filters(seeded_db):
    add_paper(seeded_db, "2510.10030", "Accepted One")
    add_paper(seeded_db, "2510.10031", "Never Reviewed")
    accept(seeded_db, "2510.10030", leaf="model.arch.mixture_of_experts")
    assert export_bibtex(seeded_db, status="accepted").count == 1
    survey = export_bibtex(seeded_db, status="survey").count
    assert survey == seeded_db["survey"].count
    assert export_bibtex(seeded_db, status="all").count == seeded_db["papers"].count
    assert export_bibtex(seeded_db, status="accepted", category="model").count == 1
    assert export_bibtex(seeded_db, status="accepted", category="data").count == 0
    with pytest.raises(BadInput, match="unknown taxonomy node"):
        export_bibtex(seeded_db, category="nope")


def test_markdown_export_escapes_html_in_titles(seeded_db):
    add_paper(
        seeded_db, "2510.10050", "<script>alert(1)</script> Fast & <img src=x onerror=alert(2)>"
    )
    add_paper(seeded_db, "2510.10051", "Plain", comments='Code: https://github.com/a/b"><b>x')
    for pid in ("2510.10050", "2510.10051"):
        accept(seeded_db, pid)
    text = export_markdown(seeded_db, category=LEAF)
    assert "<" not in text and ">" not in text
    assert (
        "[&lt;script&gt;alert(1)&lt;/script&gt; Fast &amp; &lt;img src=x onerror=alert(2)&gt;]"
        "(https://arxiv.org/abs/2510.10050)" in text
    )
    assert "[Code](https://github.com/a/b)" in text


def test_markdown_tables(seeded_db):
    leaf = "model.arch.mixture_of_experts"
    add_paper(
        seeded_db,
        "2510.10040",
        "Zeta | Pipe [draft]",
        date="Mon, 6 Oct 2025 00:00:00 GMT",
        comments="Project page: https://zeta.github.io/. Code: https://github.com/z/zeta.",
    )
    add_paper(
        seeded_db,
        "2510.10041",
        "alpha first",
        date="Mon, 6 Oct 2025 00:00:00 GMT",
        **{"journal-ref": "CoRL 2025"},
    )
    add_paper(seeded_db, "2310.10042", "Older Paper", date="Mon, 9 Oct 2023 00:00:00 GMT")
    for pid in ("2510.10040", "2510.10041", "2310.10042"):
        accept(seeded_db, pid, leaf)
    text = export_markdown(seeded_db, category=leaf)
    lines = text.splitlines()
    assert lines[:6] == [
        "## Efficient Model Design",
        "",
        "### Efficient Architectures",
        "",
        "#### Mixture-of-Experts",
        "",
    ]
    assert lines[6] == "| Year | Venue | Paper | Website | Code |"
    assert lines[7] == "|---|---|---|---|---|"
    rows = [line for line in lines[8:] if line.startswith("| ")]
    years = [row.split(" | ")[0].strip("| ") for row in rows]
    assert years == sorted(years)
    assert rows[0].startswith("| 2023 | arXiv | [Older Paper](https://arxiv.org/abs/2310.10042) |")
    assert "| 2025 | CoRL 2025 | [alpha first](https://arxiv.org/abs/2510.10041) | - | - |" in rows
    zeta = [row for row in rows if "2510.10040" in row][0]
    assert zeta == (
        r"| 2025 | arXiv | [Zeta \| Pipe \[draft\]](https://arxiv.org/abs/2510.10040) | "
        "[Website](https://zeta.github.io/) | [Code](https://github.com/z/zeta) |"
    )
    assert rows.index(zeta) > [i for i, r in enumerate(rows) if "alpha first" in r][0]
    assert all(
        row.count(" | ") == 4 for row in rows
    )  # every row has 5 cells (escaped pipes do not count)
    # the full export has a heading per pillar and the auxiliary sections last
    full = export_markdown(seeded_db)
    headings = [line for line in full.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Efficient Model Design",
        "## Efficient Training",
        "## Efficient Data Collection",
        "## VLA Foundations (non-efficient baselines)",
        "## Applications",
    ]


def test_export_cli_writes_files(tmp_path):
    db = open_db(tmp_path / "evla.db")
    init_db(db, seeds_dir())
    db.close()
    runner = CliRunner()
    result = runner.invoke(cli, ["export", "bibtex", "-o", str(tmp_path / "out" / "survey.bib")])
    assert result.exit_code == 0, result.output
    assert "106 entries (106 new keys), parsed back with bibtexparser: ok" in result.output
    assert len(parse((tmp_path / "out" / "survey.bib").read_text())) == 106
    result = runner.invoke(cli, ["export", "bibtex", "--category", "data.augmentation"])
    assert result.exit_code == 0
    assert result.output.count("@misc{") == 4
    result = runner.invoke(cli, ["export", "markdown", "--category", "data.augmentation"])
    assert result.exit_code == 0 and result.output.startswith("## ")
    assert result.output.count("](https://arxiv.org/abs/") == 4
    result = runner.invoke(cli, ["export", "bibtex", "--category", "nope"])
    assert result.exit_code == 1 and result.output.strip() == "Error: unknown taxonomy node: nope"


class CountingReporter(Reporter):
    """Records what a long export reports, as the progress bar would draw it."""

    def __init__(self):
        self.tasks: dict[str, float] = {}
        self.totals: dict[str, float | None] = {}
        self._current = ""

    def start(self, description, total=None, unit="items"):
        self._current = description
        self.totals[description] = total
        self.tasks[description] = 0

    def advance(self, amount=1):
        self.tasks[self._current] += amount


def test_every_entry_is_complete_or_reported_with_what_is_missing(seeded_db):
    result = export_bibtex(seeded_db, status="survey")
    incomplete = dict(result.incomplete)
    # the seed records of RT-2 and the atomic-skill paper have no authors; MiniVLA has
    # only a title
    assert incomplete == {
        "2023rt2": ["author"],
        "2025atomic": ["author"],
        "minivla": ["author", "year", "eprint or url"],
    }
    entries = parse(result.text)
    complete = [e for key, e in entries.items() if key not in incomplete]
    assert len(complete) == 103
    assert all(e.get("author") and e.get("year") and e.get("eprint") for e in complete)


def test_export_cli_reports_holes_and_empty_exports(tmp_path):
    db = open_db(tmp_path / "evla.db")
    init_db(db, seeds_dir())
    db.close()
    runner = CliRunner()
    result = runner.invoke(cli, ["export", "bibtex", "-o", str(tmp_path / "survey.bib")])
    assert result.exit_code == 0
    assert result.stderr.splitlines()[-4:] == [
        "3 of 106 entries are incomplete (written; add the missing fields in the survey .bib "
        "or the paper record):",
        "  2023rt2: no author",
        "  2025atomic: no author",
        "  minivla: no author, no year, no eprint or url",
    ]
    empty = runner.invoke(cli, ["export", "bibtex", "--status", "accepted"])
    assert empty.exit_code == 0
    assert empty.stdout == ""
    assert empty.stderr.strip() == "nothing to export: no papers accepted by reviewers"


def test_large_export_reports_progress_and_parses_each_text_once(seeded_db, monkeypatch):
    for n in range(1200):
        add_paper(seeded_db, f"2510.{20000 + n}", f"Paper number {n}")
    first = CountingReporter()
    result = export_bibtex(seeded_db, status="all", reporter=first)
    total = seeded_db["papers"].count
    assert result.count == total
    assert first.totals == {"BibTeX entries": total, "parsing the export back": total}
    assert first.tasks == first.totals  # every entry counted in both bars
    parsed = []
    original = export_module._parse_back
    monkeypatch.setattr(
        export_module, "_parse_back", lambda text: parsed.append(text) or original(text)
    )
    again = export_bibtex(seeded_db, status="all", reporter=CountingReporter())
    assert again.text == result.text and parsed == []  # same texts: nothing parsed again
    seeded_db["papers"].update("2510.20000", {"title": "Changed {Title}"})
    export_bibtex(seeded_db, status="all")
    assert len(parsed) == 1 and parsed[0].count("\n@") == 0  # only the changed entry
    assert "Changed {Title}" in parsed[0]

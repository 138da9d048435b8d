"""`evla survey import|export`: the survey's own .bib decides membership and keeps its keys."""

from __future__ import annotations

import json
from pathlib import Path

import bibtexparser
from bibtexparser.bparser import BibTexParser
from click.testing import CliRunner

from evla_miner.cli import cli
from evla_miner.core.db import open_db
from evla_miner.core.settings import seeds_dir
from evla_miner.ingest.seeds import init_db
from evla_miner.ingest.survey_bib import import_survey_bib, match_pending, parse_bib
from evla_miner.review.export import export_bibtex

GS_BIB = Path(__file__).parent / "fixtures" / "survey_bib" / "seed_papers_google_scholar.bib"


def add_paper(db, paper_id, title, authors, published="2025-10-06", doi=None):
    db["papers"].insert(
        {
            "id": paper_id,
            "title": title,
            "authors": ", ".join(f"{first} {last}" for last, first in authors),
            "authors_parsed": json.dumps([[last, first, ""] for last, first in authors]),
            "published": published,
            "primary_category": "cs.RO",
            "doi": doi,
            "source": "test",
        }
    )


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def parse(text):
    parser = BibTexParser(common_strings=True, ignore_nonstandard_types=False)
    return {e["ID"]: e for e in bibtexparser.loads(text, parser=parser).entries}


def test_google_scholar_bib_of_the_seeds_matches_every_seed_paper(seeded_db):
    result = import_survey_bib(seeded_db, GS_BIB)
    counts = result.counts
    assert (counts["arxiv"], counts["doi"], counts["title"], counts["unmatched"]) == (81, 14, 11, 3)
    matched = {m.matched_id for m in result.matches if m.matched_id}
    assert matched == {row["paper_id"] for row in seeded_db["survey"].rows}  # all 106 seeds
    by_key = {m.key: m for m in result.matches}
    # sentence case and no arXiv id: matched on title, guarded by authors and year
    assert (by_key["driess2023palm"].matched_id, by_key["driess2023palm"].method) == (
        "2303.03378",
        "title",
    )
    assert by_key["minivla"].matched_id == "noid:minivla-a-better-vla-with-a-smaller-footprint"
    assert {m.key: m.reason for m in result.matches if not m.matched_id} == {
        "he2016deep": "no paper in the database with this title",
        "vaswani2017attention": "no paper in the database with this title",
        "survey2025efficient": "arXiv 2510.24795 is not in the database yet",
    }
    assert counts["survey_added"] == 0  # every seed was a member already
    assert counts["keys_pinned"] == 106 and counts["venues_recorded"] == 10
    assert seeded_db["survey_bib"].count == 109
    # labels from `% evla:` comments reach survey_bib
    row = seeded_db["survey_bib"].get(("seed_papers_google_scholar.bib", "xiao2024florence"))
    assert json.loads(row["labels"]) == ["model.compression.layer_pruning"]


def test_reimporting_the_same_file_changes_nothing(seeded_db):
    import_survey_bib(seeded_db, GS_BIB)
    before = list(seeded_db["survey_bib"].rows), list(seeded_db["bibtex_keys"].rows)
    again = import_survey_bib(seeded_db, GS_BIB).counts
    assert again["entries_changed"] == again["survey_added"] == again["keys_pinned"] == 0
    assert again["venues_recorded"] == 0
    assert (list(seeded_db["survey_bib"].rows), list(seeded_db["bibtex_keys"].rows)) == before


def test_same_title_is_told_apart_by_authors_and_year(db, tmp_path):
    add_paper(db, "2501.00001", "Tiny Policies for Robots", [["Lovelace", "Ada"]], "2025-01-06")
    add_paper(db, "2502.00002", "Tiny Policies for Robots", [["Turing", "Alan"]], "2025-02-03")
    add_paper(db, "2001.00003", "Fast {VLA} Inference", [["Hopper", "Grace"]], "2020-01-06")
    bib = write(
        tmp_path,
        "s.bib",
        """
@article{turing2025tiny, title={Tiny policies for robots}, author={Turing, A}, year={2025}}
@article{nobody2025tiny, title={Tiny policies for robots}, author={Nobody, N}, year={2025}}
@article{anon2025tiny, title={Tiny policies for robots}, year={2025}}
@article{hopper2024fast, title={{Fast VLA} inference}, author={Hopper, Grace}, year={2024}}
@article{hopper2020fast, title={{F}ast {VLA} {I}nference}, author={Hopper, Grace}, year={2020}}
""",
    )
    matches = {m.key: m for m in import_survey_bib(db, bib, dry_run=True).matches}
    assert matches["turing2025tiny"].matched_id == "2502.00002"
    assert matches["nobody2025tiny"].matched_id is None
    assert "no author in common" in matches["nobody2025tiny"].reason
    assert matches["anon2025tiny"].matched_id is None
    assert matches["anon2025tiny"].reason.startswith("ambiguous: ")
    assert matches["hopper2024fast"].matched_id is None
    assert "year 2020 vs 2024" in matches["hopper2024fast"].reason
    assert (matches["hopper2020fast"].matched_id, matches["hopper2020fast"].method) == (
        "2001.00003",
        "title",
    )


def test_arxiv_id_in_any_field_then_doi(db, tmp_path):
    add_paper(db, "2406.09246", "OpenVLA", [["Kim", "Moo Jin"]], doi="10.1000/openvla")
    add_paper(db, "2410.24164", "Pi zero", [["Black", "Kevin"]])
    add_paper(db, "hep-th/9901001", "Old style", [["Old", "Style"]])
    bib = write(
        tmp_path,
        "s.bib",
        """
@misc{a, title={x}, eprint={2406.09246v2}, archivePrefix={arXiv}}
@misc{b, title={x}, url={https://arxiv.org/abs/2410.24164}}
@misc{c, title={x}, note={arXiv:hep-th/9901001}}
@article{d, title={x}, doi={10.1000/OPENVLA}}
@misc{e, title={x}, doi={10.48550/arXiv.2410.24164}}
@misc{f, title={x}, doi={10.1000/unknown}}
""",
    )
    matches = {m.key: (m.matched_id, m.method) for m in import_survey_bib(db, bib).matches}
    assert matches == {
        "a": ("2406.09246", "arxiv"),
        "b": ("2410.24164", "arxiv"),
        "c": ("hep-th/9901001", "arxiv"),
        "d": ("2406.09246", "doi"),
        "e": ("2410.24164", "doi"),
        "f": (None, None),
    }


def test_broken_entry_is_reported_and_the_rest_land(tmp_path):
    db = open_db(tmp_path / "evla.db")
    init_db(db, seeds_dir())
    db.close()
    bib = write(
        tmp_path,
        "mine.bib",
        """@article{kim2024openvla, title={Openvla}, journal={arXiv preprint arXiv:2406.09246}}

@article{broken2024, title={Unclosed brace, journal={arXiv preprint arXiv:2410.24164}

@article{black2024pi0, title={pi0}, journal={arXiv preprint arXiv:2410.24164}}
""",
    )
    result = CliRunner().invoke(cli, ["survey", "import", str(bib), "--format", "jsonl"])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["key"], r["matched_id"], r["method"]) for r in lines] == [
        ("kim2024openvla", "2406.09246", "arxiv"),
        ("black2024pi0", "2410.24164", "arxiv"),
    ]
    assert set(lines[0]) == {"key", "title", "matched_id", "method", "score"}
    assert "line 3 (broken2024): does not parse" in result.stderr
    assert "Error: 1 broken entries skipped; the other 2 were read" in result.stderr
    db = open_db(tmp_path / "evla.db")
    assert {r["key"] for r in db["survey_bib"].rows} == {"kim2024openvla", "black2024pi0"}


def test_labels_from_a_field_or_comment_and_membership(seeded_db, tmp_path):
    add_paper(seeded_db, "2510.99001", "Hand Added Paper", [["Lovelace", "Ada"]])
    add_paper(seeded_db, "2510.99002", "Commented Paper", [["Turing", "Alan"]])
    bib = write(
        tmp_path,
        "survey.bib",
        """
@article{lovelace2025hand, title={Hand added paper}, author={Lovelace, Ada}, year={2025},
  keywords={model.compression.quantization, not.a.node}}
% evla: data.augmentation
@article{turing2025commented, title={Commented paper}, author={Turing, Alan}, year={2025}}
""",
    )
    result = import_survey_bib(seeded_db, bib, labels_from="keywords")
    assert result.counts["survey_added"] == 2
    rows = {r["paper_id"]: r for r in seeded_db["survey"].rows_where("source like 'bib:%'")}
    assert rows["2510.99001"]["source"] == "bib:survey.bib"
    assert json.loads(rows["2510.99001"]["labels"]) == ["model.compression.quantization"]
    assert json.loads(rows["2510.99002"]["labels"]) == ["data.augmentation"]
    assert "lovelace2025hand: unknown taxonomy labels ignored: not.a.node" in result.notes
    # the survey now contains them: they are no longer candidates for proposals
    assert {"2510.99001", "2510.99002"} <= {r["paper_id"] for r in seeded_db["survey"].rows}


def test_dry_run_stores_nothing(seeded_db):
    before = seeded_db["bibtex_keys"].count
    result = import_survey_bib(seeded_db, GS_BIB, dry_run=True)
    assert result.counts["arxiv"] == 81
    assert seeded_db["survey_bib"].count == 0 and seeded_db["bibtex_keys"].count == before
    assert seeded_db["venues"].count == 0


def test_unmatched_entry_is_matched_when_a_harvest_brings_the_paper(tmp_path):
    db = open_db(tmp_path / "evla.db")
    init_db(db, seeds_dir())
    bib = write(
        tmp_path,
        "survey.bib",
        "@article{vaswani2017attention, title={Attention is all you need},\n"
        "  author={Vaswani, Ashish and Shazeer, Noam}, journal={Advances in neural "
        "information processing systems}, year={2017}}\n",
    )
    assert import_survey_bib(db, bib).counts["unmatched"] == 1
    assert match_pending(db) == []  # nothing new yet
    db.close()
    snapshot = write(
        tmp_path,
        "new.jsonl",
        json.dumps(
            {
                "id": "1706.03762",
                "title": "Attention Is All You Need",
                "authors": "Ashish Vaswani, Noam Shazeer",
                "authors_parsed": [["Vaswani", "Ashish", ""], ["Shazeer", "Noam", ""]],
                "abstract": "Transformers.",
                "categories": "cs.CL",
                "versions": [{"version": "v1", "created": "Mon, 12 Jun 2017 17:57:34 GMT"}],
            }
        )
        + "\n",
    )
    result = CliRunner().invoke(cli, ["harvest", "--snapshot", str(snapshot)])
    assert result.exit_code == 0, result.output
    assert (
        "survey .bib: vaswani2017attention matched 1706.03762 (title), added to the survey"
        in result.stdout
    )
    db = open_db(tmp_path / "evla.db")
    assert db["survey"].get("1706.03762")["source"] == "bib:survey.bib"
    assert db["bibtex_keys"].get("1706.03762")["key"] == "vaswani2017attention"
    text = export_bibtex(db, "survey").text
    entry = parse(text)["vaswani2017attention"]
    assert entry["ENTRYTYPE"] == "inproceedings"  # NeurIPS, from the authors' own entry
    assert entry["booktitle"] == "Advances in neural information processing systems"
    assert entry["eprint"] == "1706.03762" and entry["year"] == "2017"


def test_survey_export_keeps_every_key_the_latex_cites(seeded_db, tmp_path):
    import_survey_bib(seeded_db, GS_BIB)
    result = export_bibtex(seeded_db, "survey", with_bib_entries=True)
    exported = parse(result.text)
    theirs, errors = parse_bib(GS_BIB.read_text())
    assert not errors
    assert {e.key for e in theirs} <= set(exported)  # no \cite breaks
    assert result.verbatim == 3
    vaswani = exported["vaswani2017attention"]  # unmatched: written back as it was
    assert vaswani["journal"] == "Advances in neural information processing systems"
    assert vaswani["author"].startswith("Vaswani, Ashish and Shazeer, Noam")
    openvla = exported["kim2024openvla"]  # matched by title, venue from their booktitle
    assert (openvla["ENTRYTYPE"], openvla["booktitle"]) == (
        "inproceedings",
        "Conference on Robot Learning",
    )
    assert openvla["eprint"] == "2406.09246" and openvla["archiveprefix"] == "arXiv"
    # the CLI writes the same file and says how many entries were kept verbatim
    path = tmp_path / "evla.db"
    db = open_db(path)
    init_db(db, seeds_dir())
    import_survey_bib(db, GS_BIB)
    db.close()
    out = CliRunner().invoke(cli, ["survey", "export", "-o", str(tmp_path / "survey.bib")])
    assert out.exit_code == 0, out.output
    assert "109 entries (0 new keys, 3 kept verbatim from the survey .bib)" in out.stderr
    assert set(parse((tmp_path / "survey.bib").read_text())) == set(exported)


def test_pinned_key_replaces_a_generated_one(seeded_db, tmp_path):
    export_bibtex(seeded_db, "survey")  # every seed gets a generated key
    generated = seeded_db["bibtex_keys"].get("2406.09246")["key"]
    assert generated == "kim2024openvla"
    bib = write(tmp_path, "s.bib", "@misc{openvla, title={x}, eprint={2406.09246}}\n")
    result = import_survey_bib(seeded_db, bib)
    assert result.counts["keys_pinned"] == 1
    row = seeded_db["bibtex_keys"].get("2406.09246")
    assert (row["key"], row["pinned_by"]) == ("openvla", "bib:s.bib")
    assert "@misc{openvla," in export_bibtex(seeded_db, "survey").text


def test_unmatched_entry_keeps_its_key_over_a_generated_one(seeded_db, tmp_path):
    export_bibtex(seeded_db, "survey")
    assert seeded_db["bibtex_keys"].get("2406.09246")["key"] == "kim2024openvla"
    # the authors use kim2024openvla for a paper the database does not have
    bib = write(
        tmp_path,
        "s.bib",
        "@article{kim2024openvla, title={Some other paper}, author={Kim, Someone}, year={2024}}\n",
    )
    result = import_survey_bib(seeded_db, bib)
    assert result.counts["unmatched"] == 1
    assert "kim2024openvla: was generated for 2406.09246, which gets a new key" in result.notes
    entries = parse(export_bibtex(seeded_db, "survey").text)
    assert entries["kim2024openvla"]["title"] == "Some other paper"  # theirs, verbatim
    assert entries["kim2024openvlaa"]["eprint"] == "2406.09246"  # ours, under a new key

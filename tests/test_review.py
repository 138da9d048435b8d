"""Decisions: accept/reject/undo, the survey following the latest decision, CSV import with bad
rows."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner

from evla_miner.cli import cli
from evla_miner.core.db import open_db
from evla_miner.core.decisions import (
    decision_history,
    effective_decision,
    record_decision,
    undo_decision,
)
from evla_miner.core.errors import BadInput
from evla_miner.core.records import paper_from_snapshot, upsert_papers
from evla_miner.core.settings import seeds_dir
from evla_miner.ingest.seeds import init_db
from evla_miner.review.csv_import import import_decisions_csv

LEAF = "model.compression.quantization"
OTHER_LEAF = "model.arch.mixture_of_experts"
SEED_PAPER = "2406.09246"  # OpenVLA, in the seeds under quantization


def add_paper(db, paper_id, title="A Paper", **extra):
    record = {
        "id": paper_id,
        "title": title,
        "authors": "Ada Lovelace and Alan Turing",
        "authors_parsed": [["Lovelace", "Ada", ""], ["Turing", "Alan", ""]],
        "abstract": "About efficient robots.",
        "categories": "cs.RO cs.LG",
        "versions": [{"version": "v1", "created": "Mon, 6 Oct 2025 00:00:00 GMT"}],
        **extra,
    }
    upsert_papers(db, [paper_from_snapshot(record, source="test")])


def survey_row(db, paper_id):
    rows = list(db["survey"].rows_where("paper_id = ?", [paper_id]))
    return rows[0] if rows else None


def test_accept_adds_to_survey_and_reject_removes(seeded_db):
    db = seeded_db
    add_paper(db, "2510.00001")
    result = record_decision(db, "2510.00001", "accept", [LEAF], note="fits", reviewer="ana")
    assert result["survey"] == "added"
    row = survey_row(db, "2510.00001")
    assert json.loads(row["labels"]) == [LEAF]
    assert row["source"] == "review:ana"

    result = record_decision(db, "2510.00001", "reject", reviewer="bo")
    assert result["survey"] == "removed"
    assert survey_row(db, "2510.00001") is None
    history = decision_history(db, "2510.00001")
    assert [(d.decision, d.reviewer) for d in history] == [("accept", "ana"), ("reject", "bo")]
    assert history[0].note == "fits" and history[0].decided_at


def test_latest_decision_wins_and_undo_pops(seeded_db):
    db = seeded_db
    add_paper(db, "2510.00002")
    record_decision(db, "2510.00002", "reject", reviewer="ana")
    record_decision(db, "2510.00002", "accept", [LEAF, OTHER_LEAF], reviewer="bo")
    assert effective_decision(db, "2510.00002").decision == "accept"
    assert json.loads(survey_row(db, "2510.00002")["labels"]) == [LEAF, OTHER_LEAF]

    undone = undo_decision(db, "2510.00002", reviewer="bo")
    assert undone == {
        "paper_id": "2510.00002",
        "undone": "accept",
        "now": "reject",
        "survey": "removed",
    }
    assert survey_row(db, "2510.00002") is None
    undo_decision(db, "2510.00002")
    assert effective_decision(db, "2510.00002") is None
    with pytest.raises(BadInput, match="no decision to undo"):
        undo_decision(db, "2510.00002")
    # the log keeps everything: reject, accept, undo, undo
    assert [d.decision for d in decision_history(db, "2510.00002")] == [
        "reject",
        "accept",
        "undo",
        "undo",
    ]


def test_versioned_and_prefixed_ids_resolve(seeded_db):
    add_paper(seeded_db, "2510.00003")
    assert record_decision(seeded_db, "arXiv:2510.00003v2", "reject")["paper_id"] == "2510.00003"


def test_errors_are_one_line(seeded_db):
    add_paper(seeded_db, "2510.00004")
    with pytest.raises(BadInput, match=r"^unknown paper id: 2599\.99999 "):
        record_decision(seeded_db, "2599.99999", "accept", [LEAF])
    with pytest.raises(BadInput, match="unknown taxonomy node: model.nope"):
        record_decision(seeded_db, "2510.00004", "accept", ["model.nope"])
    with pytest.raises(BadInput, match="accept or reject"):
        record_decision(seeded_db, "2510.00004", "maybe")
    with pytest.raises(BadInput, match="give at least one category"):
        record_decision(seeded_db, "2510.00004", "accept")
    assert seeded_db["decisions"].count == 0


def test_accept_without_category_takes_classifier_suggestion(seeded_db):
    add_paper(seeded_db, "2510.00005")
    seeded_db["scores"].insert(
        {
            "paper_id": "2510.00005",
            "relevance": 0.9,
            "categories": json.dumps(
                [{"id": OTHER_LEAF, "score": 0.8}, {"id": LEAF, "score": 0.1}]
            ),
        }
    )
    assert record_decision(seeded_db, "2510.00005", "accept")["categories"] == [OTHER_LEAF]


def test_reviewing_a_seed_paper_and_undoing_restores_the_seed_row(seeded_db):
    before = survey_row(seeded_db, SEED_PAPER)
    assert before["source"].startswith("seed:")
    record_decision(seeded_db, SEED_PAPER, "accept", [OTHER_LEAF], reviewer="ana")
    assert survey_row(seeded_db, SEED_PAPER)["source"] == "review:ana"
    # a re-run of init keeps the reviewer's labels
    init_db(seeded_db, seeds_dir())
    assert json.loads(survey_row(seeded_db, SEED_PAPER)["labels"]) == [OTHER_LEAF]
    assert undo_decision(seeded_db, SEED_PAPER)["survey"] == "restored"
    after = survey_row(seeded_db, SEED_PAPER)
    assert (after["labels"], after["source"]) == (before["labels"], before["source"])
    # rejecting a seed paper does not remove what the survey itself contains
    record_decision(seeded_db, SEED_PAPER, "reject")
    assert survey_row(seeded_db, SEED_PAPER)["source"].startswith("seed:")


CSV_TEXT = (
    "id,decision,categories,note\n"
    f"2510.00010,accept,{LEAF};{OTHER_LEAF},good one\n"
    "2510.00011,reject,,off topic\n"
    "2599.99999,accept,model.compression.quantization,\n"  # unknown paper
    "2510.00012,accept,model.nope,\n"  # unknown node
    "2510.00012,maybe,,\n"  # bad decision
    '"2510.00013",accept,"model.compression.quantization","note, with a comma\n'
    'and a newline"\n'
    "\n"
    "2510.00012,reject,,,extra\n"  # too many fields
    "2510.00012,reject,,late but fine\n"
)


def test_import_csv_reports_bad_rows_with_line_numbers_and_keeps_good_ones(seeded_db):
    for n in range(10, 14):
        add_paper(seeded_db, f"2510.000{n}")
    result = import_decisions_csv(seeded_db, io.StringIO(CSV_TEXT, newline=""), reviewer="csv")
    errors = result.errors
    assert result.recorded == 4
    assert [e["line"] for e in errors] == [4, 5, 6, 10]
    assert errors[0]["reason"].startswith("unknown paper id: 2599.99999")
    assert "model.nope" in errors[1]["reason"]
    assert "accept or reject" in errors[2]["reason"]
    assert "fields" in errors[3]["reason"]
    assert json.loads(survey_row(seeded_db, "2510.00010")["labels"]) == [LEAF, OTHER_LEAF]
    assert decision_history(seeded_db, "2510.00013")[0].note == "note, with a comma\nand a newline"
    assert effective_decision(seeded_db, "2510.00012").decision == "reject"
    assert {d.reviewer for d in decision_history(seeded_db, "2510.00011")} == {"csv"}


def hostile_csv(path):
    """A generated spreadsheet export with the edge cases a real one can hold."""
    rows = [
        "id,decision,categories,note",
        f"2510.00010,accept,{LEAF}," + "x" * 20_000_000,  # a 20 MB note
        "2510.00011,reject,,after the huge note",
        f'2510.00012,accept,{LEAF},"a quote that never closes',  # swallows the next row
        "2510.00013,reject,,swallowed no more",
        "2510.00014,reject,,before\x00after a NUL",
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_import_csv_survives_huge_cells_open_quotes_and_nul_bytes(seeded_db, tmp_path):
    for n in range(10, 15):
        add_paper(seeded_db, f"2510.000{n}")
    result = import_decisions_csv(seeded_db, hostile_csv(tmp_path / "h.csv"), reviewer="csv")
    assert [(e["line"], e["reason"]) for e in result.errors] == [
        (2, "note is 20,000,000 characters; the limit is 20,000"),
        (4, "unterminated quote: the field runs on into the row on line 5; row skipped"),
    ]
    assert result.recorded == 3
    assert effective_decision(seeded_db, "2510.00010") is None
    assert effective_decision(seeded_db, "2510.00011").note == "after the huge note"
    assert effective_decision(seeded_db, "2510.00012") is None
    assert effective_decision(seeded_db, "2510.00013").note == "swallowed no more"
    assert effective_decision(seeded_db, "2510.00014").note == "beforeafter a NUL"


def test_reimporting_the_same_file_appends_nothing(seeded_db, tmp_path):
    for n in range(10, 13):
        add_paper(seeded_db, f"2510.000{n}")
    path = tmp_path / "d.csv"
    path.write_text(
        "id,decision,categories,note\n"
        f"2510.00010,accept,{LEAF};{OTHER_LEAF},good\n"
        "2510.00011,reject,,off topic\n"
        f"2510.00012,accept,{LEAF},\n"
    )
    first = import_decisions_csv(seeded_db, path, reviewer="ana")
    rows = seeded_db["decisions"].count
    again = import_decisions_csv(seeded_db, path, reviewer="ana")
    assert (first.recorded, first.unchanged) == (3, 0)
    assert (again.recorded, again.unchanged, again.errors) == (0, 3, [])
    assert seeded_db["decisions"].count == rows
    # a different reviewer, or a changed note, is a new decision
    path.write_text("id,decision,categories,note\n2510.00011,reject,,duplicate of 2510.00010\n")
    assert import_decisions_csv(seeded_db, path, reviewer="ana").recorded == 1
    assert import_decisions_csv(seeded_db, path, reviewer="bo").recorded == 1
    assert seeded_db["decisions"].count == rows + 2


def test_import_cli_reports_unchanged_rows(tmp_path):
    db = open_db(tmp_path / "evla.db")
    init_db(db, seeds_dir())
    add_paper(db, "2510.00020")
    db.close()
    (tmp_path / "d.csv").write_text("id,decision,categories,note\n2510.00020,reject,,no\n")
    runner = CliRunner()
    args = ["review", "--import", str(tmp_path / "d.csv"), "--reviewer", "ana"]
    assert "1 decision recorded, 0 bad rows\n" in runner.invoke(cli, args).output
    again = runner.invoke(cli, args)
    assert again.exit_code == 0
    assert again.output == (
        f"{tmp_path / 'd.csv'}: 0 decisions recorded, 0 bad rows, 1 unchanged (already in force)\n"
    )


def test_import_csv_needs_the_header(seeded_db, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("paper,verdict\n2510.00010,accept\n")
    with pytest.raises(BadInput, match="missing: id, decision"):
        import_decisions_csv(seeded_db, path)
    with pytest.raises(BadInput, match="not found"):
        import_decisions_csv(seeded_db, tmp_path / "absent.csv")


def test_review_cli(tmp_path):
    db = open_db(tmp_path / "evla.db")
    init_db(db, seeds_dir())
    add_paper(db, "2510.00020", title="Tiny VLA")
    add_paper(db, "2510.00021")
    db.close()
    runner = CliRunner()
    result = runner.invoke(
        cli, ["review", "2510.00020", "--accept", "--category", LEAF, "--reviewer", "ana"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"2510.00020: accepted as {LEAF}; added to the survey"
    result = runner.invoke(cli, ["review", "2510.00021", "--reject", "--note", "no"])
    assert result.output.strip() == "2510.00021: rejected; survey unchanged"
    result = runner.invoke(cli, ["review", "--undo", "2510.00020"])
    assert (
        result.output.strip()
        == "2510.00020: accept undone, now no decision; removed from the survey"
    )
    result = runner.invoke(cli, ["review", "2599.00000", "--reject"])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == "Error: unknown paper id: 2599.00000 (not in the database; harvest it first)"
    )
    result = runner.invoke(cli, ["review", "2510.00021"])
    assert result.exit_code == 2 and "exactly one of" in result.output

    (tmp_path / "d.csv").write_text(
        "id,decision,categories,note\n2510.00020,accept,model.arch,\n2510.0002x,reject,,\n"
    )
    result = runner.invoke(cli, ["review", "--import", str(tmp_path / "d.csv")])
    assert result.exit_code == 1
    assert "1 decision recorded, 1 bad row" in result.output
    assert "line 3: unknown paper id: 2510.0002x" in result.output
    db = open_db(tmp_path / "evla.db")
    assert effective_decision(db, "2510.00020").categories == ["model.arch"]

"""Interactive triage driven by key presses through CliRunner: decisions land, skips come back last,
a second session resumes where the first stopped."""

from __future__ import annotations

import json

from click.testing import CliRunner

from evla_miner.cli import cli
from evla_miner.core.db import open_db
from evla_miner.core.decisions import decision_history, effective_decision
from evla_miner.core.records import paper_from_snapshot, upsert_papers
from evla_miner.core.settings import seeds_dir
from evla_miner.core.taxonomy import Taxonomy
from evla_miner.ingest.seeds import init_db
from evla_miner.review.triage import TriageIO, queue, run_triage

SUGGESTED = "model.compression.token_optimization"


def make_db(path):
    db = open_db(path)
    init_db(db, seeds_dir())
    for n in range(1, 6):
        paper_id = f"2510.2000{n}"
        upsert_papers(
            db,
            [
                paper_from_snapshot(
                    {
                        "id": paper_id,
                        "title": f"Paper {n}: Efficient VLA Number {n}",
                        "authors": "Ada Lovelace, Alan Turing",
                        "abstract": f"Abstract of paper {n} about pruning tokens.",
                        "categories": "cs.RO",
                        "versions": [{"version": "v1", "created": "Mon, 6 Oct 2025 00:00:00 GMT"}],
                    },
                    source="test",
                )
            ],
        )
        db["scores"].insert(
            {
                "paper_id": paper_id,
                "model": "test",
                "relevance": 1.0 - n / 10,
                "categories": json.dumps(
                    [
                        {"id": "model", "score": 0.8},
                        {"id": SUGGESTED, "score": 0.7},
                        {"id": "model.compression.quantization", "score": 0.2},
                    ]
                ),
                "unsure": 0,
                "explanation": json.dumps({}),
                "scored_at": "2025-10-07",
            }
        )
    return db


def test_triage_session_and_resume(tmp_path, monkeypatch):
    db = make_db(tmp_path / "evla.db")
    taxonomy = Taxonomy.from_db(db)
    leaves = [taxonomy.nodes[leaf] for leaf in taxonomy.leaves]
    db.close()
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url))
    runner = CliRunner()
    # P1 accept; P2 change leaf to #5 then accept; P3 reject; P4 unknown key, open, skip; quit at P5
    result = runner.invoke(cli, ["triage", "--reviewer", "ana"], input="ac5\narxosq")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "[1/5]  2510.20001" in out and "Paper 1: Efficient VLA Number 1" in out
    assert "Ada Lovelace, Alan Turing" in out and "https://arxiv.org/abs/2510.20001" in out
    assert "Abstract of paper 1 about pruning tokens." in out
    assert f"Suggested leaf: Token Optimization ({SUGGESTED})" in out
    assert "  also: Quantization (model.compression.quantization) 0.20" in out
    assert "Why proposed:" in out and "relevance 0.90" in out
    assert "[a] accept  [r] reject  [c] change leaf  [s] skip  [o] open in browser  [q] quit" in out
    assert "keys: [a] accept" in out  # after the unknown key
    assert out.rstrip().endswith("2 accepted, 1 rejected, 1 skipped; 2 left in the queue")
    assert opened == ["https://arxiv.org/abs/2510.20004"]

    db = open_db(tmp_path / "evla.db")
    assert effective_decision(db, "2510.20001").categories == [SUGGESTED]
    assert effective_decision(db, "2510.20002").categories == [leaves[4]["id"]]
    assert effective_decision(db, "2510.20003").decision == "reject"
    assert effective_decision(db, "2510.20004") is None
    assert decision_history(db, "2510.20001")[0].reviewer == "ana"
    assert json.loads(db["survey"].get("2510.20002")["labels"]) == [leaves[4]["id"]]
    db.close()

    # second session: the unseen paper (P5) first, then the skipped one (P4)
    result = runner.invoke(cli, ["triage", "--reviewer", "ana"], input="ra")
    assert result.exit_code == 0, result.output
    assert result.output.index("2510.20005") < result.output.index("2510.20004")
    assert "[1/2]" in result.output
    assert result.output.rstrip().endswith("1 accepted, 1 rejected, 0 skipped; 0 left in the queue")
    result = runner.invoke(cli, ["triage"], input="")
    assert "Nothing to triage" in result.output


def test_queue_order_per_reviewer(db):
    init_db(db, seeds_dir())
    proposals = [{"id": f"2510.3000{n}", "categories": [], "reasons": []} for n in range(3)]
    for p in proposals:
        upsert_papers(
            db,
            [
                paper_from_snapshot(
                    {
                        "id": p["id"],
                        "title": "T",
                        "versions": [{"version": "v1", "created": "2025-10-06"}],
                    },
                    source="t",
                )
            ],
        )
    db["triage_skips"].insert(
        {"paper_id": "2510.30000", "reviewer": "ana", "skipped_at": "2025-10-07T00:00:00"}
    )
    assert [p["id"] for p in queue(db, proposals, "ana")] == [
        "2510.30001",
        "2510.30002",
        "2510.30000",
    ]
    assert [p["id"] for p in queue(db, proposals, "bo")] == [
        "2510.30000",
        "2510.30001",
        "2510.30002",
    ]
    stub = {"id": "doi:10.1/x", "in_corpus": False, "categories": [], "reasons": []}
    assert stub not in queue(db, proposals + [stub], "bo")


def test_accept_needs_a_leaf(db):
    init_db(db, seeds_dir())
    upsert_papers(
        db,
        [
            paper_from_snapshot(
                {
                    "id": "2510.30010",
                    "title": "T",
                    "versions": [{"version": "v1", "created": "2025-10-06"}],
                },
                source="t",
            )
        ],
    )
    keys = iter("aq")
    shown = []
    io = TriageIO(
        getchar=lambda: next(keys),
        echo=shown.append,
        prompt=lambda text: "",
        open_url=lambda url: None,
    )
    result = run_triage(
        db, [{"id": "2510.30010", "categories": [], "reasons": []}], reviewer="ana", io=io
    )
    assert "  choose a leaf first: [c] change leaf" in shown
    assert result.quit and result.remaining == 1
    assert db["decisions"].count == 0

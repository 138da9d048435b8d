"""`evla status`: a weekly run's counts read as one line per run, and the citation graph's
size is the graph's, not the number of stub nodes."""

from __future__ import annotations

import json

from click.testing import CliRunner

from evla_miner.cli import cli
from evla_miner.core.db import open_db
from evla_miner.core.runs import recorded_run
from evla_miner.pipeline.status import database_status, summarize_counts

WEEKLY_COUNTS = {
    "init": {"taxonomy_nodes": 29, "leaves": 19},
    "harvest": {"run_id": 2, "lines": 1282, "inserted": 0, "updated": 0, "unchanged": 1282},
    "classify": {"scored": 1385, "relevant": 114, "model": "evla-x"},
    "graph": {"run_id": 4, "nodes": 1385, "edges": 0, "corpus_nodes": 1385, "stub_nodes": 0},
    "propose": {"unreviewed": 1275, "relevant": 7, "listed": 3},
    "digest": {"markdown": "db/reports/weekly.md", "html": "db/reports/weekly.html"},
}


def test_a_weekly_run_is_summarised_per_stage_in_pipeline_order():
    assert summarize_counts(WEEKLY_COUNTS) == (
        "harvest: new 0; classify: scored 1,385; graph: nodes 1,385, edges 0; "
        "propose: unreviewed 1,275, relevant 7, listed 3"
    )


def test_flat_counts_keep_their_names():
    assert summarize_counts({"lines": 3, "inserted": 1, "bad": 2, "updated": 0}) == (
        "lines 3, inserted 1, bad 2"
    )


def test_status_reports_the_graph_size_of_the_latest_build(tmp_path):
    db = open_db(tmp_path / "evla.db")
    with recorded_run(db, "weekly", {}, {}) as run:
        run.counts.update(WEEKLY_COUNTS)
    info = database_status(db)
    assert info["counts"]["graph_nodes"] == 0
    assert info["graph"] == {"run_id": run.id, "nodes": 1385, "edges": 0}
    db.close()
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "evla.db"), "status"])
    assert result.exit_code == 0, result.output
    assert "graph_nodes (cited works outside the db)" in result.output
    assert f"citation graph (run {run.id})" in result.output
    assert "1,385 nodes, 0 edges" in result.output
    assert "{" not in result.output  # no raw dicts
    as_json = json.loads(
        CliRunner().invoke(cli, ["--db", str(tmp_path / "evla.db"), "status", "--json"]).output
    )
    assert as_json["graph"]["nodes"] == 1385 and "graph_nodes" in as_json["counts"]

"""``evla backfill``: one streaming pass that imports like ``harvest --snapshot`` and scores like
``classify``, filters, reports bad lines, resumes after an interruption (an exception, or a
SIGKILL of the CLI), knows when it is complete, and gives the same relevance on Dask.

Input: real arXiv records (the bundled demo sample of the 2025 stream), with a few bad and
duplicate lines written in; the model-free HashingEmbedder keeps the tests fast.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import date

import pytest
from click.testing import CliRunner
from test_classify import small_seeds  # noqa: F401  (fixture: small seeds, hashing embedder)

from evla_miner.cli import cli
from evla_miner.core.db import open_db
from evla_miner.core.errors import BadInput
from evla_miner.core.jsonl import read_jsonl
from evla_miner.core.settings import DEMO_SNAPSHOT
from evla_miner.ingest.snapshot import import_snapshot
from evla_miner.pipeline.backfill import backfill, category_match, parse_categories
from evla_miner.scoring.classify import score_papers
from evla_miner.scoring.embed import HashingEmbedder
from evla_miner.scoring.ship import build_shipped_models

REAL = read_jsonl(DEMO_SNAPSHOT)  # 1,282 real records
BAD_LINES = {5: "{not json", 9: json.dumps({"title": "no id"}), 14: json.dumps([1, 2])}


def snapshot_lines(n: int) -> list[str]:
    """``n`` real records with bad lines at 5, 9, 14 and, near the end, a duplicate id."""
    lines = [json.dumps(r) for r in REAL[:n]]
    for number, text in sorted(BAD_LINES.items()):
        lines.insert(number - 1, text)
    lines.append(json.dumps(REAL[0]))
    return lines


@pytest.fixture
def model(small_seeds):  # noqa: F811
    """The shipped model of the small seeds, trained with the HashingEmbedder."""
    build_shipped_models(None, HashingEmbedder(256), evaluate=False)


@pytest.fixture
def snapshot(tmp_path):
    path = tmp_path / "snapshot.jsonl"
    path.write_text("\n".join(snapshot_lines(300)) + "\n")
    return path


def run_backfill(db, path, **kwargs):
    kwargs.setdefault("chunk_size", 40)
    return backfill(db, path, embedder=HashingEmbedder(256), **kwargs)


PAPER_COLUMNS = "id, version, versions, title, authors, abstract, categories, published, updated"
SCORE_COLUMNS = "paper_id, model, relevance, categories, unsure, explanation"


def rows(db, sql):
    return [tuple(r) for r in db.execute(sql).fetchall()]


def test_same_papers_and_scores_as_harvest_snapshot_then_classify(model, snapshot, tmp_path):
    reference = open_db(tmp_path / "a" / "evla.db")
    imported = import_snapshot(reference, snapshot)
    score_papers(reference, embedder=HashingEmbedder(256))
    db = open_db(tmp_path / "b" / "evla.db")
    result = run_backfill(db, snapshot)
    papers = f"select {PAPER_COLUMNS} from papers order by id"
    scores = f"select {SCORE_COLUMNS} from scores order by paper_id"
    assert rows(db, papers) == rows(reference, papers)
    assert rows(db, scores) == rows(reference, scores)
    c = result.counts
    for key in ("lines", "inserted", "bad", "duplicates"):
        assert c[key] == imported.counts[key]
    assert c["scored"] == c["embedded"] == db["papers"].count == 300
    assert c["lines"] == sum(
        c[k]
        for k in (
            "inserted",
            "updated",
            "unchanged",
            "duplicates",
            "outside_window",
            "other_categories",
            "bad",
        )
    )
    run = db["runs"].get(result.run_id)
    assert run["kind"] == "backfill" and run["status"] == "ok"
    assert db.execute("select count(*) from embeddings").fetchone()[0] == 300


def test_categories_and_dates_filter(model, snapshot, db):
    kept = [
        r
        for r in REAL[:300]
        if any(c in ("cs.CV", "cs.LG") for c in r["categories"].split())
        and "2025-10-01" <= date_of(r) <= "2025-10-01"
    ]
    result = run_backfill(
        db, snapshot, categories="cs.CV, cs.LG", since=date(2025, 10, 1), until=date(2025, 10, 1)
    )
    assert sorted(r["id"] for r in db["papers"].rows) == sorted(r["id"] for r in kept)
    assert 0 < len(kept) < 300
    assert result.counts["other_categories"] > 0 and result.counts["outside_window"] > 0
    assert db["scores"].count == len(kept)


def date_of(record) -> str:
    from evla_miner.core.records import parse_date

    return parse_date(record["versions"][0]["created"]).isoformat()


def test_category_specs():
    assert parse_categories("cs.RO,cs.CV cs.RO") == ("cs.CV", "cs.RO")
    assert category_match("cs.LG cs.RO", ("cs.RO",)) and not category_match("cs.LG", ("cs.RO",))
    assert category_match("cs.CL", ("cs.*",)) and not category_match("math.CO", ("cs.*",))
    assert not category_match(None, ("cs.RO",)) and category_match(None, ())
    with pytest.raises(BadInput, match="not an arXiv category"):
        parse_categories("cs.RO;drop")


def test_bad_lines_are_reported_and_skipped(model, snapshot, db):
    result = run_backfill(db, snapshot)
    reasons = {e["line"]: e["reason"] for e in result.errors}
    assert reasons[5].startswith("invalid JSON") and reasons[9] == "no id"
    assert reasons[14] == "not a JSON object"
    assert reasons[304] == f"duplicate id {REAL[0]['id']} (first at line 1)"
    assert result.counts["bad"] == 3 and db["papers"].count == 300


class Interrupted(Exception):
    pass


def test_resume_after_an_interruption_continues_after_the_last_committed_chunk(model, snapshot, db):
    def fail_after(chunk):
        if chunk == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_backfill(db, snapshot, on_commit=fail_after)
    progress = db["backfill_progress"].rows.__next__()
    assert progress["status"] == "running" and progress["line"] > 0
    done_line = progress["line"]
    assert db["scores"].count == 3 * 40
    assert db["runs"].get(progress["run_id"])["status"] == "failed"

    result = run_backfill(db, snapshot)
    assert result.resumed_after == done_line
    assert result.counts["lines"] == 304 - done_line  # nothing before the commit is read again
    assert result.counts["embedded"] == result.counts["scored"] == 300 - 3 * 40
    assert db["papers"].count == db["scores"].count == 300
    assert db.execute("select count(*) from embeddings").fetchone()[0] == 300
    assert result.total_counts["inserted"] == 300 and result.total_counts["lines"] == 304
    assert db["backfill_progress"].get(progress["key"])["status"] == "done"


def test_a_finished_backfill_says_so_and_redoes_nothing(model, snapshot, db):
    first = run_backfill(db, snapshot)
    scored_at = rows(db, "select paper_id, scored_at from scores order by paper_id")
    again = run_backfill(db, snapshot)
    assert again.already_complete and again.counts["lines"] == 0
    assert again.total_counts["scored"] == first.counts["scored"]
    assert rows(db, "select paper_id, scored_at from scores order by paper_id") == scored_at
    assert "already complete" in db["runs"].get(again.run_id)["message"]
    # other filters are another backfill: it reads the file, and scores nothing twice
    other = run_backfill(db, snapshot, categories="cs.RO")
    assert not other.already_complete and other.counts["scored"] == 0
    assert other.counts["already_scored"] > 0


def test_gzip_snapshot_resumes_by_seeking(model, tmp_path, db):
    path = tmp_path / "snapshot.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(snapshot_lines(120)) + "\n")

    def stop(chunk):
        if chunk == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_backfill(db, path, on_commit=stop)
    result = run_backfill(db, path)
    assert result.resumed_after > 0
    assert result.total_counts["lines"] == 124 and db["scores"].count == db["papers"].count == 120


def test_errors_are_clear(model, snapshot, db, tmp_path):
    with pytest.raises(BadInput, match="not found"):
        run_backfill(db, tmp_path / "nope.jsonl")
    with pytest.raises(BadInput, match="after --until"):
        run_backfill(db, snapshot, since=date(2025, 2, 1), until=date(2025, 1, 1))


def test_cli_end_to_end(model, snapshot, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["backfill", str(snapshot), "--chunk-size", "64"])
    assert result.exit_code == 0, result.output
    assert "304 lines read, 300 new" in result.stdout and "3 bad" in result.stdout
    assert "300 papers scored" in result.stdout
    assert "line 9: no id" in result.stderr
    again = runner.invoke(cli, ["backfill", str(snapshot), "--chunk-size", "64"])
    assert again.exit_code == 0 and "already complete" in again.stdout
    misuse = runner.invoke(cli, ["backfill", str(snapshot), "--workers", "2"])
    assert misuse.exit_code == 2 and "--engine dask" in misuse.output
    missing = runner.invoke(cli, ["backfill", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 1 and "not found" in missing.output


def test_dask_engine_gives_the_same_relevance_as_local(model, snapshot, tmp_path):
    pytest.importorskip("distributed")
    local = open_db(tmp_path / "local" / "evla.db")
    run_backfill(local, snapshot)
    db = open_db(tmp_path / "dask" / "evla.db")
    result = run_backfill(db, snapshot, engine="dask", workers=2, processes=False)
    assert result.counts["scored"] == 300 and result.counts["embedded"] == 300
    mine = dict(rows(db, "select paper_id, relevance from scores"))
    theirs = dict(rows(local, "select paper_id, relevance from scores"))
    assert mine.keys() == theirs.keys()
    assert max(abs(mine[k] - theirs[k]) for k in mine) <= 1e-3
    assert rows(db, f"select {PAPER_COLUMNS} from papers order by id") == rows(
        local, f"select {PAPER_COLUMNS} from papers order by id"
    )
    assert "dask (LocalCluster, 2 workers)" in db["runs"].get(result.run_id)["params"]


def committed_line(db_path) -> int:
    """How far the backfill running in another process has committed (0 while it starts)."""
    try:
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=0.1)) as probe:
            line = probe.execute("select max(line) from backfill_progress").fetchone()[0]
    except sqlite3.Error:
        return 0
    return line or 0


@pytest.mark.slow
def test_sigkill_of_the_cli_then_a_rerun_finishes_without_duplicates(model, tmp_path):
    path = tmp_path / "snapshot.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in REAL) + "\n")
    db_path = tmp_path / "kill.db"
    command = [sys.executable, "-m", "evla_miner", "--db", str(db_path), "backfill", str(path)]
    command += ["--chunk-size", "8"]
    env = {**os.environ, "EVLA_DB": str(db_path)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if committed_line(db_path) > 40:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    with open_db(db_path) as db:
        killed_at = db.execute("select line from backfill_progress").fetchone()[0]
        assert 40 < killed_at < len(REAL), "the backfill ended before it could be killed"
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resumed after line {killed_at:,}" in rerun.stdout
    with open_db(db_path) as db:
        assert db["papers"].count == db["scores"].count == len(REAL)
        statuses = [r["status"] for r in db.query("select status from runs order by id")]
        assert statuses == ["interrupted", "ok"]
        assert db.execute("select status from backfill_progress").fetchone()[0] == "done"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "already complete" in done.stdout

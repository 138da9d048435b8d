"""The weekly job: the lock against overlapping runs, failure recording, the digest, and
`weekly --demo` end to end on the bundled data (every stage, real model, offline)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from evla_miner.cli import cli
from evla_miner.core.db import loads, open_db
from evla_miner.core.errors import EvlaError
from evla_miner.pipeline.weekly import WeeklyLocked, lock_path, run_weekly, weekly_lock
from evla_miner.review.digest import bar_chart_svg, write_digest

HOLD_LOCK = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from evla_miner.pipeline.weekly import weekly_lock
    with weekly_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        sys.stdin.read()
    """
)


def test_second_overlapping_run_exits_nonzero_and_does_nothing(tmp_path):
    db_file = tmp_path / "evla.db"
    db = open_db(db_file)
    lock = lock_path(db)
    assert lock == Path(str(db_file) + ".weekly.lock")
    db.close()
    # the first "run" is another process holding the weekly lock
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = CliRunner().invoke(cli, ["--db", str(db_file), "weekly", "--demo"])
        assert result.exit_code == 1
        assert f"Error: another weekly run is in progress (pid {holder.pid} on " in result.output
        assert "try again when it has finished" in result.output
        db = open_db(db_file)
        assert db["runs"].count == 0 and db["papers"].count == 0  # the refused run touched nothing
        db.close()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    # the holder exited: the lock is free again (and in-process, a nested acquire is refused)
    with weekly_lock(lock):
        with pytest.raises(WeeklyLocked):
            with weekly_lock(lock):
                pass


class BrokenEmbedder:
    model_id = "broken-embedder"

    def encode(self, texts, batch_size=None):
        raise RuntimeError("model exploded")


def test_failing_stage_is_recorded_and_raised(tmp_path):
    snapshot = tmp_path / "tiny.jsonl"
    snapshot.write_text(
        json.dumps(
            {
                "id": "2510.40001",
                "title": "A tiny efficient VLA",
                "abstract": "Small.",
                "authors": "A B",
                "categories": "cs.RO",
                "versions": [{"version": "v1", "created": "Mon, 6 Oct 2025 00:00:00 GMT"}],
            }
        )
        + "\n"
    )
    db = open_db(tmp_path / "evla.db")
    with pytest.raises(EvlaError, match=r"^weekly run 1: classify failed: model exploded"):
        run_weekly(db, snapshot=snapshot, online=False, embedder=BrokenEmbedder())
    run = db["runs"].get(1)
    assert (run["kind"], run["status"], run["message"]) == (
        "weekly",
        "failed",
        "classify failed: model exploded",
    )
    assert loads(run["errors"]) == [{"reason": "model exploded", "stage": "classify"}]
    assert (
        loads(run["counts"])["harvest"]["inserted"] == 1
    )  # what was done before the failure is kept
    with weekly_lock(lock_path(db)):  # and the lock was released
        pass
    with pytest.raises(EvlaError, match="nothing to harvest"):
        run_weekly(db, online=False)


def test_digest_files(seeded_db, tmp_path):
    proposals = [
        {
            "id": "2510.50001",
            "title": "<script>alert(1)</script> | Fast [VLA]",
            "score": 0.91,
            "leaf": "model.compression.quantization",
            "categories": [],
            "reasons": ["relevance 0.91", "a < b & c"],
            "link": "https://arxiv.org/abs/2510.50001",
        },
        {
            "id": "2510.50002",
            "title": "Second",
            "score": 0.5,
            "leaf": "data.augmentation",
            "categories": [],
            "reasons": [],
            "link": "https://arxiv.org/abs/2510.50002",
        },
        {
            "id": "2510.50003",
            "title": "Third",
            "score": 0.4,
            "leaf": None,
            "categories": [{"id": "model.arch.mixture_of_experts", "score": 0.3}],
            "reasons": [],
            "link": None,
        },
        {
            "id": "2510.50004",
            "title": "Fourth",
            "score": 0.3,
            "leaf": None,
            "categories": [],
            "reasons": [],
            "link": None,
        },
    ]
    stages = {
        "harvest": {"inserted": 0, "updated": 0},
        "classify": {"scored": 0},
        "propose": {"unreviewed": 4, "listed": 4},
    }
    paths = write_digest(seeded_db, 7, stages, proposals, tmp_path / "reports")
    md = paths["markdown"].read_text()
    html = paths["html"].read_text()
    svg = paths["svg"].read_text()
    assert (
        paths["markdown"].name.startswith("weekly-")
        and (tmp_path / "reports" / "latest.html").exists()
    )
    assert "(run 7)" in md and "nothing new this week" in md
    assert "| Efficient Model Design | 2 |" in md
    assert "| Efficient Training | 0 |" in md
    assert "| Efficient Data Collection | 1 |" in md
    assert "| (no category) | 1 |" in md
    assert f"![Top 4 proposals per pillar]({paths['svg'].name})" in md
    assert (
        r"[&lt;script&gt;alert(1)&lt;/script&gt; \| Fast \[VLA\]](https://arxiv.org/abs/2510.50001)"
        in md
    )
    assert "    - a &lt; b &amp; c" in md and "<script>" not in md
    assert "<script>" not in html and "&lt;script&gt;" in html and "a &lt; b &amp; c" in html
    assert html.count("<svg") == 1 and svg.count("<rect") == 4
    assert "suggested leaf: Quantization" in html


def test_bar_chart_scales_to_the_biggest_bar():
    svg = bar_chart_svg([("A & B", 4), ("C", 2), ("D", 0)], "t")
    assert (
        'width="300" height="18"' in svg
        and 'width="150" height="18"' in svg
        and 'width="0" height="18"' in svg
    )
    assert "A &amp; B" in svg


@pytest.mark.slow
def test_weekly_demo_end_to_end(tmp_path):
    """Every stage on the bundled snapshot with the packaged model, then a second run: nothing
    new."""
    db_file = tmp_path / "evla.db"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["--db", str(db_file), "weekly", "--demo", "--limit", "5", "--format", "jsonl"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 5
    for item in lines:
        assert list(item)[:7] == [
            "id",
            "title",
            "score",
            "relevance",
            "influence",
            "categories",
            "reasons",
        ]
        assert item["reasons"]
    assert [item["score"] for item in lines] == sorted(
        (item["score"] for item in lines), reverse=True
    )
    assert "harvest: 1,282 records read, 1,279 new" in result.stderr
    assert "weekly run 1: ok" in result.stderr

    db = open_db(db_file)
    run = db["runs"].get(1)
    assert (run["kind"], run["status"]) == ("weekly", "ok")
    stages = loads(run["counts"])
    assert set(stages) == {
        "init",
        "harvest",
        "classify",
        "graph",
        "propose",
        "digest",
    }  # no pdfs offline
    assert stages["classify"]["scored"] == db["papers"].count
    assert db["scores"].count == db["papers"].count
    reports = tmp_path / "reports"
    md = Path(stages["digest"]["markdown"]).read_text()
    assert Path(stages["digest"]["markdown"]).parent == reports
    assert "## Proposals per pillar" in md and "## Top proposals" in md
    relevant = stages["propose"]["relevant"]
    assert 0 < relevant < stages["propose"]["unreviewed"]
    assert f"![Relevant unreviewed candidates per pillar ({relevant})]" in md
    table = md.split("| Pillar | Proposals | |")[1].split("## Top proposals")[0]
    assert (
        sum(
            int(row.split(" | ")[1])
            for row in table.splitlines()
            if row.startswith("| ") and "---" not in row
        )
        == relevant
    )
    assert lines[0]["title"].replace("[", "\\[").replace("]", "\\]").replace("|", "\\|") in md
    assert "<svg" in Path(stages["digest"]["html"]).read_text()
    db.close()

    # the same snapshot again: nothing new, still a success
    result = runner.invoke(
        cli, ["--db", str(db_file), "weekly", "--demo", "--limit", "3", "--format", "csv"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("id,title,score,relevance,influence")
    assert len(result.stdout.splitlines()) == 4
    assert "0 new" in result.stderr
    db = open_db(db_file)
    stages = loads(
        db["runs"].get(db.execute("select max(id) from runs where kind = 'weekly'").fetchone()[0])[
            "counts"
        ]
    )
    assert stages["harvest"]["inserted"] == 0 and stages["classify"]["scored"] == 0
    assert "nothing new this week" in (reports / "latest.md").read_text()


@pytest.mark.slow
def test_weekly_online_reads_pdfs_of_relevant_papers_and_graphs_their_references(tmp_path):
    """Online: after classification, the relevant new paper's PDF is fetched (from a local
    server), its references to survey papers become graph edges and show in the reasons."""
    import gzip

    from pdf_factory import paper_pdf
    from pdf_server import PdfServer

    from evla_miner.core.settings import DEMO_SNAPSHOT
    from evla_miner.ingest.pdfs import PdfClient

    with gzip.open(DEMO_SNAPSHOT, "rt") as handle:
        record = next(
            r for r in map(json.loads, handle) if r["id"] == "2510.09607"
        )  # VITA-VLA, relevant
    snapshot = tmp_path / "week.jsonl"
    snapshot.write_text(json.dumps(record) + "\n")
    pdf = paper_pdf(
        references=[
            "[1] M. Kim et al. OpenVLA: An open-source vision-language-action model. "
            "arXiv:2406.09246, 2024.",
            "[2] M. Shukor et al. SmolVLA: A vision-language-action model for affordable robotics. "
            "arXiv:2506.01844, 2025.",
        ]
    )
    server = PdfServer()
    server.pdf("2510.09607", 1, pdf)
    try:
        db = open_db(tmp_path / "evla.db")
        result = run_weekly(
            db,
            snapshot=snapshot,
            online=True,
            limit=5,
            pdf_client=PdfClient(base_url=server.url, min_interval=0),
            citation_client=None,
        )
    finally:
        server.close()
    assert "/pdf/2510.09607v1" in [path for _, path in server.requests]
    assert result.stages["pdfs"]["extracted"] >= 1 and result.stages["pdfs"]["references"] >= 2
    assert result.stages["graph"]["edges"] >= 2
    top = result.proposals[0]
    assert top["id"] == "2510.09607"
    assert "cites 2 survey papers" in top["reasons"]
    assert db["runs"].get(result.run_id)["status"] == "ok"


def one_relevant_record_snapshot(tmp_path):
    """A one-record week: VITA-VLA (2510.09607) from the bundled sample, a paper the
    classifier finds relevant, so the online weekly run wants its PDF."""
    import gzip

    from evla_miner.core.settings import DEMO_SNAPSHOT

    with gzip.open(DEMO_SNAPSHOT, "rt") as handle:
        record = next(r for r in map(json.loads, handle) if r["id"] == "2510.09607")
    snapshot = tmp_path / "week.jsonl"
    snapshot.write_text(json.dumps(record) + "\n")
    return snapshot


@pytest.mark.slow
def test_weekly_offline_makes_no_request_and_online_uses_the_pdf_settings(tmp_path, monkeypatch):
    """`--offline` touches no server even with a citation key set; without it the cron
    run downloads with the [pdf] section of evla.toml, as `evla pdf` would."""
    from pdf_server import PdfServer

    snapshot = one_relevant_record_snapshot(tmp_path)
    pdfs, citations = PdfServer(), PdfServer()
    pdfs.pdf("2510.09607", 1)
    (tmp_path / "evla.toml").write_text(
        f'[pdf]\nbase_url = "{pdfs.url}"\ninterval = 0\nworkers = 0\nmax_pages = 1\n'
        f'[citations]\nservice = "s2"\ns2_base_url = "{citations.http.base_url}"\n'
    )
    monkeypatch.delenv("S2_API_KEY", raising=False)
    monkeypatch.delenv("SEMANTIC_SCHOLAR_API_KEY", raising=False)
    runner = CliRunner()
    args = ["weekly", "--snapshot", str(snapshot), "--limit", "3"]
    try:
        offline = runner.invoke(cli, [*args, "--offline"], env={"S2_API_KEY": "set"})
        assert offline.exit_code == 0, offline.output
        assert pdfs.requests == [] and citations.requests == []
        assert "offline: no PDF downloads, no citation APIs, no arXiv API" in offline.stderr
        db = open_db(tmp_path / "evla.db")
        weekly_run = db["runs"].get(db.execute("select max(id) from runs").fetchone()[0])
        assert (
            "pdfs" not in loads(weekly_run["counts"]) and not loads(weekly_run["params"])["online"]
        )
        db.close()

        online = runner.invoke(cli, args)
        assert online.exit_code == 0, online.output
    finally:
        pdfs.close()
        citations.close()
    assert "/pdf/2510.09607v1" in [path for _, path in pdfs.requests]  # and the survey's unread
    db = open_db(tmp_path / "evla.db")
    pdf_run = next(db["runs"].rows_where("kind = 'pdf'"))
    assert loads(pdf_run["params"])["base_url"] == pdfs.url
    row = db["pdfs"].get("2510.09607")
    assert row["error"] == "too many pages: 4 > limit 1"  # max_pages = 1 from evla.toml


def test_offline_needs_a_snapshot(tmp_path):
    result = CliRunner().invoke(cli, ["weekly", "--offline"])
    assert result.exit_code == 2 and "--offline needs --snapshot FILE" in result.output

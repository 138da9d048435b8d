"""Snapshot import: streaming, idempotent, date-filtered, and honest about bad lines."""

import gzip
import json
from datetime import date

import pytest

from evla_miner.core.errors import BadInput
from evla_miner.core.settings import DEMO_SNAPSHOT
from evla_miner.ingest.snapshot import import_snapshot


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def record(paper_id, day="Tue, 4 Jun 2024 00:00:00 GMT", version="v1", **extra):
    return json.dumps(
        {
            "id": paper_id,
            "title": f"Paper {paper_id}",
            "abstract": "text",
            "authors": "A. Author",
            "categories": "cs.RO",
            "versions": [{"version": version, "created": day}],
            **extra,
        }
    )


def test_import_twice_gives_the_same_rows(db, tmp_path):
    path = write_lines(tmp_path / "s.jsonl", [record("2406.00001"), record("2406.00002")])
    first = import_snapshot(db, path)
    rows = list(db.query("select id, title, versions, version from papers order by id"))
    second = import_snapshot(db, path)
    assert first.counts["inserted"] == 2
    assert second.counts == {**second.counts, "inserted": 0, "updated": 0, "unchanged": 2}
    assert rows == list(db.query("select id, title, versions, version from papers order by id"))


def test_bad_lines_are_reported_with_line_numbers_and_the_rest_lands(db, tmp_path):
    lines = [
        record("2406.00001"),
        "{not json",
        json.dumps({"title": "no id here"}),
        "",
        json.dumps([1, 2]),
        record("not-an-id"),
        record("2406.00002", day="yesterday-ish"),
        record("2406.00003"),
    ]
    result = import_snapshot(db, write_lines(tmp_path / "s.jsonl", lines))
    assert result.counts["bad"] == 5 and result.counts["inserted"] == 2
    assert [e["line"] for e in result.errors] == [2, 3, 5, 6, 7]
    assert result.errors[1]["reason"] == "no id"
    run = db["runs"].get(result.run_id)
    assert run["status"] == "ok" and json.loads(run["counts"])["bad"] == 5
    assert len(json.loads(run["errors"])) == 5


def test_date_window_applies_to_the_first_version(db, tmp_path):
    lines = [
        record("2406.00001", day="Mon, 3 Jun 2024 00:00:00 GMT"),
        record("2406.00002", day="Tue, 4 Jun 2024 00:00:00 GMT"),
        json.dumps(
            {
                "id": "2406.00003",
                "title": "revised later",
                "versions": [
                    {"version": "v1", "created": "Sat, 1 Jun 2024 00:00:00 GMT"},
                    {"version": "v2", "created": "Wed, 5 Jun 2024 00:00:00 GMT"},
                ],
            }
        ),
    ]
    result = import_snapshot(
        db,
        write_lines(tmp_path / "s.jsonl", lines),
        since=date(2024, 6, 4),
        until=date(2024, 6, 30),
    )
    assert [row["id"] for row in db["papers"].rows] == ["2406.00002"]
    assert result.counts["outside_window"] == 2


def test_missing_file_and_inverted_window_are_clear_errors(db, tmp_path):
    with pytest.raises(BadInput, match="not found"):
        import_snapshot(db, tmp_path / "nope.jsonl")
    path = write_lines(tmp_path / "s.jsonl", [record("2406.00001")])
    with pytest.raises(BadInput, match="after --until"):
        import_snapshot(db, path, since=date(2024, 7, 1), until=date(2024, 6, 1))


def test_gzip_snapshots_are_read(db, tmp_path):
    path = tmp_path / "s.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(record("2406.00001") + "\n")
    assert import_snapshot(db, path).counts["inserted"] == 1


def test_bundled_demo_sample_is_four_weeks_of_real_records(db):
    result = import_snapshot(db, DEMO_SNAPSHOT)
    assert result.counts["bad"] == 0 and result.counts["inserted"] == result.counts["lines"] > 1000
    first, last = db.execute("select min(published), max(published) from papers").fetchone()
    assert (date.fromisoformat(last) - date.fromisoformat(first)).days <= 28


@pytest.mark.shared
def test_the_shared_10k_stream_imports_without_duplicates(db, shared_dir):
    stream = shared_dir / "data" / "arxiv-stream-2025-02-to-10.jsonl"
    first = import_snapshot(db, stream)
    again = import_snapshot(db, stream)
    assert first.counts["inserted"] == 10_012 and first.counts["bad"] == 0
    assert again.counts["unchanged"] == 10_012
    assert db["papers"].count == 10_012

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


def hostile_lines():
    """A generated hostile snapshot: good records around lines built to break an importer."""
    deep = '{"id": "2406.09999", "title": ' + "[" * 100_000 + "]" * 100_000 + "}"
    return [
        record("2406.00001"),
        "[" * 200_000,  # nested too deeply for any JSON parser
        deep,
        record("2406.00002", title=["a", "list"]),
        record("2406.00003", authors=None, abstract=7),
        record("2406.00004", versions="v1"),
        record("2406.00005", versions=[{"version": 1, "created": "Tue, 4 Jun 2024"}]),
        record("2406.00006", authors_parsed="Doe, Jane"),
        json.dumps({"id": 2406.00007, "title": "an id that is a number"}),
        record("2406.00008"),
    ]


def test_hostile_lines_are_reported_and_skipped_and_every_good_line_lands(db, tmp_path):
    result = import_snapshot(db, write_lines(tmp_path / "hostile.jsonl", hostile_lines()))
    assert sorted(row["id"] for row in db["papers"].rows) == ["2406.00001", "2406.00008"]
    assert result.counts["bad"] == 8 and result.counts["inserted"] == 2
    reasons = {e["line"]: e["reason"] for e in result.errors}
    assert reasons == {
        2: "invalid JSON: nested too deeply",
        3: "invalid JSON: nested too deeply",
        4: "title: expected text, got a list",
        5: "abstract: expected text, got an integer",
        6: "versions: expected a list, got text",
        7: "versions.version: expected text, got an integer",
        8: "authors_parsed: expected a list, got text",
        9: "id: expected text, got a number",
    }
    assert db["runs"].get(result.run_id)["status"] == "ok"
    assert not list(db.query("select id from papers where title like '[%'"))


def test_null_authors_are_kept_as_null_not_as_text(db, tmp_path):
    import_snapshot(db, write_lines(tmp_path / "s.jsonl", [record("2406.00001", authors=None)]))
    assert db["papers"].get("2406.00001")["authors"] is None


def test_duplicate_id_inside_one_file_is_counted_and_reported(db, tmp_path):
    lines = [
        record("2406.00001"),
        record("2406.00002"),
        record("2406.00001v2", version="v2", day="Wed, 5 Jun 2024 00:00:00 GMT"),
    ]
    result = import_snapshot(db, write_lines(tmp_path / "s.jsonl", lines))
    counts = result.counts
    assert counts["duplicates"] == 1 and counts["inserted"] == 2
    assert counts["lines"] == sum(
        counts[k]
        for k in ("inserted", "updated", "unchanged", "outside_window", "bad", "duplicates")
    )
    assert result.errors == [{"line": 3, "reason": "duplicate id 2406.00001 (first at line 1)"}]
    assert db["papers"].get("2406.00001")["version"] == 2  # still merged by the upsert rules
    # a re-import counts each id once again: the temporary table does not outlive a run
    assert import_snapshot(db, tmp_path / "s.jsonl").counts["duplicates"] == 1

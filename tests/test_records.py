"""Paper records: ids, dates and the upsert rules shared by every source."""

import json

import pytest

from evla_miner.core.records import RecordError, paper_from_snapshot, split_arxiv_id, upsert_papers


def snapshot_record(**overrides):
    record = {
        "id": "2406.04339",
        "authors": "Ada Lovelace and Alan Turing",
        "authors_parsed": [["Lovelace", "Ada", ""], ["Turing", "Alan", ""]],
        "title": "A  tiny\n  VLA",
        "abstract": "We make  VLAs\nfast.",
        "categories": "cs.RO cs.CV",
        "versions": [{"version": "v1", "created": "Tue, 4 Jun 2024 00:00:00 GMT"}],
        "update_date": "2024-06-04",
        "doi": None,
        "journal-ref": None,
    }
    record.update(overrides)
    return record


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2406.04339", ("2406.04339", None)),
        ("2406.04339v2", ("2406.04339", 2)),
        ("arXiv:2406.04339v3", ("2406.04339", 3)),
        ("https://arxiv.org/abs/2406.04339v2", ("2406.04339", 2)),
        ("hep-th/9901001", ("hep-th/9901001", None)),
        ("math.GT/0309136v1", ("math.GT/0309136", 1)),
        ("0704.0001", ("0704.0001", None)),
    ],
)
def test_split_arxiv_id_accepts_every_form(raw, expected):
    assert split_arxiv_id(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "2406", "", "2406.04339v0"])
def test_split_arxiv_id_rejects_garbage(raw):
    with pytest.raises(RecordError):
        split_arxiv_id(raw)


def test_snapshot_record_becomes_a_clean_paper_row():
    paper = paper_from_snapshot(snapshot_record(), source="snapshot:x")
    assert paper["id"] == "2406.04339"
    assert paper["title"] == "A tiny VLA"
    assert paper["abstract"] == "We make VLAs fast."
    assert paper["primary_category"] == "cs.RO"
    assert paper["published"] == "2024-06-04"
    assert paper["versions"] == [{"version": 1, "created": "2024-06-04"}]


def test_missing_abstract_and_categories_are_kept_as_null():
    paper = paper_from_snapshot(snapshot_record(abstract=None, categories=""), source="s")
    assert (
        paper["abstract"] is None
        and paper["categories"] is None
        and paper["primary_category"] is None
    )


def test_record_without_id_is_an_error():
    with pytest.raises(RecordError, match="no id"):
        paper_from_snapshot(snapshot_record(id=None), source="s")


def test_newer_version_updates_metadata_and_keeps_history(db):
    upsert_papers(db, [paper_from_snapshot(snapshot_record(), "a")])
    v2 = snapshot_record(
        title="A tiny VLA (revised)",
        versions=[
            {"version": "v1", "created": "Tue, 4 Jun 2024 00:00:00 GMT"},
            {"version": "v2", "created": "Mon, 1 Jul 2024 00:00:00 GMT"},
        ],
    )
    assert upsert_papers(db, [paper_from_snapshot(v2, "b")])["updated"] == 1
    row = db["papers"].get("2406.04339")
    assert row["version"] == 2 and row["title"] == "A tiny VLA (revised)"
    assert [v["version"] for v in json.loads(row["versions"])] == [1, 2]
    assert row["published"] == "2024-06-04" and row["updated"] == "2024-07-01"


def test_older_version_never_overwrites_newer_metadata(db):
    v2 = snapshot_record(
        title="new title",
        versions=[{"version": "v2", "created": "Mon, 1 Jul 2024 00:00:00 GMT"}],
    )
    upsert_papers(db, [paper_from_snapshot(v2, "a")])
    counts = upsert_papers(db, [paper_from_snapshot(snapshot_record(title="old title"), "b")])
    row = db["papers"].get("2406.04339")
    assert row["title"] == "new title" and row["version"] == 2
    # the v1 date is still learned: it is the first version's date
    assert row["published"] == "2024-06-04"
    assert counts["updated"] == 1


def test_same_record_twice_is_unchanged_and_never_duplicated(db):
    paper = paper_from_snapshot(snapshot_record(), "a")
    upsert_papers(db, [paper])
    first_seen = db["papers"].get("2406.04339")["first_seen"]
    assert upsert_papers(db, [paper, paper]) == {"inserted": 0, "updated": 0, "unchanged": 1}
    assert db["papers"].count == 1
    assert db["papers"].get("2406.04339")["first_seen"] == first_seen


def test_gaps_are_filled_from_later_records_without_overwriting(db):
    upsert_papers(db, [paper_from_snapshot(snapshot_record(abstract=None), "seed")])
    upsert_papers(db, [paper_from_snapshot(snapshot_record(title="other"), "stream")])
    row = db["papers"].get("2406.04339")
    assert row["abstract"] == "We make VLAs fast." and row["title"] == "A tiny VLA"

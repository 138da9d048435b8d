"""Publication venues: parsed offline from arXiv's journal-ref and comments, fetched from
Semantic Scholar and OpenAlex (recorded responses replayed through the real clients),
kept only when the records agree, and written into BibTeX and the Markdown Venue column."""

from __future__ import annotations

import json

import bibtexparser
import pytest
import yaml
from bibtexparser.bparser import BibTexParser
from click.testing import CliRunner
from test_citations import S2_FIXTURES, FakeSleep, ReplayServer

from evla_miner.cli import cli
from evla_miner.core.db import open_db
from evla_miner.core.decisions import record_decision
from evla_miner.core.settings import seeds_dir
from evla_miner.core.venues import (
    Venue,
    best_venues,
    parse_venue,
    record_venue,
    records_agree,
    venue_from_comments,
)
from evla_miner.ingest.seeds import init_db
from evla_miner.review.export import export_bibtex, export_markdown
from evla_miner.scoring.citations import OpenAlexClient, SemanticScholarClient
from evla_miner.scoring.venues import fetch_venues


def add_paper(db, paper_id, title, authors, doi=None, **extra):
    db["papers"].insert(
        {
            "id": paper_id,
            "title": title,
            "authors": ", ".join(authors),
            "authors_parsed": json.dumps(
                [[n.split()[-1], " ".join(n.split()[:-1]), ""] for n in authors]
            ),
            "published": "2025-10-06",
            "doi": doi,
            "source": "test",
            **extra,
        }
    )
    return db["papers"].get(paper_id)


def test_journal_refs_and_bib_venues():
    assert parse_venue("CoRL 2024, Munich") == Venue(
        "CoRL 2024, Munich", "conference", "CoRL", 2024
    )
    ral = parse_venue("IEEE Robotics and Automation Letters 9 (2024) 1-8")
    assert (ral.kind, ral.short, ral.year, ral.label()) == ("journal", "RA-L", 2024, "RA-L 2024")
    neurips = parse_venue("Advances in neural information processing systems", 2017)
    assert (neurips.kind, neurips.label()) == ("conference", "NeurIPS 2017")
    assert parse_venue("Proceedings of the 41st Workshop on Odd Things").kind == "conference"
    assert parse_venue("Journal of physics. Condensed matter").kind == "journal"
    assert parse_venue("arXiv preprint arXiv:2406.09246") is None
    assert parse_venue("") is None and parse_venue(None) is None


@pytest.mark.parametrize(
    "comments, label",
    [
        ("Accepted to CoRL 2025. Project page: https://x.github.io", "CoRL 2025"),
        (
            "8 pages; accepted at the IEEE International Conference on Robotics and "
            "Automation (ICRA) 2026",
            "ICRA 2026",
        ),
        ("To appear in IEEE Robotics and Automation Letters (RA-L)", "RA-L"),
        ("Published as a conference paper at ICLR 2025", "ICLR 2025"),
        ("Accepted in principle; 12 pages", None),
        ("Under review at NeurIPS 2025", None),  # not accepted yet
        (None, None),
    ],
)
def test_acceptance_notes_in_comments(comments, label):
    venue = venue_from_comments(comments)
    assert (venue.label() if venue else None) == label


def test_records_must_agree_on_title_and_authors():
    ours = {
        "title": "OpenVLA: An Open-Source Vision-Language-Action Model",
        "authors": "Moo Jin Kim, Karl Pertsch",
    }
    assert records_agree(
        ours,
        {"title": "Openvla: an open-source vision-language-action model", "authors": ["M. Kim"]},
    )[0]
    agree, reason = records_agree(ours, {"title": "OpenVLA", "authors": ["M. Kim"]})
    assert not agree and reason.startswith("title differs")
    agree, reason = records_agree(ours, {"title": ours["title"], "authors": ["Someone Else"]})
    assert (agree, reason) == (False, "no author in common")


def test_the_most_certain_source_wins(db):
    paper = add_paper(
        db, "2510.00001", "A Paper", ["Ada Lovelace"], comments="Accepted to RSS 2025"
    )
    assert best_venues(db, [paper])["2510.00001"][0] == "arxiv:comments"
    record_venue(
        db, "2510.00001", "s2", Venue("Robotics: Science and Systems", "conference", "RSS", 2025)
    )
    assert best_venues(db, [paper])["2510.00001"][0] == "s2"
    record_venue(db, "2510.00001", "bib:survey.bib", Venue("Proc. RSS", "conference", "RSS", 2025))
    source, venue = best_venues(db, [paper])["2510.00001"]
    assert (source, venue.name) == ("bib:survey.bib", "Proc. RSS")


S2_BATCH_FIELDS = ",".join(SemanticScholarClient.venue_fields)


def recorded_s2_batch() -> bytes:
    """The recorded /paper/batch answer (null, then three SSRN papers with journal, venue,
    publicationVenue, year, authors): test_get_papers_not_found_warning.yaml."""
    cassette = yaml.safe_load((S2_FIXTURES / "test_get_papers_not_found_warning.yaml").read_text())
    return cassette["interactions"][0]["response"]["body"]["string"].encode()


def test_s2_venues_recorded_only_when_the_records_agree(db):
    papers = [
        add_paper(db, "noid:unknown", "Unknown To S2", ["Ada Lovelace"], doi="10.9999/unknown"),
        add_paper(
            db,
            "noid:did",
            "How Much Should We Trust Differences-in-Differences Estimates?",
            ["Marianne Bertrand", "Esther Duflo", "Sendhil Mullainathan"],
            doi="10.2139/ssrn.288970",
        ),
        add_paper(
            db,
            "noid:wrong",
            "A Different Paper Entirely",
            ["Esther Duflo"],
            doi="10.2139/ssrn.2250500",
        ),
        add_paper(
            db,
            "noid:audits",
            "Improving Third-Party Audits and Regulatory Compliance in India",
            ["Esther Duflo"],
            doi="10.1257/rct.1355",
        ),
    ]
    ids = [
        "DOI:10.9999/unknown",
        "DOI:10.2139/ssrn.288970",
        "DOI:10.2139/ssrn.2250500",
        "DOI:10.1257/rct.1355",
    ]
    with ReplayServer() as server:
        # the recording asked for more fields than the venue lookup does: a superset, served as is
        server.add(
            "POST",
            f"/graph/v1/paper/batch?fields={S2_BATCH_FIELDS}",
            200,
            recorded_s2_batch(),
            body_in={"ids": ids},
        )
        client = SemanticScholarClient(
            base_url=server.url + "/graph/v1", min_interval=0, sleep=FakeSleep(), db=db
        )
        counts = fetch_venues(db, client, papers)
        assert not server.unmatched
    assert {k: counts[k] for k in ("recorded", "unknown", "no_venue", "disagree")} == {
        "recorded": 1,
        "unknown": 1,
        "no_venue": 1,
        "disagree": 1,
    }
    assert counts["rejected"][0][0] == "noid:wrong"
    assert counts["rejected"][0][1].startswith("title differs")
    row = db["venues"].get(("noid:did", "s2"))
    assert (row["name"], row["kind"], row["year"], row["doi"]) == (
        "Experimental & Empirical Studies eJournal",
        "journal",
        2001,
        "10.2139/ssrn.288970",
    )
    # the answer is cached: asking again costs no request and changes nothing
    again = fetch_venues(db, client, papers)
    assert again["unchanged"] == 1 and client.requests_made == 1
    entry = bibtexparser.loads(
        export_bibtex(db, "all").text, parser=BibTexParser(common_strings=True)
    ).entries
    did = [e for e in entry if e.get("doi") == "10.2139/ssrn.288970"][0]
    assert (did["ENTRYTYPE"], did["journal"], did["year"]) == (
        "article",
        r"Experimental \& Empirical Studies eJournal",
        "2001",
    )


@pytest.mark.shared
def test_openalex_venue_is_the_journal_not_the_repository(shared_dir, db):
    """OpenAlex work objects recorded by svp-harvester (CeCILL, read from ../shared)."""
    folder = shared_dir / "fixtures" / "openalex"
    journal = json.loads((folder / "open_alex_work_with_various_locations.json").read_text())
    hal = json.loads((folder / "open_alex_work_with_hal_locations.json").read_text())
    papers = [
        add_paper(
            db,
            "noid:copper",
            journal["title"],
            [a["author"]["display_name"] for a in journal["authorships"]],
            doi="10.1088/1361-648x/aaf7eb",
        ),
        add_paper(db, "noid:hal", hal["title"], ["Bérénice Bellina"], doi="10.9999/hal"),
    ]
    with ReplayServer() as server:
        server.add(
            "GET",
            "/works/doi:10.1088/1361-648x/aaf7eb",
            200,
            (folder / "open_alex_work_with_various_locations.json").read_bytes(),
        )
        server.add(
            "GET",
            "/works/doi:10.9999/hal",
            200,
            (folder / "open_alex_work_with_hal_locations.json").read_bytes(),
        )
        client = OpenAlexClient(base_url=server.url, min_interval=0, sleep=FakeSleep())
        counts = fetch_venues(db, client, papers)
        assert not server.unmatched
    assert (counts["recorded"], counts["no_venue"]) == (1, 1)  # HAL is a repository, not a venue
    row = db["venues"].get(("noid:copper", "openalex"))
    assert (row["name"], row["kind"], row["year"]) == (
        "Journal of physics. Condensed matter",
        "journal",
        2019,
    )


def test_markdown_venue_column_and_bibtex_types(seeded_db):
    leaf = "model.compression.quantization"
    add_paper(
        seeded_db,
        "2510.20001",
        "Accepted Paper",
        ["Ada Lovelace"],
        comments="Accepted to CoRL 2025",
    )
    add_paper(seeded_db, "2510.20002", "Preprint Paper", ["Ada Lovelace"])
    for paper_id in ("2510.20001", "2510.20002"):
        record_decision(seeded_db, paper_id, "accept", [leaf], reviewer="t")
    rows = [
        line
        for line in export_markdown(seeded_db, category=leaf).splitlines()
        if "2510.2000" in line
    ]
    assert rows[0].startswith("| 2025 | CoRL 2025 | [Accepted Paper]")
    assert rows[1].startswith("| 2025 | arXiv | [Preprint Paper]")
    entries = {
        e["eprint"]: e
        for e in bibtexparser.loads(
            export_bibtex(seeded_db, "accepted").text, parser=BibTexParser(common_strings=True)
        ).entries
    }
    accepted = entries["2510.20001"]
    assert (accepted["ENTRYTYPE"], accepted["booktitle"]) == (
        "inproceedings",
        "Conference on Robot Learning",
    )
    assert accepted["archiveprefix"] == "arXiv"  # the arXiv fields stay
    assert entries["2510.20002"]["ENTRYTYPE"] == "misc"


def test_venues_command_offline_and_online(tmp_path, monkeypatch):
    """`evla survey venues`: journal-ref/comments always; the service only with its key, and
    a service record about another paper is reported, not recorded."""
    path = tmp_path / "evla.db"
    db = open_db(path)
    init_db(db, seeds_dir())
    ids = ["2406.09246", "2410.24164", "2303.03378", "2307.15818"]
    for paper_id in ids:
        record_decision(db, paper_id, "accept", ["foundation"], reviewer="t")
    db["papers"].update("2406.09246", {"comments": "Accepted to CoRL 2024"})
    db.close()
    runner = CliRunner()
    offline = runner.invoke(cli, ["survey", "venues", "--status", "accepted"])
    assert offline.exit_code == 0, offline.output
    assert offline.stdout.splitlines() == [
        "arXiv journal-ref/comments: 1 venues recorded or changed",
        "s2: offline (no API key set, or --offline)",
    ]
    with ReplayServer() as server:
        # a recorded answer about four other (SSRN) papers, served for these four ids
        server.add(
            "POST",
            f"/graph/v1/paper/batch?fields={S2_BATCH_FIELDS}",
            200,
            recorded_s2_batch(),
            body_in={"ids": [f"ARXIV:{i}" for i in sorted(ids, key=order_of(tmp_path))]},
        )
        monkeypatch.setenv("S2_API_KEY", "k")
        monkeypatch.setenv("EVLA_CITATIONS_S2_BASE_URL", server.url + "/graph/v1")
        online = runner.invoke(cli, ["survey", "venues", "--status", "accepted"])
        assert not server.unmatched, server.unmatched
    assert online.exit_code == 0, online.output
    assert (
        "s2: 0 recorded, 0 unchanged, 1 unknown, 1 no_venue, 2 disagree, 0 no_id" in online.stdout
    )
    assert online.stderr.count("not recorded, title differs") == 2
    db = open_db(path)
    assert {r["source"] for r in db["venues"].rows} == {"arxiv:comments"}


def order_of(tmp_path):
    """Papers are exported (and looked up) in publication order."""
    db = open_db(tmp_path / "evla.db")
    published = {r["id"]: r["published"] for r in db["papers"].rows}
    return lambda paper_id: (published[paper_id], paper_id)

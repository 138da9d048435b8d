"""The Atom parser on the recorded arXiv feeds (tests/fixtures/arxiv_api), both formats,
and on bodies that are not a feed."""

from __future__ import annotations

from datetime import UTC, datetime

import arxiv
import pytest
from arxiv_replay import LEGACY, golden

from evla_miner.ingest import atom

UTC = UTC
HTML_503 = (
    b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>"
    b"<body><h1>Service Unavailable</h1></body></html>\n"
)


def test_2026_pages_totals_and_entries():
    ids = []
    for start in range(0, 60, 10):
        feed = atom.parse(golden(f"q_testing_s{start}_m10")["body"])
        assert (feed.total, feed.start, len(feed.entries), feed.error) == (214881, start, 10, None)
        assert all(isinstance(r, arxiv.Result) for r in feed.entries)
        ids += [r.get_short_id() for r in feed.entries]
    assert len(set(ids)) == 60 and ids[0] == "2202.12139v1"


def test_2026_entry_fields():
    first = atom.parse(golden("q_testing_s0_m10")["body"]).entries[0]
    assert first.entry_id == "http://arxiv.org/abs/2202.12139v1"
    assert (
        first.title
        == "Testing Deep Learning Models: A First Comparative Study of Multiple Testing Techniques"
    )
    assert [a.name for a in first.authors][:3] == [
        "Mohit Kumar Ahuja",
        "Arnaud Gotlieb",
        "Helge Spieker",
    ]
    assert first.doi == "10.1109/ICSTW55395.2022.00035"
    assert first.comment == "Artificial Intelligence in Software Testing 2022 workshop @ ICST 2022"
    assert first.journal_ref.startswith("Artificial Intelligence in Software Testing @ 2022 IEEE")
    assert (first.primary_category, first.categories) == ("cs.SE", ["cs.SE", "cs.LG"])
    assert first.pdf_url == "https://arxiv.org/pdf/2202.12139v1"
    assert first.published == first.updated == datetime(2022, 2, 24, 15, 5, 19, tzinfo=UTC)
    assert first.summary.strip()


def test_2016_format():
    feed = atom.parse((LEGACY / "id_list_1111.2011v2.xml").read_bytes())
    assert (feed.total, feed.start, len(feed.entries)) == (1, 0, 1)
    (result,) = feed.entries
    assert result.get_short_id() == "1111.2011v2"
    assert (
        result.title == "Quantum Criticality for Extended Nodes on a Bethe Lattice in the Large "
        "Connectivity Limit"
    )
    assert [a.name for a in result.authors] == [
        "James M. Murray",
        "Adrian Del Maestro",
        "Zlatko Tesanovic",
    ]
    assert result.published == datetime(2011, 11, 8, 18, 48, 36, tzinfo=UTC)
    assert result.updated == datetime(2012, 4, 2, 12, 38, 54, tzinfo=UTC)
    assert result.pdf_url == "http://arxiv.org/pdf/1111.2011v2"
    assert [(link.title, link.rel) for link in result.links] == [
        ("doi", "related"),
        (None, "alternate"),
        ("pdf", "related"),
    ]
    assert (result.primary_category, result.categories) == (
        "cond-mat.str-el",
        ["cond-mat.str-el", "cond-mat.stat-mech"],
    )
    assert result.comment == "8 pages, 3 figures. Published version"
    assert (result.journal_ref, result.doi) == (
        "Phys. Rev. B 85, 115117 (2012)",
        "10.1103/PhysRevB.85.115117",
    )


@pytest.mark.parametrize(
    "name, total, count",
    [
        ("search_au_del_maestro.xml", 31, 10),
        ("search_au_del_maestro_ANDNOT_ti_checkerboard_OR_ti_Pyrochlore.xml", 24, 10),
        ("search_au_del_maestro_AND_ti_checkerboard.xml", 1, 1),
        ("search_au_del_maestro_AND_ti_quantum_criticality.xml", 2, 2),
    ],
)
def test_2016_searches(name, total, count):
    feed = atom.parse((LEGACY / name).read_bytes())
    assert (feed.total, len(feed.entries)) == (total, count)
    assert all(r.published.tzinfo is not None and r.published <= r.updated for r in feed.entries)


def test_old_style_ids_affiliations_and_title_zero():
    (old,) = atom.parse(golden("id_astro-ph_0601001")["body"]).entries
    assert (
        old.get_short_id() == "astro-ph/0601001v1"
        and old.pdf_url == "https://arxiv.org/pdf/astro-ph/0601001v1"
    )
    assert old.authors[0].name == "Andrew Gould" and old.authors[0].affiliation == ["Ohio State"]
    (quant,) = atom.parse(golden("id_quant-ph_0201082v1")["body"]).entries
    assert quant.get_short_id() == "quant-ph/0201082v1"
    (zero,) = atom.parse(golden("id_2104.12255v1")["body"]).entries
    assert zero.title == "0"
    both = atom.parse(golden("id_0808.05394_1707.08567")["body"])
    assert [r.get_short_id()[:10] for r in both.entries] == ["1707.08567"]


def test_empty_and_error_feeds():
    empty = atom.parse(golden("id_0000.0000")["body"])
    assert (empty.total, empty.entries, empty.error) == (0, [], None)
    record = golden("id_abc")
    assert record["status_code"] == 400
    error = atom.parse(record["body"])
    assert (error.entries, error.error) == ([], "incorrect id format for abc")
    assert atom.error_message(record["body"]) == "incorrect id format for abc"
    assert atom.error_message(HTML_503) is None


@pytest.mark.parametrize(
    "body, message",
    [
        (HTML_503, "an HTML page instead of an Atom feed (title: 503 Service Unavailable)"),
        (
            b"<html><body>busy</body></html>",
            "an HTML page instead of an Atom feed (title: (no title))",
        ),
        (
            b"\x89\x02\xff\x00garbage bytes",
            "a body that is not XML instead of an Atom feed "
            "(starts with b'\\x89\\x02\\xff\\x00garbage bytes')",
        ),
        (b"", "an empty body instead of an Atom feed (0 bytes)"),
        (
            b'<?xml version="1.0"?><rss><channel/></rss>',
            "an XML document that is not Atom instead of an Atom feed (starts with b'<?xml",
        ),
        (
            b'{"error": "busy"}',
            'a body that is not XML instead of an Atom feed (starts with b\'{"error": "busy"}\')',
        ),
    ],
)
def test_bodies_that_are_not_a_feed_say_what_they_are(body, message):
    with pytest.raises(atom.NotAFeed) as info:
        atom.parse(body)
    assert str(info.value).startswith(message)
    assert info.value.what and "truncated" not in str(info.value)


def test_truncated_and_malformed_feeds():
    body = golden("q_testing_s0_m10")["body"]
    with pytest.raises(
        atom.NotAFeed, match=r"^truncated response body \(the Atom feed stops after"
    ) as info:
        atom.parse(body[: len(body) // 2])
    assert info.value.what is None
    broken = body.replace(b"</title>", b"</titel>", 1)
    with pytest.raises(atom.NotAFeed, match="^malformed Atom feed"):
        atom.parse(broken)
    no_total = body.replace(b"opensearch:totalResults", b"opensearch:totalHits")
    with pytest.raises(atom.NotAFeed, match="totalResults"):
        atom.parse(no_total)

"""The citation graph: built from extracted references, stubs merged, influence signals right."""

from __future__ import annotations

import networkx as nx
import pytest

from evla_miner.core.db import dumps
from evla_miner.scoring.graph import build_graph, influence_signals, load_graph, title_key


def add_paper(db, paper_id, title, published="2025-10-01", doi=None):
    db["papers"].insert(
        {"id": paper_id, "title": title, "published": published, "doi": doi}, pk="id", replace=True
    )


def add_ref(db, citing, position, **fields):
    db["references"].insert(
        {"paper_id": citing, "position": position, "raw": fields.get("title") or "", **fields}
    )


@pytest.fixture
def corpus(db):
    """Two survey papers and two new candidates citing each other and three outside works."""
    for pid, title, published in [
        ("2501.00001", "Survey paper A on token pruning", "2025-01-10"),
        ("2501.00002", "Survey paper B on quantised VLAs", "2025-01-20"),
        ("2510.00003", "New candidate C", "2025-10-01"),
        ("2510.00004", "New candidate D", "2025-10-02"),
    ]:
        add_paper(db, pid, title, published)
    db["survey"].insert_all(
        [
            {"paper_id": "2501.00001", "labels": dumps(["efficient.token"]), "source": "seed"},
            {"paper_id": "2501.00002", "labels": dumps(["model.compression"]), "source": "seed"},
        ],
        pk="paper_id",
    )
    # A and B both cite the outside work OpenVLA (once by arXiv id, once by title only) and FastV
    # (by DOI).
    add_ref(
        db,
        "2501.00001",
        1,
        arxiv_id="2406.09246",
        title="OpenVLA: An Open-Source Vision-Language-Action Model",
        year=2024,
    )
    add_ref(
        db,
        "2501.00002",
        1,
        title="OpenVLA: an open-source vision-language-action model.",
        year=2024,
    )
    add_ref(
        db,
        "2501.00001",
        2,
        doi="10.1007/978-3-031-73004-7_2",
        title="An Image is Worth 1/2 Tokens After Layer 2",
    )
    add_ref(db, "2501.00002", 2, doi="10.1007/978-3-031-73004-7_2")
    # C cites A (matched by the pdf stage) and OpenVLA; D cites C by arXiv id only (unmatched
    # upstream).
    add_ref(
        db,
        "2510.00003",
        1,
        matched_id="2501.00001",
        title="Survey paper A on token pruning",
        match_method="title",
    )
    add_ref(db, "2510.00003", 2, arxiv_id="2406.09246v3")
    add_ref(db, "2510.00004", 1, arxiv_id="2510.00003")
    add_ref(
        db, "2510.00004", 2, raw="[3] J. Doe. Personal communication."
    )  # nothing to identify it
    return db


def test_graph_from_references(corpus):
    counts = build_graph(corpus)
    assert counts["references"] == 8
    assert counts["references_unresolved"] == 1
    assert counts["stub_nodes"] == 2  # OpenVLA and FastV, each merged from several citations
    assert counts["corpus_nodes"] == 4
    graph = load_graph(corpus)
    assert set(graph.predecessors("2406.09246")) == {"2501.00001", "2501.00002", "2510.00003"}
    fastv = next(n for n in graph if n.startswith("doi:"))
    assert set(graph.predecessors(fastv)) == {"2501.00001", "2501.00002"}
    assert graph.has_edge("2510.00003", "2501.00001") and graph.has_edge("2510.00004", "2510.00003")
    stub = corpus["graph_nodes"].get("2406.09246")
    assert (
        stub["title"] == "OpenVLA: An Open-Source Vision-Language-Action Model"
        and stub["year"] == 2024
    )
    assert corpus["graph_nodes"].get(fastv)["title"] == "An Image is Worth 1/2 Tokens After Layer 2"

    rows = {row["node_id"]: row for row in corpus["influence"].rows}
    assert rows["2406.09246"]["survey_citations"] == 2
    assert rows["2406.09246"]["recent_citations"] == 1
    assert rows["2406.09246"]["corpus_citations"] == 3
    assert rows["2406.09246"]["cocited_survey"] == 1  # C cites it together with survey paper A
    assert rows[fastv]["cocited_survey"] == 0
    assert (
        rows["2501.00001"]["recent_citations"] == 1 and rows["2501.00001"]["survey_citations"] == 0
    )
    # The survey-seeded PageRank ranks OpenVLA (cited by both survey papers) above candidate C.
    assert rows["2406.09246"]["survey_pagerank"] > rows["2510.00003"]["survey_pagerank"]
    assert corpus["runs"].get(counts["run_id"])["status"] == "ok"


def test_rebuild_is_idempotent_and_stub_becomes_paper(corpus):
    build_graph(corpus)
    first = sorted(corpus.execute("select source, target, origin from edges").fetchall())
    build_graph(corpus)
    assert sorted(corpus.execute("select source, target, origin from edges").fetchall()) == first
    add_paper(
        corpus, "2406.09246", "OpenVLA: An Open-Source Vision-Language-Action Model", "2024-06-13"
    )
    counts = build_graph(corpus)
    assert counts["stub_nodes"] == 1 and counts["corpus_nodes"] == 5
    assert load_graph(corpus).nodes["2406.09246"]["in_corpus"]


def test_service_edges_are_added(corpus):
    class FakeClient:
        """Answers like SemanticScholarClient.fetch_references (parsing tested in
        test_citations)."""

        service = "semantic_scholar"

        def __init__(self):
            self.asked = []

        def fetch_references(self, arxiv_ids):
            self.asked.extend(arxiv_ids)
            return {
                a: (
                    [
                        {
                            "title": "RT-2: Vision-Language-Action Models",
                            "arxiv_id": "2307.15818",
                            "doi": None,
                            "s2_id": "abc",
                            "openalex_id": None,
                            "year": 2023,
                        }
                    ]
                    if a == "2501.00001"
                    else None
                )
                for a in arxiv_ids
            }

    client = FakeClient()
    counts = build_graph(corpus, citation_client=client)
    assert client.asked[:2] == ["2501.00001", "2501.00002"]  # survey papers first
    assert counts["edges_from_service"] == 1 and counts["papers_unknown_to_service"] == 3
    assert ("2501.00001", "2307.15818", "s2") in corpus.execute(
        "select source, target, origin from edges"
    ).fetchall()
    # an offline rebuild keeps the service edges
    build_graph(corpus)
    assert corpus.execute("select count(*) from edges where origin = 's2'").fetchone()[0] == 1


def test_pagerank_small_known_cases():
    # A 3-cycle: every node has PageRank 1/3.
    cycle = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "a")])
    for node in cycle:
        cycle.nodes[node]["in_corpus"] = True
    signals = influence_signals(cycle, survey={"a"}, recent=set())
    assert all(abs(s["pagerank"] - 1 / 3) < 1e-6 for s in signals.values())
    # Seeded at a: a gets (1-d)/(1-d^3), b d times that, c d^2 times that.
    d = 0.85
    pa = (1 - d) / (1 - d**3)
    assert signals["a"]["survey_pagerank"] == pytest.approx(pa, abs=1e-5)
    assert signals["b"]["survey_pagerank"] == pytest.approx(d * pa, abs=1e-5)
    assert signals["c"]["survey_pagerank"] == pytest.approx(d * d * pa, abs=1e-5)
    # A star: four papers cite x; x outranks every citer, the citers tie.
    star = nx.DiGraph([(f"p{i}", "x") for i in range(4)])
    for node in star:
        star.nodes[node]["in_corpus"] = True
    ranks = influence_signals(star, survey={"p0", "p1"}, recent={"p3"})
    assert max(ranks, key=lambda n: ranks[n]["pagerank"]) == "x"
    assert ranks["x"]["survey_citations"] == 2 and ranks["x"]["recent_citations"] == 1
    assert ranks["x"]["corpus_citations"] == 4


def test_title_key_normalises():
    assert title_key("OpenVLA: An Open-Source  Vision–Language–Action Model.") == title_key(
        "openvla an open source vision language action model"
    )
    assert title_key("RT-2") is None


@pytest.mark.shared
def test_graph_from_shared_pdf_references(shared_dir, db):
    """References extracted from three real PDFs (PPO, GAE, HER) by the pdf stage, then the
    graph."""
    references = pytest.importorskip("evla_miner.ingest.references")
    pdfs = {
        "1707.06347": "1707.06347v2",
        "1506.02438": "1506.02438v6",
        "1802.09464": "1802.09464v2",
    }
    for paper_id in pdfs:
        add_paper(db, paper_id, f"paper {paper_id}", "2018-01-01")
    for paper_id, name in pdfs.items():
        refs = references.references_from_pdf(shared_dir / "fixtures" / "pdfs" / f"{name}.pdf")
        references.match_references(db, refs)
        db["references"].insert_all(
            {
                **{
                    k: r.get(k)
                    for k in (
                        "position",
                        "raw",
                        "arxiv_id",
                        "doi",
                        "title",
                        "year",
                        "matched_id",
                        "match_method",
                    )
                },
                "authors": dumps(r.get("authors")),
                "paper_id": paper_id,
            }
            for r in refs
        )
    counts = build_graph(db)
    graph = load_graph(db)
    assert graph.has_edge("1707.06347", "1506.02438")  # PPO cites GAE
    # OpenAI Gym and Adam are cited by two of the three: one stub each, two citers
    assert set(graph.predecessors("1606.01540")) >= {"1707.06347", "1802.09464"}
    assert set(graph.predecessors("1412.6980")) >= {"1707.06347", "1802.09464"}
    assert counts["stub_nodes"] < counts["references"] - counts["references_unresolved"]

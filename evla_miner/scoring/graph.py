"""Citation graph stage: who cites whom, and how influential each paper is.

Nodes are the papers in ``papers`` plus the works they cite that are not in
the db ("stubs" in ``graph_nodes``, keyed by arXiv id when known so a stub
becomes the real paper the day it is harvested). Edges point from the citing
to the cited work and are stored in ``edges`` with their origin:
``references`` (extracted from PDFs by the pdf stage) and, when a citation
client is passed, ``s2`` / ``openalex`` (what the services say the paper cites).

``build_graph`` rebuilds edges and stubs, loads the graph into a networkx
DiGraph and writes the influence signals per node to ``influence``:

- ``corpus_citations``: papers in the db citing it;
- ``survey_citations``: survey papers citing it;
- ``recent_citations``: recent candidates (not in the survey, first version
  within ``recent_days`` of the newest paper in the db) citing it;
- ``pagerank``: PageRank over the whole graph (damping 0.85);
- ``survey_pagerank``: personalised PageRank whose teleport set is the survey's
  papers, i.e. how close a paper sits to what the survey already covers;
- ``cocited_survey`` / ``cocitations``: distinct survey papers cited together
  with it by some paper, and the total count of such co-citations.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta
from typing import TYPE_CHECKING

import networkx as nx
import sqlite_utils

from ..core.db import dumps, now_iso, survey_paper_ids
from ..core.progress import Reporter
from ..core.records import arxiv_id_or_none
from ..core.runs import recorded_run

if TYPE_CHECKING:  # the clients pull in the HTTP stack, which an offline build never needs
    from .citations import CitationClient

RECENT_DAYS = 90
ORIGIN_REFERENCES = "references"
DAMPING = 0.85


def title_key(title: str | None) -> str | None:
    """A title reduced to lowercase letters and digits, for matching the same work cited twice."""
    if not title:
        return None
    text = "".join(c for c in unicodedata.normalize("NFKD", title) if not unicodedata.combining(c))
    text = "".join(
        c if c.isalnum() else " " for c in text.lower()
    )  # dashes of any kind split words
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) >= 12 else None  # very short titles match too much


class NodeResolver:
    """Maps a cited work (arXiv id, DOI, S2/OpenAlex id, title) to one node id.

    Corpus papers win; otherwise the same work cited by several papers, or by
    a PDF and an API, merges into one stub.
    """

    def __init__(self, db: sqlite_utils.Database):
        self.corpus: set[str] = set()
        self.by_key: dict[str, str] = {}
        for row in db.execute("select id, doi, title from papers"):
            paper_id, doi, title = row
            self.corpus.add(paper_id)
            self.by_key[f"arxiv:{paper_id}"] = paper_id
            if doi:
                self.by_key.setdefault(f"doi:{doi.lower()}", paper_id)
            key = title_key(title)
            if key:
                self.by_key.setdefault(f"title:{key}", paper_id)
        self.stubs: dict[str, dict] = {}

    def keys(self, work: dict) -> list[str]:
        keys = []
        arxiv = arxiv_id_or_none(work.get("arxiv_id"))
        if arxiv:
            keys.append(f"arxiv:{arxiv}")
        if work.get("doi"):
            keys.append(f"doi:{work['doi'].lower()}")
        if work.get("s2_id"):
            keys.append(f"s2:{work['s2_id']}")
        if work.get("openalex_id"):
            keys.append(f"openalex:{work['openalex_id']}")
        title = title_key(work.get("title"))
        if title:
            keys.append(f"title:{title}")
        return keys

    def resolve(self, work: dict) -> str | None:
        """The node id for ``work``, creating or enriching a stub; ``None`` if nothing identifies
        it."""
        matched = work.get("matched_id")
        if matched and matched in self.corpus:
            return matched
        keys = self.keys(work)
        if not keys:
            return None
        node = next((self.by_key[k] for k in keys if k in self.by_key), None)
        if node is None:
            first = keys[0]
            if first.startswith("arxiv:"):
                node = first.split(":", 1)[1]
            elif first.startswith("title:"):
                node = first.replace(" ", "-")[
                    :90
                ]  # readable, no spaces; the full key stays in by_key
            else:
                node = first
            self.stubs[node] = {"id": node}
        for key in keys:
            self.by_key.setdefault(key, node)
        stub = self.stubs.get(node)
        if stub is not None:  # fill in what this citation knows
            for field in ("title", "year", "doi", "s2_id", "openalex_id"):
                if work.get(field) and not stub.get(field):
                    stub[field] = work[field]
            arxiv = arxiv_id_or_none(work.get("arxiv_id"))
            if arxiv and not stub.get("arxiv_id"):
                stub["arxiv_id"] = arxiv
            if work.get("authors") and not stub.get("authors"):
                stub["authors"] = (
                    work["authors"] if isinstance(work["authors"], str) else dumps(work["authors"])
                )
        return node


def _recent_candidates(db: sqlite_utils.Database, survey: set[str], recent_days: int) -> set[str]:
    newest = db.execute("select max(published) from papers").fetchone()[0]
    if not newest:
        return set()
    cutoff = (date.fromisoformat(newest[:10]) - timedelta(days=recent_days)).isoformat()
    return {
        row[0]
        for row in db.execute("select id from papers where published >= ?", [cutoff])
        if row[0] not in survey
    }


def _papers_to_fetch(
    db: sqlite_utils.Database, survey: set[str], recent: set[str], limit: int | None
) -> list[str]:
    """Which papers to ask a citation service about: the survey's, then recent candidates by
    relevance."""
    relevance = {}
    if db["scores"].exists():
        relevance = {
            row[0]: row[1] or 0 for row in db.execute("select paper_id, relevance from scores")
        }
    corpus = {row[0] for row in db.execute("select id from papers")}
    ordered = sorted(p for p in survey if p in corpus and arxiv_id_or_none(p))
    ordered += sorted(
        (p for p in recent if arxiv_id_or_none(p)), key=lambda p: (-relevance.get(p, 0), p)
    )
    return ordered[:limit] if limit else ordered


def build_graph(
    db: sqlite_utils.Database,
    citation_client: CitationClient | None = None,
    reporter: Reporter | None = None,
    *,
    recent_days: int = RECENT_DAYS,
    fetch_limit: int | None = 500,
) -> dict:
    """Rebuild edges and stubs from references (and the citation service), then recompute influence.

    ``citation_client`` is a ``CitationClient`` (``SemanticScholarClient``,
    ``OpenAlexClient``, or anything with ``service`` and ``fetch_references``); ``None``
    keeps the build offline. At most ``fetch_limit`` papers are asked about
    (survey papers first, then recent candidates by relevance); answers are
    cached, so a re-run only asks about new papers. Returns counts.
    """
    reporter = reporter or Reporter()
    counts = {
        "references": 0,
        "references_unresolved": 0,
        "edges_from_references": 0,
        "papers_fetched": 0,
        "papers_unknown_to_service": 0,
        "edges_from_service": 0,
    }
    with recorded_run(
        db, "graph", {"online": citation_client is not None, "recent_days": recent_days}, counts
    ) as run:
        counts = run.counts
        survey = survey_paper_ids(db)
        recent = _recent_candidates(db, survey, recent_days)
        resolver = NodeResolver(db)
        edges: set[tuple[str, str, str]] = set()
        total = db["references"].count
        reporter.start("graph: references", total=total)
        for ref in db["references"].rows_where(
            select="paper_id, arxiv_id, doi, title, year, authors, matched_id"
        ):
            counts["references"] += 1
            reporter.advance()
            target = resolver.resolve(ref)
            if target is None:
                counts["references_unresolved"] += 1
            elif target != ref["paper_id"]:
                edges.add((ref["paper_id"], target, ORIGIN_REFERENCES))
        counts["edges_from_references"] = len(edges)
        if citation_client is not None:
            origin = (
                "s2" if citation_client.service == "semantic_scholar" else citation_client.service
            )
            wanted = _papers_to_fetch(db, survey, recent, fetch_limit)
            reporter.start(f"graph: {citation_client.service}", total=len(wanted))
            before = len(edges)
            for start in range(0, len(wanted), 100):
                chunk = wanted[start : start + 100]
                for paper_id, works in citation_client.fetch_references(chunk).items():
                    counts["papers_fetched"] += 1
                    if works is None:
                        counts["papers_unknown_to_service"] += 1
                        continue
                    for work in works:
                        target = resolver.resolve(work)
                        if target is not None and target != paper_id:
                            edges.add((paper_id, target, origin))
                reporter.advance(len(chunk))
            counts["edges_from_service"] = len(edges) - before
        reporter.finish()
        _store(db, resolver, edges, citation_client is not None)
        graph = load_graph(db)
        signals = influence_signals(graph, survey, recent)
        _store_influence(db, signals)
        counts.update(
            nodes=graph.number_of_nodes(),
            corpus_nodes=sum(1 for _, d in graph.nodes(data=True) if d["in_corpus"]),
            stub_nodes=sum(1 for _, d in graph.nodes(data=True) if not d["in_corpus"]),
            edges=graph.number_of_edges(),
            survey_papers_citing=sum(
                1 for s in survey if graph.has_node(s) and graph.out_degree(s)
            ),
            cited_by_survey=sum(1 for v in signals.values() if v["survey_citations"]),
        )
    return {**counts, "run_id": run.id}


def _store(db: sqlite_utils.Database, resolver: NodeResolver, edges: set, online: bool) -> None:
    """Replace reference edges (and service edges for the papers asked about) and upsert stubs."""
    stamp = now_iso()
    with db.conn:
        db.execute("delete from edges where origin = ?", [ORIGIN_REFERENCES])
        if online:
            sources = {(s, o) for s, _, o in edges if o != ORIGIN_REFERENCES}
            for source, origin in sources:
                db.execute("delete from edges where source = ? and origin = ?", [source, origin])
        db.table("edges").insert_all(
            ({"source": s, "target": t, "origin": o, "created": stamp} for s, t, o in edges),
            pk=("source", "target", "origin"),
            replace=True,
        )
        used = {t for _, t, _ in edges} | {t for (t,) in db.execute("select target from edges")}
        db.table("graph_nodes").upsert_all(
            ({**stub, "updated": stamp} for node, stub in resolver.stubs.items() if node in used),
            pk="id",
        )


def load_graph(db: sqlite_utils.Database) -> nx.DiGraph:
    """The stored graph: every edge, every corpus paper (even uncited ones) and the stubs edges
    reach."""
    graph = nx.DiGraph()
    for paper_id, title in db.execute("select id, title from papers"):
        graph.add_node(paper_id, title=title, in_corpus=True)
    stubs = {row["id"]: row for row in db["graph_nodes"].rows}
    for source, target, origin in db.execute("select source, target, origin from edges"):
        for node in (source, target):
            if node not in graph:
                stub = stubs.get(node, {})
                graph.add_node(
                    node, title=stub.get("title"), in_corpus=False, year=stub.get("year")
                )
        if graph.has_edge(source, target):
            graph[source][target]["origins"].add(origin)
        else:
            graph.add_edge(source, target, origins={origin})
    return graph


def has_graph(db: sqlite_utils.Database) -> bool:
    """True once `evla graph` produced at least one edge."""
    return db["edges"].exists() and db.execute("select 1 from edges limit 1").fetchone() is not None


GRAPH_NOT_BUILT = "no citation graph yet (run `evla graph`)"
RELEVANCE_ONLY = "ranked by relevance only"


def graph_gap(db: sqlite_utils.Database) -> str | None:
    """Why there are no citation signals, in the one sentence every view prints
    (propose, triage, the digest, the web page), or None when the graph has edges.

    Why one function: "no citation graph yet (run `evla graph`)" used to be
    printed right after `evla graph` ran and built a graph with 0 edges, which
    sent people to re-run a stage that had worked. The message now separates
    "never built" from "built, but nothing to draw edges from", and says what
    would give it edges.
    """
    if has_graph(db):
        return None
    built = db["runs"].exists() and (
        db.execute("select 1 from runs where kind = 'graph' and status = 'ok' limit 1").fetchone()
    )
    if not built:
        return GRAPH_NOT_BUILT
    from .citations import SERVICES

    read = (
        db.execute("select count(*) from pdfs where status = 'extracted'").fetchone()[0]
        if db["pdfs"].exists()
        else 0
    )
    causes = [
        f"the references of {read:,} PDFs read cite no known paper" if read else "no PDFs read"
    ]
    key_names = sorted({name for cls in SERVICES.values() for name in cls.api_key_env})
    if not any(cls.key_from_env() for cls in SERVICES.values()):
        causes.append("no citation API key")
    todo = "read PDFs with `evla pdf`" if not read else "read more PDFs with `evla pdf`"
    if len(causes) > 1:
        todo += f" or set ${' / $'.join(key_names)}"
    return f"citation graph has no edges yet: {' and '.join(causes)} ({todo}, then `evla graph`)"


def relevance_only_reason(gap: str) -> str:
    """The proposal reason that goes with ``graph_gap``: the ranking used no citations."""
    return f"{gap}: {RELEVANCE_ONLY}"


def influence_signals(graph: nx.DiGraph, survey: set[str], recent: set[str]) -> dict[str, dict]:
    """The influence signals of every node (see the module docstring)."""
    signals: dict[str, dict] = {}
    if graph.number_of_nodes() == 0:
        return signals
    pagerank = (
        nx.pagerank(graph, alpha=DAMPING) if graph.number_of_edges() else {n: 0.0 for n in graph}
    )
    seeds = {n: 1.0 for n in survey if n in graph}
    if seeds and graph.number_of_edges():
        survey_rank = nx.pagerank(graph, alpha=DAMPING, personalization=seeds)
    else:
        survey_rank = {n: 0.0 for n in graph}
    cocited: dict[str, set] = {n: set() for n in graph}
    cocitations: dict[str, int] = {n: 0 for n in graph}
    for citer in graph:
        cited = set(graph.successors(citer))
        cited_survey = cited & survey
        if not cited_survey:
            continue
        for node in cited:
            others = cited_survey - {node}
            cocited[node] |= others
            cocitations[node] += len(others)
    for node, data in graph.nodes(data=True):
        citers = set(graph.predecessors(node))
        signals[node] = {
            "in_corpus": int(bool(data.get("in_corpus"))),
            "corpus_citations": sum(1 for c in citers if graph.nodes[c].get("in_corpus")),
            "survey_citations": len(citers & survey),
            "recent_citations": len(citers & recent),
            "pagerank": pagerank.get(node, 0.0),
            "survey_pagerank": survey_rank.get(node, 0.0),
            "cocited_survey": len(cocited[node]),
            "cocitations": cocitations[node],
        }
    return signals


def _store_influence(db: sqlite_utils.Database, signals: dict) -> None:
    stamp = now_iso()
    with db.conn:
        db.execute("delete from influence")
        db.table("influence").insert_all(
            ({"node_id": node, **values, "computed_at": stamp} for node, values in signals.items()),
            pk="node_id",
        )


def citers_of(db: sqlite_utils.Database, node_id: str) -> list[str]:
    return [
        row[0]
        for row in db.execute("select distinct source from edges where target = ?", [node_id])
    ]

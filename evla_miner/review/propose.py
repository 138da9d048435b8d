"""Proposals: what a reviewer should look at next to keep the survey current.

Two kinds of proposals, one list, best first:

- **new / older candidates**: papers in the db (not in the survey, not yet
  reviewed) ranked by relevance, influence and recency;
- **missing from the survey**: older papers or cited works outside the db
  (graph stubs) that at least ``min_citers`` survey papers or recent
  candidates cite, i.e. work the field leans on that the survey lacks.

The ranking (all terms in 0..1; stored signals come from ``evla graph``):

    influence = 0.40 * cite + 0.25 * near + 0.15 * cocite + 0.20 * cites_survey
      cite         = 1 - exp(-(survey_citations + 0.5 * recent_citations
                               + 0.25 * other corpus citations) / 3)
      near         = sqrt(survey-seeded PageRank / its maximum over the graph)
      cocite       = 1 - exp(-distinct survey papers co-cited with it / 3)
      cites_survey = 1 - exp(-survey papers it cites / 3)
    recency   = exp(-age in days / 60), age counted back from the newest paper
                in the db (or --until), so a replayed stream ranks like live
    candidate score = 0.60 * relevance + 0.25 * influence + 0.15 * recency
    missing score   = 0.35 * relevance + 0.65 * influence
      (a stub has no abstract to score: its relevance is the mean relevance of
      the db papers citing it, survey papers counting 1.0)

Without a graph (no `evla graph` run, or no references and offline) the score
is the classifier relevance alone and every proposal says so. Relevance,
categories and nearest survey papers come from the classifier's ``scores``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import date
from urllib.parse import urlencode

import sqlite_utils

from ..core.db import loads, survey_paper_ids
from ..core.records import arxiv_id_or_none
from ..core.taxonomy import Taxonomy
from ..scoring.graph import RECENT_DAYS, has_graph

MIN_CITERS = 2
NO_GRAPH_REASON = "no citation graph yet (run `evla graph`): ranked by relevance only"


def _saturate(value: float, scale: float = 3.0) -> float:
    return 1.0 - math.exp(-max(value, 0.0) / scale)


def _link(node_id: str, doi: str | None = None, title: str | None = None) -> str | None:
    """arXiv abstract page; else the DOI; else a Semantic Scholar title search (a cited work known
    by title only)."""
    if arxiv_id_or_none(node_id) == node_id:
        return f"https://arxiv.org/abs/{node_id}"
    if doi or node_id.startswith("doi:"):
        return f"https://doi.org/{doi or node_id[4:]}"
    if title:
        return "https://www.semanticscholar.org/search?" + urlencode({"q": title})
    return None


def _short(title: str | None, width: int = 40) -> str:
    """A paper's short name: the part before the colon when there is one ("VLA-Cache: ...")."""
    title = (title or "").strip()
    head = title.split(":", 1)[0].strip()
    if ":" in title and 2 <= len(head) <= width:
        return head
    return title if len(title) <= width else title[: width - 1].rstrip() + "…"


def _reviewed(db: sqlite_utils.Database) -> set[str]:
    """Papers whose latest decision (after undos) is in force."""
    from ..core.decisions import effective_decisions

    return set(effective_decisions(db))


def _in_window(day: str | None, since: date | None, until: date | None) -> bool:
    if since is None and until is None:
        return True
    if not day:
        return False
    day = day[:10]
    if since and day < since.isoformat():
        return False
    if until and day > until.isoformat():
        return False
    return True


def _year_in_window(year: int | None, since: date | None, until: date | None) -> bool:
    if since is None and until is None:
        return True
    if not year:
        return False
    return (since is None or year >= since.year) and (until is None or year <= until.year)


class _Context:
    """Everything a proposal needs, loaded once."""

    def __init__(self, db: sqlite_utils.Database, until: date | None, recent_days: int):
        self.db = db
        self.survey = survey_paper_ids(db)
        self.reviewed = _reviewed(db)
        self.taxonomy = Taxonomy.from_db(db)
        self.survey_labels = {
            row["paper_id"]: loads(row["labels"], []) for row in db["survey"].rows
        }
        self.scores = {}
        if db["scores"].exists():
            for row in db["scores"].rows:
                row["categories"] = loads(row["categories"], []) or []
                row["explanation"] = loads(row["explanation"], {}) or {}
                self.scores[row["paper_id"]] = row
        self.graph = has_graph(db)
        self.influence = {row["node_id"]: row for row in db["influence"].rows} if self.graph else {}
        self.max_near = (
            max((r["survey_pagerank"] or 0 for r in self.influence.values()), default=0) or 1.0
        )
        self.citers: dict[str, set] = defaultdict(set)
        self.cites: dict[str, set] = defaultdict(set)
        if self.graph:
            for source, target in db.execute("select distinct source, target from edges"):
                self.citers[target].add(source)
                self.cites[source].add(target)
        newest = db.execute(
            "select max(published) from papers" + (" where published <= ?" if until else ""),
            [until.isoformat()] if until else [],
        ).fetchone()[0]
        self.today = date.fromisoformat(newest[:10]) if newest else (until or date.today())
        self.recent_cutoff = date.fromordinal(self.today.toordinal() - recent_days).isoformat()
        self.published = dict(db.execute("select id, published from papers"))
        ranks = sorted(self.influence, key=lambda n: -(self.influence[n]["survey_pagerank"] or 0))
        self.near_rank = {node: i for i, node in enumerate(ranks)}

    def name(self, node_id: str) -> str:
        return self.taxonomy.name(node_id)

    def leaf(self, categories: list[dict]) -> dict | None:
        """The suggested leaf's entry of a category list (the taxonomy's one rule)."""
        leaf = self.taxonomy.suggested_leaf(categories)
        return next((c for c in categories if c["id"] == leaf), None)

    def is_recent(self, node_id: str) -> bool:
        published = self.published.get(node_id)
        return bool(
            node_id not in self.survey and published and published[:10] >= self.recent_cutoff
        )

    def influence_of(self, node_id: str) -> tuple[float, dict]:
        row = self.influence.get(node_id) or {}
        survey_cit = row.get("survey_citations") or 0
        recent_cit = row.get("recent_citations") or 0
        other = max((row.get("corpus_citations") or 0) - survey_cit - recent_cit, 0)
        cites_survey = len(self.cites.get(node_id, set()) & self.survey)
        parts = {
            "cite": _saturate(survey_cit + 0.5 * recent_cit + 0.25 * other),
            "near": math.sqrt((row.get("survey_pagerank") or 0) / self.max_near),
            "cocite": _saturate(row.get("cocited_survey") or 0),
            "cites_survey": _saturate(cites_survey),
        }
        value = (
            0.40 * parts["cite"]
            + 0.25 * parts["near"]
            + 0.15 * parts["cocite"]
            + 0.20 * parts["cites_survey"]
        )
        return value, {**row, "cites_survey_papers": cites_survey}

    def citer_relevance(self, node_id: str) -> float | None:
        values = []
        for citer in self.citers.get(node_id, ()):
            if citer in self.survey:
                values.append(1.0)
            elif citer in self.scores:
                values.append(self.scores[citer]["relevance"] or 0.0)
        return sum(values) / len(values) if values else None

    def citer_categories(self, node_id: str) -> list[dict]:
        """Categories voted by the papers citing a work: survey labels (weight 1), candidates' best
        leaf."""
        votes: Counter = Counter()
        weight = 0.0
        for citer in self.citers.get(node_id, ()):
            if citer in self.survey:
                leaves = [
                    leaf for leaf in self.survey_labels.get(citer, []) if leaf in self.taxonomy
                ] or []
                for label in leaves:
                    # float weights: typeshed types Counter values as int
                    votes[label] += 1.0 / len(leaves)  # type: ignore[assignment]
                weight += 1.0 if leaves else 0.0
            elif citer in self.scores and self.scores[citer]["categories"]:
                best = self.leaf(self.scores[citer]["categories"])
                rel = self.scores[citer]["relevance"] or 0.0
                if best:
                    votes[best["id"]] += rel  # type: ignore[assignment]  # float weight
                    weight += rel
        if not weight:
            return []
        return [{"id": k, "score": round(v / weight, 4)} for k, v in votes.most_common()]

    def survey_citer_reason(self, node_id: str) -> str | None:
        citers = [c for c in self.citers.get(node_id, ()) if c in self.survey]
        if not citers:
            return None
        by_leaf: Counter = Counter()
        for citer in citers:
            for label in set(self.survey_labels.get(citer, [])):
                by_leaf[label] += 1
        n = len(citers)
        noun = "survey paper" if n == 1 else "survey papers"
        if not by_leaf:
            return f"cited by {n} {noun}"
        label, count = by_leaf.most_common(1)[0]
        if count == n:
            return f"cited by {n} {noun} in {self.name(label)}"
        return f"cited by {n} {noun}, {count} in {self.name(label)}"


def _reasons(ctx: _Context, item: dict, signals: dict, score_row: dict | None) -> list[str]:
    reasons = []
    node_id = item["id"]
    if item["kind"] == "missing":
        reasons.append(
            "missing from the survey: older work that survey papers or new candidates cite"
        )
    survey_reason = ctx.survey_citer_reason(node_id) if ctx.graph else None
    if survey_reason:
        reasons.append(survey_reason)
    recent = signals.get("recent_citations") or 0
    if recent:
        reasons.append(f"cited by {recent} recent candidate{'s' if recent != 1 else ''}")
    if score_row is not None:
        reasons.append(f"relevance {score_row['relevance']:.2f}")
    elif item["in_corpus"]:
        reasons.append("not scored yet (run `evla classify`)")
    elif item["relevance"] is not None:
        reasons.append(f"relevance {item['relevance']:.2f} (mean of the papers citing it)")
    if item["leaf"]:
        source = "" if score_row is not None else " (from the papers citing it)"
        reasons.append(f"fits {ctx.name(item['leaf'])} ({item['leaf_score']:.2f}){source}")
    if score_row is not None:
        nearest = (score_row["explanation"].get("nearest") or [])[:1]
        for near in nearest:
            if near.get("title") and near.get("similarity") is not None:
                reasons.append(f"close to {_short(near['title'])} ({near['similarity']:.2f})")
        if score_row.get("unsure"):
            reasons.append("classifier unsure: check the category")
    cites = signals.get("cites_survey_papers") or 0
    if cites:
        reasons.append(f"cites {cites} survey paper{'s' if cites != 1 else ''}")
    cocited = signals.get("cocited_survey") or 0
    if cocited:
        reasons.append(f"co-cited with {cocited} survey paper{'s' if cocited != 1 else ''}")
    rank = ctx.near_rank.get(node_id)
    if rank is not None and ctx.near_rank and signals.get("survey_pagerank"):
        share = (rank + 1) / len(ctx.near_rank)
        if share <= 0.05:
            reasons.append(f"survey-seeded PageRank in the top {max(share * 100, 0.1):.1f}%")
    if item["published"] and item["kind"] == "new":
        reasons.append(f"new: first version {item['published']}")
    if not ctx.graph:
        reasons.append(NO_GRAPH_REASON)
    return reasons


def list_proposals(
    db: sqlite_utils.Database,
    since: date | None = None,
    until: date | None = None,
    limit: int | None = 50,
    *,
    recent_days: int = RECENT_DAYS,
    min_citers: int = MIN_CITERS,
) -> list[dict]:
    """Unreviewed papers (and cited works) not in the survey, best first.

    ``since``/``until`` filter on the first version's date (a stub's year
    when that is all it has; undated stubs only appear unfiltered);
    ``limit`` 0 or ``None`` = all. Each dict starts with ``id, title, score,
    relevance, influence, categories, reasons`` then ``kind`` (new | older |
    missing), ``leaf``, ``leaf_score``, ``leaf_name``, ``published``, ``link``, ``in_corpus``.
    """
    ctx = _Context(db, until, recent_days)
    excluded = ctx.survey | ctx.reviewed
    items = []
    for row in db.execute("select id, title, published, doi from papers"):
        paper_id, title, published, doi = row
        if paper_id in excluded or not _in_window(published, since, until):
            continue
        items.append(
            _proposal(ctx, paper_id, title, published, doi, in_corpus=True, min_citers=min_citers)
        )
    if ctx.graph:
        for stub in db["graph_nodes"].rows:
            if stub["id"] in excluded or stub["id"] in ctx.published:
                continue
            signals = ctx.influence.get(stub["id"]) or {}
            if (signals.get("survey_citations") or 0) + (
                signals.get("recent_citations") or 0
            ) < min_citers:
                continue
            if not _year_in_window(stub["year"], since, until):
                continue
            items.append(
                _proposal(
                    ctx,
                    stub["id"],
                    stub["title"],
                    None,
                    stub["doi"],
                    in_corpus=False,
                    min_citers=min_citers,
                    year=stub["year"],
                )
            )
    # best score first; among equal scores newer first, then by id (stable sorts, last key first)
    items.sort(key=lambda p: p["id"])
    items.sort(key=lambda p: p["published"] or "", reverse=True)
    items.sort(key=lambda p: -p["score"])
    return items[:limit] if limit else items


def _proposal(
    ctx: _Context, node_id, title, published, doi, *, in_corpus: bool, min_citers: int, year=None
) -> dict:
    score_row = ctx.scores.get(node_id)
    influence, signals = ctx.influence_of(node_id) if ctx.graph else (0.0, {})
    cited_enough = (signals.get("survey_citations") or 0) + (
        signals.get("recent_citations") or 0
    ) >= min_citers
    if not in_corpus:
        kind = "missing"
    elif ctx.is_recent(node_id):
        kind = "new"
    else:
        kind = "missing" if ctx.graph and cited_enough else "older"
    if score_row is not None:
        relevance = score_row["relevance"] or 0.0
        categories = [
            {"id": c["id"], "score": round(c["score"], 4)} for c in score_row["categories"]
        ]
    else:
        relevance = ctx.citer_relevance(node_id) if ctx.graph else None
        categories = ctx.citer_categories(node_id) if ctx.graph else []
    rel = relevance or 0.0
    if not ctx.graph:
        score = rel
    elif kind == "missing":
        score = 0.35 * rel + 0.65 * influence
    else:
        age = (ctx.today - date.fromisoformat(published[:10])).days if published else 365
        recency = math.exp(-max(age, 0) / 60)
        score = 0.60 * rel + 0.25 * influence + 0.15 * recency
    leaf = ctx.leaf(categories)
    item = {
        "id": node_id,
        "title": title or "(untitled)",
        "score": round(score, 4),
        "relevance": None if relevance is None else round(relevance, 4),
        "influence": round(influence, 4) if ctx.graph else None,
        "categories": categories,
        "reasons": [],
        "kind": kind,
        "leaf": leaf["id"] if leaf else None,
        "leaf_score": round(leaf["score"], 4) if leaf else None,
        "leaf_name": ctx.name(leaf["id"]) if leaf else None,
        "published": published[:10] if published else (str(year) if year else None),
        "link": _link(node_id, doi, title),
        "in_corpus": in_corpus,
    }
    item["reasons"] = _reasons(ctx, item, signals, score_row)
    return item

"""The classifier's training data: labelled papers from three sources, and their vectors.

* the survey's papers (``seeds/seed_papers.jsonl``): relevant, with taxonomy labels;
* the training stream (``seeds/training/*.jsonl.gz`` + ``*.positives.jsonl``): real
  arXiv records where curated efficient-VLA papers are relevant and the rest not;
* reviewer decisions (the decision log): the decision in force per paper wins over
  the files; accept = relevant with its categories, reject = not relevant.

``prepare`` embeds everything a fit or an evaluation needs once (papers, leaf label
texts, node texts) into a ``TrainingSet``, so ``evla train`` and ``evla eval`` never
compute the same vectors twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import sqlite_utils

from ..core import decisions as decision_log
from ..core.db import dumps, loads, papers_by_id
from ..core.jsonl import read_jsonl
from ..core.progress import Reporter
from ..core.records import RecordError, parse_date, split_arxiv_id, synthetic_id
from ..core.settings import SEED_PAPERS_FILE
from ..core.taxonomy import Taxonomy
from .embed import Embedder, VectorStore, paper_text, vectors_for
from .estimators import PaperSet

TRAINING_DIR = "training"


@dataclass
class Example:
    """One labelled paper: text, relevance label, taxonomy labels (may be empty)."""

    id: str
    text: str
    positive: bool
    labels: list = field(default_factory=list)
    published: date | None = None
    title: str = ""
    source: str = ""  # seed | stream | decision
    in_stream: bool = False  # the record is part of the training stream
    curators: tuple = ()  # which curated lists name a stream positive ("survey", "related")


def record_id(record: dict) -> str | None:
    """The versionless arXiv id of a snapshot record (its raw id when it is not an arXiv id)."""
    try:
        return split_arxiv_id(str(record.get("id")))[0] if record.get("id") else None
    except RecordError:
        return str(record.get("id"))


def record_published(record: dict) -> date | None:
    """A snapshot record's first-version date."""
    try:
        versions = record.get("versions") or []
        if versions:
            return parse_date(versions[0].get("created"))
        return parse_date(record.get("update_date"))
    except RecordError:
        return None


def _curators(row: dict) -> tuple:
    return tuple(
        name
        for name, key in (("survey", "in_survey_list"), ("related", "in_related_list"))
        if row.get(key)
    )


def training_examples(seeds: Path) -> list[Example]:
    """Seeds + training stream as examples (one per paper id, seeds' labels merged in).

    A seed that also appears in the stream is one example: relevant, with the
    seed's labels and the earlier of the two dates.
    """
    seeds = Path(seeds)
    examples: dict[str, Example] = {}
    training = seeds / TRAINING_DIR
    streams = sorted(training.glob("*.jsonl.gz")) + sorted(
        p for p in training.glob("*.jsonl") if not p.name.endswith(".positives.jsonl")
    )
    for stream in streams:
        stem = stream.name.replace(".jsonl.gz", "").replace(".jsonl", "")
        positives_file = stream.with_name(stem + ".positives.jsonl")
        positives = (
            {row["id"]: _curators(row) for row in read_jsonl(positives_file)}
            if positives_file.exists()
            else {}
        )
        for record in read_jsonl(stream):
            paper_id = record_id(record)
            if not paper_id:
                continue
            examples[paper_id] = Example(
                id=paper_id,
                text=paper_text(record.get("title"), record.get("abstract")),
                positive=paper_id in positives,
                published=record_published(record),
                title=" ".join((record.get("title") or "").split()),
                source="stream",
                in_stream=True,
                curators=positives.get(paper_id, ()),
            )
    for record in read_jsonl(seeds / SEED_PAPERS_FILE):
        paper_id = record_id(record) or synthetic_id(record.get("title"))
        published = record_published(record)
        existing = examples.get(paper_id)
        if existing:
            existing.positive = True
            existing.labels = list(record.get("labels") or [])
            existing.source = "seed"
            if published and (existing.published is None or published < existing.published):
                existing.published = published
            continue
        examples[paper_id] = Example(
            id=paper_id,
            text=paper_text(record.get("title"), record.get("abstract")),
            positive=True,
            labels=list(record.get("labels") or []),
            published=published,
            title=" ".join((record.get("title") or "").split()),
            source="seed",
        )
    return list(examples.values())


# --- reviewer decisions -------------------------------------------------------------------


def decisions_in_force(db: sqlite_utils.Database) -> dict[str, dict]:
    """paper id -> the decision in force, as a ``decisions`` row (categories as JSON).

    Which decision is in force is the decision log's rule, the one propose, triage
    and export use, so training never disagrees with them.
    """
    if not db["decisions"].exists():
        return {}
    return {
        pid: {**asdict(d), "categories": dumps(d.categories)}
        for pid, d in decision_log.effective_decisions(db).items()
    }


def decisions_fingerprint(decisions: dict[str, dict]) -> str:
    items = sorted(
        (pid, d["decision"], dumps(sorted(loads(d.get("categories"), []) or [])))
        for pid, d in decisions.items()
    )
    return hashlib.sha256(dumps(items).encode()).hexdigest()[:16]


def apply_decisions(
    db: sqlite_utils.Database, examples: list[Example], decisions: dict[str, dict]
) -> list[Example]:
    """Examples with reviewer decisions applied (they win over the files)."""
    known = {e.id for e in examples}
    papers = papers_by_id(
        db, [pid for pid in decisions if pid not in known], "id, title, abstract, published"
    )
    out = [Example(**{**e.__dict__, "labels": list(e.labels)}) for e in examples]
    by_id = {e.id: e for e in out}
    for pid, decision in sorted(decisions.items()):
        accept = decision["decision"] == "accept"
        categories = [c for c in (loads(decision.get("categories"), []) or []) if c]
        example = by_id.get(pid)
        if example is None:
            row = papers.get(pid)
            if row is None:
                continue
            example = Example(
                id=pid,
                text=paper_text(row["title"], row["abstract"]),
                positive=accept,
                published=parse_date(row["published"]),
                title=row["title"] or "",
                source="decision",
            )
            out.append(example)
            by_id[pid] = example
        example.positive = accept
        if accept and categories:
            example.labels = categories
        elif not accept:
            example.labels = []
    return out


# --- taxonomy texts and targets --------------------------------------------------------------


def label_matrix(examples: Sequence[Example], taxonomy: Taxonomy) -> np.ndarray:
    """0/1 matrix over the leaf labels; an inner-node label spreads over its leaves."""
    labels = taxonomy.leaves
    col = {label: j for j, label in enumerate(labels)}
    Y = np.zeros((len(examples), len(labels)))
    for i, e in enumerate(examples):
        for label in e.labels:
            under = taxonomy.leaves_under(label)
            if label in col:
                Y[i, col[label]] = 1.0
            else:
                for leaf in under:
                    Y[i, col[leaf]] = max(Y[i, col[leaf]], 1.0 / len(under))
    return Y


def description_texts(taxonomy: Taxonomy) -> list[str]:
    """Name + description of each leaf label (the taxonomy classifier's priors)."""
    return [
        f"{taxonomy.nodes[leaf]['name']}. {taxonomy.nodes[leaf].get('description') or ''}"
        for leaf in taxonomy.leaves
    ]


def node_texts(taxonomy: Taxonomy) -> list[str]:
    """Name + description of every node (the relevance classifier's prior positives)."""
    return [f"{n['name']}. {n.get('description') or ''}" for n in taxonomy.rows()]


# --- everything a fit needs, embedded once -----------------------------------------------------


@dataclass
class TrainingSet:
    """Examples, the taxonomy and every vector a fit or an evaluation needs."""

    examples: list[Example]
    taxonomy: Taxonomy
    vectors: np.ndarray  # one row per example
    description_vectors: np.ndarray  # one row per leaf label (``description_texts``)
    node_vectors: np.ndarray  # one row per node (``node_texts``)

    @property
    def papers(self) -> PaperSet:
        return PaperSet([e.text for e in self.examples], self.vectors)


def prepare(
    examples: list[Example],
    taxonomy: Taxonomy,
    embedder: Embedder,
    db: sqlite_utils.Database | None = None,
    store: VectorStore | None = None,
    reporter: Reporter | None = None,
) -> TrainingSet:
    """Embed the examples and the taxonomy texts (shipped store, then cache, then the model)."""
    texts = [e.text for e in examples]
    descriptions = description_texts(taxonomy)
    nodes = node_texts(taxonomy)
    vectors = vectors_for(texts + descriptions + nodes, embedder, db, store, reporter)
    a, b = len(texts), len(texts) + len(descriptions)
    return TrainingSet(examples, taxonomy, vectors[:a], vectors[a:b], vectors[b:])
